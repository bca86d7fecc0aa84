"""Row locks of the Messenger side: the only place `select_for_update` is called in
`webhooks`. Call inside `transaction.atomic()`."""

from __future__ import annotations

from webhooks.models import WebhookDelivery


def delivery_lock(delivery_id: int) -> WebhookDelivery:
    """A stored delivery, locked: one worker applies it at a time."""
    return WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
