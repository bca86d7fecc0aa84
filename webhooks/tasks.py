"""Celery tasks of the Messenger side: take ids, call one service."""

from __future__ import annotations

import logging

from celery import shared_task

from webhooks import services

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
