"""Row locks of the Messenger side: the only place `select_for_update` is called in
`webhooks`. Call inside `transaction.atomic()`."""

from __future__ import annotations

from webhooks.models import DataDeletionRequest, WebhookEvent


def event_lock_by_key(key: str) -> WebhookEvent | None:
    """The event recorded under a dedupe key, locked, or None."""
    return WebhookEvent.objects.select_for_update().filter(key=key).first()


def deletion_request_lock(request_id: int) -> DataDeletionRequest | None:
    """A data deletion request, locked, or None when there is none with this id."""
    return DataDeletionRequest.objects.select_for_update().filter(pk=request_id).first()
