"""Small real-time events for agents' browsers, sent after commit over the channel layer.

The database is the truth: clients refetch what an event names. Losing an event (the
channel layer drops messages by design) costs freshness, never data.

Routing: an event about a conversation goes to the group of its page (`page.<pk>`),
which only sockets of agents who may see that page join (agents.consumers); an event
about no conversation (`pages.changed`) goes to every agent (`inbox`).
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from agents.models import Agent, Conversation
from agents.selectors import page_ids_visible
from webhooks.queue import publisher

logger = logging.getLogger(__name__)

INBOX_GROUP = "inbox"


def page_group(page_pk: int) -> str:
    return f"page.{page_pk}"


def groups_for(user: Agent) -> set[str]:
    """The groups an agent's socket joins: everyone's, and one per page they may see."""
    return {INBOX_GROUP} | {page_group(pk) for pk in page_ids_visible(user)}


def _group(ids: dict[str, int]) -> str:
    conversation_id = ids.get("conversation_id")
    if conversation_id is None:
        return INBOX_GROUP
    page_pk = (
        Conversation.objects.filter(pk=conversation_id).values_list("page_id", flat=True).first()
    )
    # A conversation that is gone concerns nobody's page: tell everyone to refetch.
    return INBOX_GROUP if page_pk is None else page_group(page_pk)


def broadcast(kind: str, **ids: int) -> None:
    """Send one event to the sockets that may see it. Call from sync code, after commit.

    The group is looked up here; the send itself runs on the background publisher and
    gives up after CHANNEL_SEND_TIMEOUT_SECONDS, so a hung Redis never holds the caller.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    group = _group(ids)
    message = {"type": "inbox.event", "event": kind, **ids}

    async def send() -> None:
        await asyncio.wait_for(
            layer.group_send(group, message), timeout=settings.CHANNEL_SEND_TIMEOUT_SECONDS
        )

    def job() -> None:
        try:
            async_to_sync(send)()
        except Exception as exc:  # noqa: BLE001 -- a lost live update must not fail anyone
            logger.warning("could not broadcast %s (%s)", kind, type(exc).__name__)

    publisher.submit(job)


def broadcast_on_commit(kind: str, **ids: int) -> None:
    transaction.on_commit(lambda: broadcast(kind, **ids))
