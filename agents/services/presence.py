"""Presence: each agent is online, away or offline.

Offline when no inbox socket of theirs is alive: one `AgentSocket` row per open socket,
on whichever Daphne process serves it, its heartbeat moved by the client's pings. A
process that dies without a clean disconnect leaves rows that go stale after
PRESENCE_STALE_SECONDS and count for nothing (the beat's sweep deletes them). With a
live socket, the agent's own toggle says online or away.

A change of an agent's presence is told to the inboxes that follow presence
(`presence.changed`, with the agent's id, after commit); an agent who comes online
makes auto-assignment run for their teams (`routing.agent_available`). Socket
heartbeats use real time, not the emulator's movable clock: a day moved forward must
not make every socket stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents import realtime
from agents.errors import InvalidInput
from agents.models import Agent, AgentPresence, AgentSocket, Presence


def _fresh_since() -> datetime:
    return timezone.now() - timedelta(seconds=settings.PRESENCE_STALE_SECONDS)


def presence_of(user_ids: Iterable[int]) -> dict[int, Presence]:
    """Each agent's presence. Two queries, whatever the number of agents."""
    ids = list(user_ids)
    live = set(
        AgentSocket.objects.filter(user_id__in=ids, seen_at__gte=_fresh_since()).values_list(
            "user_id", flat=True
        )
    )
    away = set(
        AgentPresence.objects.filter(user_id__in=ids, status=Presence.AWAY).values_list(
            "user_id", flat=True
        )
    )
    return {
        pk: Presence.OFFLINE if pk not in live else Presence.AWAY if pk in away else Presence.ONLINE
        for pk in ids
    }


def _changed(user_id: int, before: Presence, after: Presence) -> None:
    """Tell the inboxes, and route to an agent who came online (both after commit)."""
    if before == after:
        return
    realtime.presence_changed_on_commit(user_id)
    if after == Presence.ONLINE:
        from agents.services import routing  # noqa: PLC0415 -- routing imports this module

        routing.agent_available(user_id=user_id)


def socket_open(*, user_id: int, channel_name: str) -> Presence:
    """An inbox socket of the agent opened (called by the consumer on connect)."""
    with transaction.atomic():
        before = presence_of([user_id])[user_id]
        AgentSocket.objects.update_or_create(
            channel_name=channel_name[:200],
            defaults={"user_id": user_id, "seen_at": timezone.now()},
        )
        after = presence_of([user_id])[user_id]
        _changed(user_id, before, after)
    return after


def socket_seen(*, user_id: int, channel_name: str) -> None:
    """The socket answered a ping: its heartbeat moves. A socket swept as stale (its
    process was slow, not dead) is back."""
    with transaction.atomic():
        updated = AgentSocket.objects.filter(channel_name=channel_name[:200]).update(
            seen_at=timezone.now()
        )
        if not updated:
            socket_open(user_id=user_id, channel_name=channel_name)


def socket_close(*, user_id: int, channel_name: str) -> None:
    """The socket closed cleanly (called by the consumer on disconnect)."""
    with transaction.atomic():
        before = presence_of([user_id])[user_id]
        AgentSocket.objects.filter(channel_name=channel_name[:200]).delete()
        _changed(user_id, before, presence_of([user_id])[user_id])


def presence_set(*, user: Agent, status: str) -> Presence:
    """The agent's toggle: online or away (offline is having no inbox open). Returns the
    presence others now see."""
    if status not in (Presence.ONLINE, Presence.AWAY):
        raise InvalidInput("Presence must be \u201conline\u201d or \u201caway\u201d.")
    with transaction.atomic():
        before = presence_of([user.pk])[user.pk]
        AgentPresence.objects.update_or_create(user=user, defaults={"status": status})
        after = presence_of([user.pk])[user.pk]
        _changed(user.pk, before, after)
    return after


def presence_status(user: Agent) -> str:
    """The agent's toggle as set (online unless they chose away)."""
    status = AgentPresence.objects.filter(user=user).values_list("status", flat=True).first()
    return status or Presence.ONLINE


def sockets_sweep() -> int:
    """Delete the sockets whose heartbeat is stale (their process died) and tell the
    inboxes about the agents who are offline now. Returns how many rows went."""
    with transaction.atomic():
        stale = AgentSocket.objects.filter(seen_at__lt=_fresh_since())
        users = set(stale.values_list("user_id", flat=True))
        count, _ = stale.delete()
        for user_id, now in presence_of(users).items():
            if now == Presence.OFFLINE:
                realtime.presence_changed_on_commit(user_id)
    return count


def agent_touch_assigned(user_id: int) -> None:
    """A ticket was given to the agent (by a claim, a transfer or auto-assignment): they
    go to the back of the line for the next one. Call after commit, outside the locks of
    the assignment (auto-assignment sets it under its own)."""
    updated = AgentPresence.objects.filter(user_id=user_id).update(last_assigned_at=timezone.now())
    if not updated:
        AgentPresence.objects.get_or_create(
            user_id=user_id, defaults={"last_assigned_at": timezone.now()}
        )
