"""Celery tasks of the Messenger side: take ids, call one service."""

from __future__ import annotations

from celery import shared_task

from webhooks import services


@shared_task(acks_late=True, time_limit=120)
def delivery_process(delivery_id: int) -> None:
    """Apply a stored delivery. Safe to run twice; a failure is recorded and re-driven."""
    services.delivery_process(delivery_id=delivery_id)


@shared_task(time_limit=60)
def deliveries_redrive() -> None:
    services.deliveries_redrive()
