"""Small real-time events for agents' browsers, sent after commit over the channel layer.

The database is the truth: clients refetch what an event names. Losing an event (the
channel layer drops messages by design) costs freshness, never data.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

INBOX_GROUP = "inbox"


def broadcast(kind: str, **ids: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(INBOX_GROUP, {"type": "inbox.event", "event": kind, **ids})
    except Exception as exc:  # noqa: BLE001 -- a lost live update must not fail the caller
        logger.warning("could not broadcast %s (%s)", kind, type(exc).__name__)


def broadcast_on_commit(kind: str, **ids: int) -> None:
    transaction.on_commit(lambda: broadcast(kind, **ids))
