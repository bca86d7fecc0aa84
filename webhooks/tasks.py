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
    """Apply the deliveries the intake stored together (one task for one or more group commits), in
    order. One that fails is recorded on its row and re-driven; the others go on."""
    for delivery_id in delivery_ids:
        try:
            services.delivery_process(delivery_id=delivery_id)
        except Exception:  # noqa: BLE001 -- recorded on its row (delivery_process), re-driven
            logger.warning("delivery %s failed; the re-drive takes it again", delivery_id)


@shared_task(time_limit=60)
def deliveries_redrive() -> None:
    services.deliveries_redrive()
