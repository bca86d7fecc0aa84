"""What a group of webhook events shares while it is applied in one transaction
(`webhooks.services.deliveries_process`, through `inbound.messenger_events_prepare`):
the conversations the group locked first, each handed to the first event that asks
for it, and which of the events' mids are stored already; and what its messages write,
kept until the group's next `flush`: the new messages (one INSERT for all of them) and
the conversations' clocks (one UPDATE). Outside a group nothing is kept: the services
ask and write the database at once, as before.

The group flushes before anything that could read what it keeps (`inbound`: before a
handover, a receipt, a rating or a trigger) and at its end, inside its transaction, so
that every statement sees the messages of the events before it, in their order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from agents.models import Conversation, Message

CLOCKS = ("last_message_at", "last_user_message_at")


@dataclass
class _Group:
    conversations: dict[tuple[int, str], Conversation]
    asked: set[str]  # the mids looked up for the group
    stored: set[str] = field(default_factory=set)  # of those, the ones stored
    # Kept until the next flush: new messages, what runs once they have their ids, and
    # the conversations' clocks moved forward (conversation pk -> field -> time).
    messages: list[Message] = field(default_factory=list)
    then: list[Callable[[], None]] = field(default_factory=list)
    clocks: dict[int, dict[str, datetime]] = field(default_factory=dict)


_current: ContextVar[_Group | None] = ContextVar("agents_event_group", default=None)


@contextmanager
def event_group(
    conversations: dict[tuple[int, str], Conversation], *, asked: set[str], stored: set[str]
) -> Iterator[None]:
    """Keep these for the group's events: the locked conversations by (page pk, PSID),
    the mids looked up and those found stored. Ends with the group (its transaction)."""
    token = _current.set(_Group(dict(conversations), set(asked), set(stored)))
    try:
        yield
    finally:
        _current.reset(token)


def conversation_take(page_pk: int, psid: str) -> Conversation | None:
    """The conversation the group locked for (page, PSID), once: a later event of the
    same customer reads it again (an earlier one may have changed it). Every service
    that locks a customer's conversation for an event takes it from here first, so that
    no event gets a copy older than another event's change."""
    group = _current.get()
    if group is None:
        return None
    return group.conversations.pop((page_pk, psid), None)


def mid_stored(mid: str) -> bool | None:
    """Whether a message with this mid is stored, when the group looked it up; None
    when it did not (or outside a group): ask the database."""
    group = _current.get()
    if group is None or mid not in group.asked:
        return None
    return mid in group.stored


def mid_added(mid: str) -> None:
    """A message with this mid was stored by an event of the group."""
    group = _current.get()
    if group is not None and mid:
        group.asked.add(mid)
        group.stored.add(mid)


def message_store(message: Message, then: Callable[[Message], None]) -> None:
    """Store a new message, then call `then` with it (its id set): in a group, at the
    group's next flush, with the group's other new messages in one INSERT; else now."""
    group = _current.get()
    if group is None or not connection.features.can_return_rows_from_bulk_insert:
        message.save(force_insert=True)
        then(message)
        return
    group.messages.append(message)
    group.then.append(lambda: then(message))


def clocks_move(conversation: Conversation, at: datetime, *, from_user: bool) -> None:
    """Move the conversation's clocks forward to `at`, never back (a late event is
    older): in a group at its next flush, with the other conversations' in one UPDATE;
    else now, one UPDATE, none when both are ahead already. Caller holds the
    conversation's lock, so the clocks read with it are the row's (or older, in a
    group, when an earlier event moved them: the flush keeps the latest)."""
    moved = {}
    for name in CLOCKS if from_user else CLOCKS[:1]:
        current = getattr(conversation, name)
        if current is None or current < at:
            setattr(conversation, name, at)
            moved[name] = at
    if not moved:
        return
    group = _current.get()
    if group is None:
        Conversation.objects.filter(pk=conversation.pk).update(**moved)
        return
    kept = group.clocks.setdefault(conversation.pk, {})
    for name, value in moved.items():
        if name not in kept or kept[name] < value:
            kept[name] = value


def flush() -> None:
    """Write what the group kept: its new messages in one INSERT (in the order they were
    made: their ids follow the events'), then run what waited for their ids, and the
    conversations' clocks in one UPDATE. Nothing outside a group. Caller is in the
    group's transaction."""
    group = _current.get()
    if group is None:
        return
    if group.messages:
        messages, group.messages = group.messages, []
        Message.objects.bulk_create(messages)
    if group.clocks:
        clocks, group.clocks = group.clocks, {}
        _clocks_write(clocks)
    then, group.then = group.then, []
    for call in then:
        call()


def _clocks_write(clocks: dict[int, dict[str, datetime]]) -> None:
    """One UPDATE: each conversation's clocks set to what the group kept for it (a CASE
    per clock; the others keep theirs). Written in SQL: the ORM's Case and When cost
    more than the statement itself."""
    adapt = connection.ops.adapt_datetimefield_value
    quote = connection.ops.quote_name
    sets, params = [], []
    for name in CLOCKS:
        kept = [(pk, values[name]) for pk, values in sorted(clocks.items()) if name in values]
        if not kept:
            continue
        column = quote(name)
        sets.append(
            f"{column} = CASE {quote('id')}"
            + " WHEN %s THEN %s" * len(kept)
            + f" ELSE {column} END"
        )
        for pk, at in kept:
            params += [pk, adapt(at)]
    ids = sorted(clocks)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Conversation._meta.db_table)} SET {', '.join(sets)} "  # noqa: S608 -- no input in the names
            f"WHERE {quote('id')} IN ({marks})",
            [*params, *ids],
        )
