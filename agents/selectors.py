"""Reads for the API and the inbox, filtered by what the agent may see.

Lists cost a constant number of queries, whatever the number of tickets: related rows
are joined (select_related) and per-ticket facts (last message, oldest unanswered
message) are subquery annotations of the one list query.

Long lists are read a page at a time with a keyset (`ticket_page`, `ticket_message_page`):
a page starts after the position (sort key and id) where the previous one ended, so a
deep page costs the same one query as the first, never an OFFSET that scans what it skips.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    Func,
    JSONField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, JSONObject, Lower

from agents.errors import InvalidInput
from agents.models import (
    Agent,
    ControlTransition,
    Conversation,
    Message,
    OwnerRole,
    Tag,
    Team,
    Ticket,
    TicketEvent,
    agent_name,
)
from webhooks.events import timestamp_to_datetime
from webhooks.models import Page

Queue = Literal["waiting", "mine", "all_open", "closed"]
UNCLOSED = (Ticket.Status.WAITING, Ticket.Status.OPEN)

T = TypeVar("T")


@dataclass(frozen=True)
class Slice(Generic[T]):
    """One page of a list (not to be confused with a Facebook `Page`): its rows in the
    list's order, and whether a next page exists."""

    items: list[T]
    more: bool


def _slice(rows: list[T], limit: int) -> Slice[T]:
    # The query asked for one row more than the page holds: its presence is `more`.
    return Slice(items=rows[:limit], more=len(rows) > limit)


def visible_page_ids(user: Agent) -> set[int] | None:
    """Pages the agent may see; None means all of them.

    A page that no team lists is visible to every agent; a page that teams list is
    visible to their members. Superusers see everything.
    """
    if user.is_superuser:
        return None
    # One query (every list and check of the API asks it first).
    listed = Team.pages.through.objects.filter(page_id=OuterRef("pk"))
    return set(
        Page.objects.filter(~Exists(listed) | Exists(listed.filter(team__members=user)))
        .values_list("pk", flat=True)
        .order_by()
    )


def page_visible(user: Agent, page_id: int) -> bool:
    visible = visible_page_ids(user)
    return visible is None or page_id in visible


def page_ids_visible(user: Agent) -> set[int]:
    """Like `visible_page_ids`, with "all" spelled out as the pages that exist now."""
    visible = visible_page_ids(user)
    if visible is None:
        return set(Page.objects.values_list("pk", flat=True))
    return visible


def _visible_tickets(user: Agent, tickets: QuerySet[Ticket] | None = None) -> QuerySet[Ticket]:
    tickets = Ticket.objects.all() if tickets is None else tickets
    visible = visible_page_ids(user)
    if visible is None:
        return tickets
    if connection.vendor == "postgresql":
        # The join's `page_id IN (…)`: an EXISTS is one more relation for the planner,
        # whose join search then took 4 to 5 ms of a list's 6 to 7 ms of planning (at
        # 100 k tickets), more than executing it.
        return tickets.filter(conversation__page_id__in=visible)
    # EXISTS, not the join: SQLite, without statistics, would read the list from the
    # conversations of those pages (their page_id index) and sort everything they have,
    # rather than follow the queue's index and stop at a page.
    return tickets.filter(
        Exists(Conversation.objects.filter(pk=OuterRef("conversation_id"), page_id__in=visible))
    )


@cache
def _inbox_base() -> QuerySet[Ticket]:
    """All tickets with their joins and `_with_inbox_facts`, in the list's order: built
    once per process (its six subqueries cost more to build than the list to fetch).
    Never evaluated itself: `_inbox_tickets` hands out copies."""
    return _with_inbox_facts(
        Ticket.objects.select_related(
            "conversation__contact", "conversation__page", "assignee", "csat"
        )
    ).order_by("opened_at", "id")


def _inbox_tickets() -> QuerySet[Ticket]:
    return _inbox_base().all()


class _JSONObject(JSONObject):
    """Django's JSONObject without its feature probe: on SQLite, the first use on each
    connection wrapper asks the database whether JSON works (a savepoint, a query, a
    release), three queries that a call's count then shows once. Both databases the
    helpdesk supports have it (SQLite's JSON functions are built in since 3.38)."""

    def as_sql(  # type: ignore[override]
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> Any:
        return Func.as_sql(self, compiler, connection, **extra_context)


def _with_inbox_facts(tickets: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Annotate the last message of the conversation (for a preview), for the waiting
    time the ticket's last reply and its oldest customer message after it, and whether
    the conversation has an unclosed ticket (where a closed one may not ask again)."""
    last = (
        Message.objects.filter(conversation_id=OuterRef("conversation_id"))
        .exclude(author_kind=Message.Author.SYSTEM)
        .order_by("-timestamp", "-id")
    )
    replies = (
        Message.objects.filter(ticket_id=OuterRef("pk"), direction=Message.Direction.OUTBOUND)
        .exclude(status=Message.Status.FAILED)
        .order_by("-timestamp")
    )
    # The last message's fields in one JSON object: one lookup per ticket, not four.
    preview = _JSONObject(
        author_kind="author_kind", text="text", attachments="attachments", timestamp="timestamp"
    )
    return tickets.annotate(
        last_message_preview=Subquery(last.values(preview=preview)[:1], output_field=JSONField()),
        last_reply_ts=Subquery(replies.values("timestamp")[:1]),
        # A LIMIT 1 lookup, not EXISTS: PostgreSQL hashes an EXISTS over every unclosed
        # ticket (3,000 rows at 100 k, half the list's execution) to answer for 50.
        conversation_has_unclosed=Coalesce(
            Subquery(
                Ticket.objects.filter(
                    conversation_id=OuterRef("conversation_id"), status__in=UNCLOSED
                ).values(yes=Value(True, output_field=BooleanField()))[:1]
            ),
            Value(False),
        ),
    ).annotate(
        unanswered_since_ts=Subquery(
            Message.objects.filter(
                ticket_id=OuterRef("pk"),
                author_kind=Message.Author.CUSTOMER,
                timestamp__gt=Coalesce(OuterRef("last_reply_ts"), Value(0)),
            )
            .order_by("timestamp")
            .values("timestamp")[:1]
        )
    )


def ticket_list(
    *,
    user: Agent,
    status: str | None = None,
    mine: bool = False,
    queue: Queue | None = None,
    filters: TicketFilters | None = None,
) -> QuerySet[Ticket]:
    """Tickets the agent may see, with the facts the inbox shows (`_with_inbox_facts`),
    in `ticket_order(queue)`.

    `queue` is one of the inbox's lists: waiting; mine (my unclosed tickets); all_open
    (waiting or open); closed (most recently closed first). `filters` narrow it
    further (`ticket_filters_parse`).
    """
    tickets = _visible_tickets(user, _inbox_tickets())
    if filters is not None:
        tickets = ticket_filter(tickets, filters)
    if status:
        tickets = tickets.filter(status=status)
    if mine:
        tickets = tickets.filter(assignee=user)
    if queue == "waiting":
        tickets = tickets.filter(status=Ticket.Status.WAITING)
    elif queue == "mine":
        tickets = tickets.exclude(status=Ticket.Status.CLOSED).filter(assignee=user)
    elif queue == "all_open":
        # Not closed, rather than waiting or open (the same, by the status check): the
        # condition of the partial indexes that keep these queues in order.
        tickets = tickets.exclude(status=Ticket.Status.CLOSED)
    elif queue == "closed":
        # Closing always sets closed_at (ticket_mark_closed); the filter only makes the
        # order total, so that a keyset on it skips and repeats nothing.
        tickets = tickets.filter(status=Ticket.Status.CLOSED, closed_at__isnull=False).order_by(
            "-closed_at", "-id"
        )
    return tickets


@dataclass(frozen=True)
class TicketFilters:
    """What the list is narrowed to, besides its queue (`ticket_filters_parse` reads
    them from a request). None or False: not filtered by that."""

    page_id: int | None = None  # a Page's pk
    tag_id: int | None = None
    assignee: Literal["me", "none"] | int | None = None  # or an agent's pk
    needs_reply: bool = False
    user_id: int | None = None  # who "me" is

    @property
    def active(self) -> bool:
        return bool(
            self.page_id is not None
            or self.tag_id is not None
            or self.assignee is not None
            or self.needs_reply
        )


_YES = {"1", "true", "yes", "on"}
_NO = {"", "0", "false", "no", "off"}


def ticket_filters_parse(
    *,
    user: Agent,
    page: str | None = None,
    tag: str | None = None,
    assignee: str | None = None,
    needs_reply: str | None = None,
) -> TicketFilters:
    """The list's filters from their text (a URL's parameters): `page` a Facebook page id
    the agent may see, `tag` a tag's name (any case; inactive tags too: tickets keep
    them), `assignee` `me`, `none` or an agent's id, `needs_reply` 1/0 (true/false).
    Empty means not filtered. Anything else: InvalidInput, saying what is wrong. At most
    four small queries, whatever the number of tickets."""
    page_pk: int | None = None
    if page:
        visible = visible_page_ids(user)
        pages = Page.objects.filter(page_id=page)
        if visible is not None:
            pages = pages.filter(pk__in=visible)
        page_pk = pages.values_list("pk", flat=True).first()
        if page_pk is None:
            raise InvalidInput(f"`page`: no page with id {page!r} that you can see.")
    tag_pk: int | None = None
    if tag:
        tag_pk = Tag.objects.filter(name__iexact=tag.strip()).values_list("pk", flat=True).first()
        if tag_pk is None:
            raise InvalidInput(f"`tag`: there is no tag named {tag!r}.")
    who: Literal["me", "none"] | int | None = None
    if assignee:
        if assignee in ("me", "none"):
            who = assignee  # type: ignore[assignment] # narrowed by the test above
        elif assignee.isascii() and assignee.isdigit() and len(assignee) < 19:
            if not Agent.objects.filter(pk=int(assignee)).exists():
                raise InvalidInput(f"`assignee`: no agent with id {assignee}.")
            who = int(assignee)
        else:
            raise InvalidInput(
                f"`assignee` is `me`, `none` (nobody has the ticket) or an agent's id, "
                f"not {assignee!r}."
            )
    flag = (needs_reply or "").strip().lower()
    if flag not in _YES | _NO:
        raise InvalidInput(f"`needs_reply` is 1 or 0 (true or false), not {needs_reply!r}.")
    return TicketFilters(
        page_id=page_pk,
        tag_id=tag_pk,
        assignee=who,
        needs_reply=flag in _YES,
        user_id=user.pk,
    )


def _last_author(conversation_ref: str) -> Subquery:
    """Who wrote the conversation's last message (system lines aside): the list's
    preview and "needs reply" read the same message."""
    return Subquery(
        Message.objects.filter(conversation_id=OuterRef(conversation_ref))
        .exclude(author_kind=Message.Author.SYSTEM)
        .order_by("-timestamp", "-id")
        .values("author_kind")[:1]
    )


def ticket_filter(tickets: QuerySet[Ticket], filters: TicketFilters) -> QuerySet[Ticket]:
    """`tickets` narrowed to those that match `filters`: SQL conditions of the one list
    (or count) query, a subquery for "needs reply" (the customer wrote last)."""
    if filters.page_id is not None:
        tickets = tickets.filter(conversation__page_id=filters.page_id)
    if filters.tag_id is not None:
        tickets = tickets.filter(tag_links__tag_id=filters.tag_id)
    if filters.assignee == "me":
        tickets = tickets.filter(assignee_id=filters.user_id)
    elif filters.assignee == "none":
        tickets = tickets.filter(assignee__isnull=True)
    elif filters.assignee is not None:
        tickets = tickets.filter(assignee_id=filters.assignee)
    if filters.needs_reply:
        tickets = tickets.annotate(_last_author=_last_author("conversation_id")).filter(
            _last_author=Message.Author.CUSTOMER
        )
    return tickets


def ticket_needs_reply(ticket: Ticket) -> bool:
    """Whether the customer wrote last in the ticket's conversation (the last message,
    system lines aside, is theirs). Needs `ticket_list`'s annotations."""
    preview = getattr(ticket, "last_message_preview", None) or {}
    return preview.get("author_kind") == Message.Author.CUSTOMER


TicketOrder = Literal["opened", "closed"]


class TicketPosition(NamedTuple):
    """Where a ticket stands in its list: (opened_at, id) ascending, or in the closed
    queue (closed_at, id) descending."""

    at: datetime
    id: int


def ticket_order(queue: Queue | None) -> TicketOrder:
    return "closed" if queue == "closed" else "opened"


def ticket_position(ticket: Ticket, order: TicketOrder) -> TicketPosition:
    at = ticket.closed_at if order == "closed" else ticket.opened_at
    assert at is not None  # the closed queue lists only tickets with closed_at
    return TicketPosition(at=at, id=ticket.pk)


def ticket_page(
    *,
    user: Agent,
    status: str | None = None,
    mine: bool = False,
    queue: Queue | None = None,
    after: TicketPosition | None = None,
    limit: int,
    filters: TicketFilters | None = None,
) -> Slice[Ticket]:
    """The first `limit` tickets of `ticket_list` that come after `after` in its order
    (from the start when None), with their tags. Two queries (the page, its tickets'
    tags), however deep the page."""
    tickets = ticket_list(
        user=user, status=status, mine=mine, queue=queue, filters=filters
    ).prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by(Lower("name"), "pk")))
    if after is not None:
        if ticket_order(queue) == "closed":
            tickets = tickets.filter(
                Q(closed_at__lt=after.at) | Q(closed_at=after.at, pk__lt=after.id)
            )
        else:
            tickets = tickets.filter(
                Q(opened_at__gt=after.at) | Q(opened_at=after.at, pk__gt=after.id)
            )
    return _slice(list(tickets[: limit + 1]), limit)


def ticket_counts(*, user: Agent, filters: TicketFilters | None = None) -> dict[str, int]:
    """How many tickets each inbox queue holds (of those that match `filters`), in one
    query."""
    tickets = _visible_tickets(user)
    if filters is not None:
        tickets = ticket_filter(tickets, filters)
    return tickets.aggregate(
        waiting=Count("pk", filter=Q(status=Ticket.Status.WAITING)),
        mine=Count("pk", filter=Q(status__in=UNCLOSED, assignee=user)),
        all_open=Count("pk", filter=Q(status__in=UNCLOSED)),
        closed=Count("pk", filter=Q(status=Ticket.Status.CLOSED)),
    )


def ticket_get(*, user: Agent, ticket_id: int) -> Ticket | None:
    return ticket_list(user=user).filter(pk=ticket_id).first()


def _ms(ms: int) -> datetime:
    return timestamp_to_datetime(ms)


class LastMessage(NamedTuple):
    """A preview of a conversation's last message, for the ticket list."""

    author_kind: str
    text: str
    attachment_types: list[str]
    timestamp: int


def ticket_last_message(ticket: Ticket) -> LastMessage | None:
    """The conversation's last message (not a system line). Needs `ticket_list`'s
    annotations."""
    preview: dict[str, Any] | None = getattr(ticket, "last_message_preview", None)
    if not preview or preview.get("timestamp") is None:
        return None
    attachments = preview.get("attachments") or []
    if isinstance(attachments, str):  # SQLite's json_object keeps a JSON column as text
        attachments = json.loads(attachments)
    return LastMessage(
        author_kind=preview.get("author_kind") or "",
        text=preview.get("text") or "",
        attachment_types=[str(a.get("type") or "file") for a in attachments if isinstance(a, dict)],
        timestamp=preview["timestamp"],
    )


def ticket_waiting_since(ticket: Ticket) -> datetime | None:
    """Since when the customer has been waiting for us, or None when they are not.

    A waiting ticket waits since control came to us; an open one since the customer's
    oldest message after the ticket's last reply. Needs `ticket_list`'s annotations.
    """
    if ticket.status == Ticket.Status.WAITING:
        if ticket.handover_timestamp:
            return _ms(ticket.handover_timestamp)
        return ticket.opened_at
    since = getattr(ticket, "unanswered_since_ts", None)
    if ticket.status == Ticket.Status.OPEN and since:
        return _ms(since)
    return None


def ticket_conversation_has_unclosed(ticket: Ticket) -> bool:
    """Whether the ticket's conversation has an unclosed ticket (this one, or another
    after it). From `ticket_list`'s annotation; one query without it."""
    annotated = getattr(ticket, "conversation_has_unclosed", None)
    if annotated is not None:
        return bool(annotated)
    return Ticket.objects.filter(
        conversation_id=ticket.conversation_id, status__in=UNCLOSED
    ).exists()


def ticket_transitions(*, ticket: Ticket, limit: int = 100) -> list[ControlTransition]:
    """The conversation's latest thread-control changes, oldest first."""
    latest = ControlTransition.objects.filter(conversation_id=ticket.conversation_id).order_by(
        "-created_at", "-id"
    )[:limit]
    return list(reversed(latest))


def ticket_events(*, ticket: Ticket) -> list[TicketEvent]:
    """The ticket's changes, oldest first, each with its `segment` and `is_context` (see
    `timeline_segments`): the changes of an earlier stretch of a reopened ticket are
    folded with that stretch's messages. No query beyond the events'."""
    events = list(
        TicketEvent.objects.filter(ticket=ticket)
        .select_related("actor")
        .order_by("created_at", "id")
    )
    sessions = _ticket_sessions(ticket.pk, ticket.status, events)
    index = 0
    for event in events:
        while index < len(sessions) - 1 and not _event_before(event, sessions[index].reopened):
            index += 1
        last = index == len(sessions) - 1
        event.segment = (  # type: ignore[attr-defined]
            this_ticket_segment(ticket.pk) if last else _ticket_segment(ticket.pk, index, sessions)
        )
        event.is_context = not last  # type: ignore[attr-defined]
    return events


def ticket_messages(*, ticket: Ticket) -> QuerySet[Message]:
    """The conversation's whole history, in timestamp order (Meta's event time; ours for
    what agents send). `timeline_segments` says who had the conversation for each."""
    return (
        Message.objects.filter(conversation_id=ticket.conversation_id)
        .select_related("author", "attachment_file")  # files agents sent (attachments)
        .order_by("timestamp", "id")
    )


# --- The timeline: who had the conversation, when ------------------------------------
#
# A conversation's messages are this ticket's (shown as they are), or context, folded
# by who had the thread then: the bot, the Page Inbox, another app, nobody, or an
# earlier (or later) ticket. Who had it comes from the thread-control history
# (ControlTransition rows, by their time `at`); which ticket a message belongs to from
# the message itself, and, for a ticket that was closed and reopened, from its
# stretches between reopenings (TicketEvent rows).

SegmentKind = Literal[
    "this_ticket",
    "earlier_ticket",
    "later_ticket",
    "helpdesk",
    "bot",
    "page_inbox",
    "other_app",
    "nobody",
]
_PLATFORM_STAMPED = (Message.Author.CUSTOMER, Message.Author.BOT, Message.Author.PAGE_INBOX)


@dataclass(frozen=True)
class Segment:
    """Who had the conversation when a timeline item happened. Consecutive context
    items of one `key` are folded together under `label`."""

    kind: SegmentKind
    key: str
    label: str
    app_id: str = ""
    ticket_id: int | None = None
    ticket_status: str = ""  # of an earlier or later ticket
    closed_by: str = ""
    outcome: str = ""


@dataclass(frozen=True)
class _Session:
    """A stretch of a ticket, from its opening or a reopening to the next reopening.
    `reopened` is the event that ended it (None: the ticket's last stretch), `close` the
    closing that ended it, if it was closed."""

    reopened: TicketEvent | None
    close: TicketEvent | None


def _ticket_sessions(ticket_id: int, status: str, events: Iterable[TicketEvent]) -> list[_Session]:
    """A ticket's stretches, from its events in order (others' events are skipped)."""
    sessions: list[_Session] = []
    close: TicketEvent | None = None
    for event in events:
        if event.ticket_id != ticket_id:
            continue
        if event.kind == TicketEvent.Kind.CLOSED:
            close = event
        elif event.kind == TicketEvent.Kind.REOPENED:
            sessions.append(_Session(reopened=event, close=close))
            close = None
    sessions.append(
        _Session(reopened=None, close=close if status == Ticket.Status.CLOSED else None)
    )
    return sessions


def _event_before(event: TicketEvent, reopened: TicketEvent | None) -> bool:
    if reopened is None:
        return True
    return (event.created_at, event.pk) < (reopened.created_at, reopened.pk)


def _message_before(message: Message, reopened: TicketEvent | None) -> bool:
    """Whether a message of the ticket came before a reopening. What Meta stamped is
    compared with the handover's time (it may have been stored late, or early, as
    context); what we wrote, with when the reopening was recorded."""
    if reopened is None:
        return True
    if message.author_kind in _PLATFORM_STAMPED and reopened.event_timestamp is not None:
        return message.timestamp < reopened.event_timestamp
    return message.created_at < reopened.created_at


def _agent_name(agent: Agent | None) -> str:
    if agent is None:
        return ""
    return agent.get_full_name() or agent.get_username()


def this_ticket_segment(ticket_id: int | None) -> Segment:
    """The segment of what is shown as it is: the ticket's own messages (and events)."""
    return Segment(
        kind="this_ticket", key=f"ticket:{ticket_id}", label="This ticket", ticket_id=ticket_id
    )


def _ticket_segment(
    other_id: int,
    index: int,
    sessions: Sequence[_Session],
    *,
    status: str = Ticket.Status.CLOSED,
    later: bool = False,
) -> Segment:
    """A stretch of another ticket, or an earlier stretch of this one, as a fold."""
    session = sessions[index]
    closed = session.close is not None or index < len(sessions) - 1
    parts = [f"{'Later' if later else 'Earlier'} ticket #{other_id}"]
    closed_by = outcome = ""
    if session.close is not None:
        closed_by = _agent_name(session.close.actor)
        outcome = session.close.detail
        parts.append(f"closed by {closed_by}" if closed_by else "closed")
        if outcome:
            parts.append(outcome)
    else:
        parts.append("closed" if closed else str(status))
    return Segment(
        kind="later_ticket" if later else "earlier_ticket",
        key=f"ticket:{other_id}:{index}",
        label=" · ".join(parts),
        ticket_id=other_id,
        ticket_status=Ticket.Status.CLOSED if closed else status,
        closed_by=closed_by,
        outcome=outcome,
    )


_OWNER_LABELS = {
    OwnerRole.HELPDESK: "With the helpdesk, outside a ticket",
    OwnerRole.BOT: "With the bot",
    OwnerRole.PAGE_INBOX: "With the Page Inbox",
    OwnerRole.NOBODY: "Nobody had the conversation (idle)",
}


def _owner_segment(role: str, app_id: str) -> Segment:
    """Who owned the thread after a change (`ControlTransition.owner_role`), as a fold."""
    if role == OwnerRole.OTHER_APP:
        known = app_id and app_id != settings.MESSENGER_APP_ID
        return Segment(
            kind="other_app",
            key=f"app:{app_id if known else ''}",
            label=f"With another app (app {app_id})" if known else "With another app",
            app_id=app_id if known else "",
        )
    kind = OwnerRole(role) if role in OwnerRole.values else OwnerRole.BOT
    return Segment(
        kind=kind.value,  # type: ignore[arg-type] # the roles are segment kinds
        key=kind.value,
        label=_OWNER_LABELS[kind],
        app_id=app_id if kind in (OwnerRole.BOT, OwnerRole.PAGE_INBOX) else "",
    )


def _owners(ticket: Ticket, first: int, last: int) -> tuple[list[int], list[Segment]]:
    """Who owned the thread from when, between the times `first` and `last` (and the
    owner at `first`): the changes' times in order and the owner after each. One query."""
    before = (
        ControlTransition.objects.filter(conversation_id=ticket.conversation_id, at__lte=first)
        .order_by("-at", "-id")
        .values("id")[:1]
    )
    rows = (
        ControlTransition.objects.filter(conversation_id=ticket.conversation_id, at__lte=last)
        .filter(Q(at__gt=first) | Q(pk=Subquery(before)))
        .order_by("at", "id")
        .values_list("at", "owner_role", "owner_app_id")
    )
    times, owners = [], []
    for at, role, app_id in rows:
        times.append(at)
        owners.append(_owner_segment(role, app_id))
    return times, owners


def timeline_segments(*, ticket: Ticket, messages: Sequence[Message]) -> None:
    """Give each message (of `ticket`'s conversation, in timestamp order) its `segment`
    (who had the conversation then) and `is_context` (folded in the timeline).

    A message is this ticket's, unless it is an earlier stretch's of a ticket that was
    reopened, or was sent before the handover (a late delivery). Another ticket's is
    that ticket's (earlier or later). Any other message is folded under whoever owned
    the thread then; but what the Page Inbox (a person) and the customer said to each
    other while this ticket was open is shown, not folded. Reads `ticket.conversation.page`;
    two or three queries, whatever the number of messages.
    """
    if not messages:
        return
    tickets = {m.ticket_id for m in messages if m.ticket_id is not None} | {ticket.pk}
    events = list(
        TicketEvent.objects.filter(
            ticket_id__in=tickets,
            kind__in=[TicketEvent.Kind.CLOSED, TicketEvent.Kind.REOPENED],
        )
        .select_related("actor")
        .order_by("created_at", "id")
    )
    statuses = {ticket.pk: str(ticket.status)}
    if len(tickets) > 1:
        statuses.update(
            Ticket.objects.filter(pk__in=tickets - {ticket.pk}).values_list("pk", "status")
        )
    sessions = {pk: _ticket_sessions(pk, statuses.get(pk, ""), events) for pk in tickets}
    times, owners = _owners(ticket, messages[0].timestamp, messages[-1].timestamp)
    this = this_ticket_segment(ticket.pk)
    bot = ticket.conversation.page.bot_app_id
    closed_at = int(ticket.closed_at.timestamp() * 1000) if ticket.closed_at else None
    for message in messages:
        segment: Segment | None = None
        if message.ticket_id is not None:
            stretches = sessions[message.ticket_id]
            index = next(i for i, s in enumerate(stretches) if _message_before(message, s.reopened))
            last = index == len(stretches) - 1
            if message.ticket_id != ticket.pk:
                segment = _ticket_segment(
                    message.ticket_id,
                    index,
                    stretches,
                    status=statuses.get(message.ticket_id, ""),
                    later=message.timestamp >= ticket.handover_timestamp,
                )
            elif not last:
                segment = _ticket_segment(ticket.pk, index, stretches)
            elif not (
                message.timestamp < ticket.handover_timestamp
                and message.author_kind in _PLATFORM_STAMPED
            ):
                segment = this
        if segment is not None:
            message.segment = segment  # type: ignore[attr-defined]
            message.is_context = segment is not this  # type: ignore[attr-defined]
            continue
        at = bisect_right(times, message.timestamp) - 1
        # Before any change, the conversation was the bot's (where every one starts).
        segment = owners[at] if at >= 0 else _owner_segment(OwnerRole.BOT, bot)
        during_ticket = message.timestamp >= ticket.handover_timestamp and (
            closed_at is None or message.timestamp <= closed_at
        )
        message.segment = segment  # type: ignore[attr-defined]
        message.is_context = not (  # type: ignore[attr-defined]
            segment.kind == "page_inbox" and during_ticket
        )


class MessagePosition(NamedTuple):
    """Where a message stands in a conversation: (timestamp, id) ascending."""

    timestamp: int
    id: int


def message_position(message: Message) -> MessagePosition:
    return MessagePosition(timestamp=message.timestamp, id=message.pk)


def ticket_message_page(
    *, ticket: Ticket, before: MessagePosition | None = None, limit: int
) -> Slice[Message]:
    """The newest `limit` messages of `ticket_messages` older than `before` (the newest of
    all when None), in timestamp order, with their `timeline_segments`; `more` says
    whether older ones exist. One query for the page (on the conversation-and-timestamp
    index) and those of `timeline_segments`, however far back the page is."""
    messages = ticket_messages(ticket=ticket)
    if before is not None:
        messages = messages.filter(
            Q(timestamp__lt=before.timestamp) | Q(timestamp=before.timestamp, pk__lt=before.id)
        )
    newest_first = _slice(list(messages.order_by("-timestamp", "-id")[: limit + 1]), limit)
    items = newest_first.items[::-1]
    timeline_segments(ticket=ticket, messages=items)
    return Slice(items=items, more=newest_first.more)


def ticket_message_get(*, ticket: Ticket, message_id: int) -> Message | None:
    """One message of the ticket's conversation, with its segment as the timeline
    shows it."""
    message = ticket_messages(ticket=ticket).filter(pk=message_id).first()
    if message is not None:
        timeline_segments(ticket=ticket, messages=[message])
    return message


def message_visible(*, user: Agent, message_id: int) -> Message | None:
    visible = visible_page_ids(user)
    messages = Message.objects.filter(pk=message_id)
    if visible is not None:
        messages = messages.filter(conversation__page_id__in=visible)
    return messages.first()


def agent_list(*, user: Agent) -> QuerySet[Agent]:
    """The active agents `user` may know of (e.g. to transfer a ticket to): those who
    share a team with them, themselves, and, while some page is on no team (every agent
    sees such pages), the agents on no team, who work exactly those pages. A superuser
    sees every active agent. Two queries."""
    agents = Agent.objects.filter(is_active=True)
    if not user.is_superuser:
        known = Q(pk=user.pk) | Q(teams__in=Team.objects.filter(members=user))
        if Page.objects.filter(teams__isnull=True).exists():
            known |= Q(teams__isnull=True)
        agents = agents.filter(known).distinct()
    return agents.order_by("username")


def page_agents(page_id: int) -> QuerySet[Agent]:
    """The active agents who may see a page: `visible_page_ids` read from the page's side.
    Every agent while no team lists the page; else the members of the teams that do, and
    the admins (superusers). Two queries."""
    agents = Agent.objects.filter(is_active=True)
    if Team.objects.filter(pages=page_id).exists():
        agents = agents.filter(Q(is_superuser=True) | Q(teams__pages=page_id)).distinct()
    return agents


def ticket_transfer_targets(*, ticket: Ticket) -> list[Agent]:
    """Whom the ticket may be transferred to: the active agents who may see its page
    (`page_agents`, the rule `tickets.ticket_transfer` enforces), but its assignee; by
    name as agents see it."""
    agents = page_agents(ticket.conversation.page_id)
    if ticket.assignee_id is not None:
        agents = agents.exclude(pk=ticket.assignee_id)
    return sorted(agents, key=lambda agent: (agent_name(agent).casefold(), agent.pk))


def tag_list() -> list[Tag]:
    """Every tag, by name (active and inactive: tickets keep inactive ones)."""
    return list(Tag.objects.order_by(Lower("name"), "pk"))


def page_list(*, user: Agent) -> QuerySet[Page]:
    """The pages the agent may see, by name."""
    pages = Page.objects.all()
    visible = visible_page_ids(user)
    if visible is not None:
        pages = pages.filter(pk__in=visible)
    return pages.order_by("name", "pk")
