"""Row locks of the Messenger side: the only place `select_for_update` is called in
`webhooks`. Call inside `transaction.atomic()`."""

from __future__ import annotations

from webhooks.models import WebhookDelivery, WebhookEvent


def delivery_lock(delivery_id: int) -> WebhookDelivery:
    """A stored delivery, locked: one worker applies it at a time."""
    return WebhookDelivery.objects.select_for_update().get(pk=delivery_id)


def event_lock_by_key(key: str) -> WebhookEvent | None:
    """The event recorded under a dedupe key, locked, or None."""
    return WebhookEvent.objects.select_for_update().filter(key=key).first()
