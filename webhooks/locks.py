"""Row locks of the Messenger side: the only place `select_for_update` is called in
`webhooks`. Call inside `transaction.atomic()`."""

from __future__ import annotations

from webhooks.models import WebhookEvent


def event_lock_by_key(key: str) -> WebhookEvent | None:
    """The event recorded under a dedupe key, locked, or None."""
    return WebhookEvent.objects.select_for_update().filter(key=key).first()
