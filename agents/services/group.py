"""What a group of webhook events shares while it is applied in one transaction
(`webhooks.services.deliveries_process`, through `inbound.messenger_events_prepare`):
the conversations the group locked first, each handed to the first event that asks
for it, and which of the events' mids are stored already. Outside a group nothing is
kept, and the services ask the database as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from agents.models import Conversation


@dataclass
class _Group:
    conversations: dict[tuple[int, str], Conversation]
    asked: set[str]  # the mids looked up for the group
    stored: set[str] = field(default_factory=set)  # of those, the ones stored


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
