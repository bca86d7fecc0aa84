"""Small real-time events for agents' browsers, sent after commit over the channel layer.

The database is the truth: clients refetch what an event names. Losing an event (the
channel layer drops messages by design) costs freshness, never data.

Routing: an event about a conversation goes to the group of its page (`page.<pk>`),
which only sockets of agents who may see that page join (agents.consumers); an event
about no conversation (`pages.changed`) goes to every agent (`inbox`).

Each socket also joins its agent's own group (`user.<pk>`): `access.changed` there
makes it check again that its agent is active and its session still valid (closing it
otherwise) and re-follow the pages the agent now sees. It is sent after commit where
access changes: logout, admin saves of users and teams, `create_agent`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.db import transaction
from django.utils.crypto import constant_time_compare

from agents.models import Agent, Conversation
from agents.selectors import page_ids_visible
from webhooks.queue import publisher

logger = logging.getLogger(__name__)

INBOX_GROUP = "inbox"


def page_group(page_pk: int) -> str:
    return f"page.{page_pk}"


def user_group(user_pk: int) -> str:
    return f"user.{user_pk}"


def groups_for(user: Agent) -> set[str]:
    """The groups an agent's socket joins: everyone's, their own, and one per page they
    may see."""
    return {INBOX_GROUP, user_group(user.pk)} | {page_group(pk) for pk in page_ids_visible(user)}


def socket_user(*, user_pk: int, session_key: str | None) -> Agent | None:
    """The agent of a socket, read afresh, if the socket may stay open: the agent is
    still active and, for a socket opened with a session, that session still exists
    and still authenticates them (logout deletes it; a new password invalidates it)."""
    user = Agent.objects.filter(pk=user_pk, is_active=True).first()
    if user is None or session_key is None:
        return user
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    data = store.load()
    if str(data.get(SESSION_KEY)) != str(user_pk):
        return None
    if not constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
        return None
    return user


def _group(ids: dict[str, int]) -> str:
    conversation_id = ids.get("conversation_id")
    if conversation_id is None:
        return INBOX_GROUP
    page_pk = (
        Conversation.objects.filter(pk=conversation_id).values_list("page_id", flat=True).first()
    )
    # A conversation that is gone concerns nobody's page: tell everyone to refetch.
    return INBOX_GROUP if page_pk is None else page_group(page_pk)


def broadcast(kind: str, *, page_pk: int | None = None, **ids: int) -> None:
    """Send one event to the sockets that may see it. Call from sync code, after commit.

    `page_pk`: the page of the conversation the event is about, when the caller has it
    at hand (a conversation's page never changes); else the group is looked up here.
    The send itself runs on the background publisher and gives up after
    CHANNEL_SEND_TIMEOUT_SECONDS, so a hung Redis never holds the caller.
    """
    if get_channel_layer() is None:
        return
    group = page_group(page_pk) if page_pk is not None else _group(ids)
    _group_send(group, kind, ids)


def broadcast_on_commit(kind: str, *, page_pk: int | None = None, **ids: int) -> None:
    if page_pk is None:
        transaction.on_commit(lambda: broadcast(kind, **ids))
    else:
        transaction.on_commit(lambda: broadcast(kind, page_pk=page_pk, **ids))


def access_changed(user_ids: Iterable[int]) -> None:
    """Make these agents' sockets check their access again. Call after commit."""
    layer = get_channel_layer()
    if layer is None:
        return
    for pk in sorted(set(user_ids)):
        try:
            async_to_sync(layer.group_send)(user_group(pk), {"type": "access.changed"})
        except Exception as exc:  # noqa: BLE001 -- like broadcast(): never fail the caller
            logger.warning("could not send access.changed (%s)", type(exc).__name__)


def access_changed_on_commit(user_ids: Iterable[int]) -> None:
    ids = sorted(set(user_ids))
    if ids:
        transaction.on_commit(lambda: access_changed(ids))


# --- Issue 11: events for one agent, and presence for the inboxes that follow it -------

PRESENCE_GROUP = "presence"


def user_event(user_pk: int, kind: str, **ids: int) -> None:
    """Send one event to one agent's sockets (their own group), e.g. `ticket.assigned`.
    Call after commit; like `broadcast`, it never fails the caller."""
    _group_send(user_group(user_pk), kind, ids)


def presence_changed_on_commit(user_pk: int) -> None:
    """`presence.changed` (the agent's id) to the sockets that asked to follow presence
    (the inbox sends `{"type": "presence.follow"}`), after commit."""
    transaction.on_commit(
        lambda: _group_send(PRESENCE_GROUP, "presence.changed", {"user_id": user_pk})
    )


# Live events waiting for the background publisher, in order: one job sends all that
# queued up meanwhile, in one event loop (a commit of a group of events broadcasts many).
_pending: list[tuple[str, dict[str, Any]]] = []
_pending_lock = threading.Lock()


def _pending_forget() -> None:
    """A forked child (a prefork worker) starts with no queued event and a free lock: the
    parent's queue is flushed by the parent's publisher, not the child's."""
    global _pending_lock  # replaced, not shared, after a fork
    _pending.clear()
    _pending_lock = threading.Lock()


os.register_at_fork(after_in_child=_pending_forget)


def _group_send(group: str, kind: str, ids: dict[str, int]) -> None:
    """The send, on the background publisher, given up after CHANNEL_SEND_TIMEOUT_SECONDS.
    Sends queued while the publisher is busy go out together, in order."""
    if get_channel_layer() is None:
        return
    with _pending_lock:
        _pending.append((group, {"type": "inbox.event", "event": kind, **ids}))
        first = len(_pending) == 1
    if first:
        publisher.submit(_pending_send)


# At most this many events in one channel-layer message (`inbox.events`).
COALESCE_MAX = 200


def _pending_send() -> None:
    """Send what queued up, one channel-layer message per group and COALESCE_MAX events:
    the group's events in their order (`inbox.events`; the consumer sends each to its
    socket as before), or a lone event as it is (`inbox.event`). channels_redis pays a
    round trip and a script run per group_send, and a socket's channel holds a bounded
    number of messages: a commit of fifty events sent one by one took 10 ms each and
    overflowed the sockets' channels under load."""
    with _pending_lock:
        batch = _pending[:]
        _pending.clear()
    layer = get_channel_layer()
    if layer is None or not batch:
        return
    by_group: dict[str, list[dict[str, Any]]] = {}
    for group, message in batch:
        by_group.setdefault(group, []).append(message)
    messages = [
        (group, events[start : start + COALESCE_MAX])
        for group, events in by_group.items()
        for start in range(0, len(events), COALESCE_MAX)
    ]

    async def send() -> None:
        for group, events in messages:
            message = events[0] if len(events) == 1 else {"type": "inbox.events", "events": events}
            try:
                await asyncio.wait_for(
                    layer.group_send(group, message),
                    timeout=settings.CHANNEL_SEND_TIMEOUT_SECONDS,
                )
            except Exception as exc:  # noqa: BLE001 -- a lost live update must not fail anyone
                logger.warning(
                    "could not broadcast %s (%s)",
                    ", ".join(event["event"] for event in events),
                    type(exc).__name__,
                )

    try:
        async_to_sync(send)()
    except Exception as exc:  # noqa: BLE001 -- as above, for the event loop itself
        logger.warning("could not broadcast %d events (%s)", len(batch), type(exc).__name__)


def user_event_on_commit(user_pk: int, kind: str, **ids: int) -> None:
    transaction.on_commit(lambda: user_event(user_pk, kind, **ids))
