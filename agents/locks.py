"""Row locks, one helper per kind of row: the only place `select_for_update` is called
in `agents`.

Each helper locks only the rows of its own table (`of=("self",)`): the page and contact
joined in for reading are not locked, so conversations of one page never queue behind
each other. Call them inside `transaction.atomic()`. When several rows are needed, lock
the conversation first, then its ticket, then a message: one order everywhere, no
deadlock. (SQLite has no row locks; its IMMEDIATE transactions serialise writers.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q

from agents.models import (
    AgentPresence,
    AuthFailures,
    Conversation,
    Message,
    TeamRouting,
    Ticket,
    TicketWait,
)


def conversation_lock(conversation_id: int) -> Conversation:
    """The conversation, locked, with its page and contact read (not locked)."""
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("page", "contact")
        .get(pk=conversation_id)
    )


def conversation_lock_by_psid(*, page_pk: int, psid: str) -> Conversation | None:
    """The conversation of (page, PSID), locked, with its page and contact read (not
    locked), in one statement; None when there is none yet."""
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("page", "contact")
        .filter(page_id=page_pk, contact__page_id=page_pk, contact__psid=psid)
        .first()
    )


def conversations_lock_by_psids(pairs: Iterable[tuple[int, str]]) -> list[Conversation]:
    """Lock the conversations of these (page pk, PSID) pairs that exist, in id order, in
    one statement, with their page and contact read (not locked). A group of events
    locks what it will lock this way first: two workers' groups then wait for each
    other instead of deadlocking."""
    by_page: dict[int, set[str]] = {}
    for page_pk, psid in pairs:
        by_page.setdefault(page_pk, set()).add(psid)
    if not by_page:
        return []
    wanted = Q()
    for page_pk, psids in sorted(by_page.items()):
        wanted |= Q(page_id=page_pk, contact__page_id=page_pk, contact__psid__in=sorted(psids))
    return list(
        Conversation.objects.select_for_update(of=("self",))
        .select_related("page", "contact")
        .filter(wanted)
        .order_by("pk")
    )


def ticket_lock(ticket_id: int) -> Ticket:
    """A ticket, locked. Lock its conversation first when both are needed."""
    return Ticket.objects.select_for_update().get(pk=ticket_id)


def ticket_lock_unclosed(conversation: Conversation) -> Ticket | None:
    """The conversation's unclosed ticket (there is at most one), locked, or None; its
    `conversation` is the one given (no query to reach it)."""
    ticket = (
        Ticket.objects.select_for_update()
        .filter(conversation=conversation)
        .exclude(status=Ticket.Status.CLOSED)
        .first()
    )
    if ticket is not None:
        ticket.conversation = conversation
    return ticket


def ticket_lock_closed_since(conversation: Conversation, since: datetime) -> Ticket | None:
    """The conversation's most recently closed ticket, if closed at or after `since`,
    locked; its `conversation` is the one given."""
    ticket = (
        Ticket.objects.select_for_update()
        .filter(conversation=conversation, status=Ticket.Status.CLOSED, closed_at__gte=since)
        .order_by("-closed_at")
        .first()
    )
    if ticket is not None:
        ticket.conversation = conversation
    return ticket


def message_lock(message_id: int) -> Message:
    return Message.objects.select_for_update().get(pk=message_id)


def auth_failures_lock(*, scope: str, key: str, window_ends_at: datetime) -> AuthFailures:
    """The failure counter of (scope, key), locked; made empty, its window ending at
    `window_ends_at`, when there is none (two first failures at once: one creates it,
    the other waits for it and locks it)."""
    row, _ = AuthFailures.objects.select_for_update().get_or_create(
        scope=scope,
        key=key,
        defaults={"failures": 0, "window_ends_at": window_ends_at, "expires_at": window_ends_at},
    )
    return row


def team_routing_lock(team_id: int) -> TeamRouting | None:
    """A team's routing row, locked: auto-assignment for one team runs one at a time.
    Take it before `presence_lock_many`, and both before any conversation or ticket."""
    return TeamRouting.objects.select_for_update().filter(team_id=team_id).first()


def presence_lock_many(user_ids: list[int]) -> list[AgentPresence]:
    """These agents' presence rows, locked in user-id order (one order everywhere: two
    teams sharing an agent never deadlock; an agent's open tickets are counted under it)."""
    return list(
        AgentPresence.objects.select_for_update().filter(user_id__in=user_ids).order_by("user_id")
    )


def ticket_wait_lock(ticket_id: int) -> TicketWait | None:
    return TicketWait.objects.select_for_update().filter(ticket_id=ticket_id).first()
