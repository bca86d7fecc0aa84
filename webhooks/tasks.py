"""Celery tasks of the Messenger side: take ids, call one service."""

from __future__ import annotations

import logging

from celery import shared_task

from webhooks import deletion, retention, services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=120)
def delivery_process(delivery_id: int) -> None:
    """Apply a stored delivery. Safe to run twice; a failure is recorded and re-driven."""
    services.delivery_process(delivery_id=delivery_id)


@shared_task(acks_late=True, time_limit=600)
def deliveries_process(delivery_ids: list[int]) -> None:
    """Apply the deliveries the intake stored together (one task for one or more group
    commits), in order and in groups. One that fails is recorded on its row and
    re-driven; the others go on."""
    services.deliveries_process(delivery_ids=delivery_ids)


@shared_task(time_limit=60)
def deliveries_redrive() -> None:
    services.deliveries_redrive()


@shared_task(time_limit=1800)
def retention_purge() -> None:
    """Beat: delete deliveries and Graph call records past their retention, in batches
    (`webhooks.retention`). A run cut short by the time limit goes on at the next."""
    retention.retention_purge()


@shared_task(acks_late=True, time_limit=600)
def data_deletion_run(request_id: int) -> None:
    """Carry out one data deletion request (Meta's callback). Safe to run twice: the
    request row is locked and a done request is left alone."""
    deletion.data_deletion_run(request_id=request_id)


@shared_task(time_limit=60)
def data_deletions_redrive() -> None:
    """Beat: queue pending deletion requests again (a lost task, or an erase that had
    to wait for a conversation to end)."""
    deletion.data_deletions_redrive()
