"""Reads for the API and the inbox, filtered by what the agent may see.

Lists cost a constant number of queries, whatever the number of tickets: related rows
are joined (select_related) and per-ticket facts (last message, oldest unanswered
message) are subquery annotations of the one list query.

Long lists are read a page at a time with a keyset (`ticket_page`, `ticket_message_page`):
a page starts after the position (sort key and id) where the previous one ended, so a
deep page costs the same one query as the first, never an OFFSET that scans what it skips.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from agents.models import (
    Agent,
    ControlTransition,
    Message,
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
    team_pages = set(Team.objects.values_list("pages", flat=True)) - {None}
    mine = set(Team.objects.filter(members=user).values_list("pages", flat=True)) - {None}
    open_pages = set(Page.objects.exclude(pk__in=team_pages).values_list("pk", flat=True))
    return open_pages | mine


def page_visible(user: Agent, page_id: int) -> bool:
    visible = visible_page_ids(user)
    return visible is None or page_id in visible


def page_ids_visible(user: Agent) -> set[int]:
    """Like `visible_page_ids`, with "all" spelled out as the pages that exist now."""
    visible = visible_page_ids(user)
    if visible is None:
        return set(Page.objects.values_list("pk", flat=True))
    return visible


def _visible_tickets(user: Agent) -> QuerySet[Ticket]:
    tickets = Ticket.objects.all()
    visible = visible_page_ids(user)
    if visible is not None:
        tickets = tickets.filter(conversation__page_id__in=visible)
    return tickets


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
    return tickets.annotate(
        last_message_text=Subquery(last.values("text")[:1]),
        last_message_author=Subquery(last.values("author_kind")[:1]),
        last_message_attachments=Subquery(last.values("attachments")[:1], output_field=JSONField()),
        last_message_ts=Subquery(last.values("timestamp")[:1]),
        last_reply_ts=Subquery(replies.values("timestamp")[:1]),
        conversation_has_unclosed=Exists(
            Ticket.objects.filter(conversation_id=OuterRef("conversation_id"), status__in=UNCLOSED)
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
) -> QuerySet[Ticket]:
    """Tickets the agent may see, with the facts the inbox shows (`_with_inbox_facts`),
    in `ticket_order(queue)`.

    `queue` is one of the inbox's lists: waiting; mine (my unclosed tickets); all_open
    (waiting or open); closed (most recently closed first).
    """
    tickets = _with_inbox_facts(
        _visible_tickets(user).select_related(
            "conversation__contact", "conversation__page", "assignee"
        )
    ).order_by("opened_at", "id")
    if status:
        tickets = tickets.filter(status=status)
    if mine:
        tickets = tickets.filter(assignee=user)
    if queue == "waiting":
        tickets = tickets.filter(status=Ticket.Status.WAITING)
    elif queue == "mine":
        tickets = tickets.filter(status__in=UNCLOSED, assignee=user)
    elif queue == "all_open":
        tickets = tickets.filter(status__in=UNCLOSED)
    elif queue == "closed":
        # Closing always sets closed_at (ticket_mark_closed); the filter only makes the
        # order total, so that a keyset on it skips and repeats nothing.
        tickets = tickets.filter(status=Ticket.Status.CLOSED, closed_at__isnull=False).order_by(
            "-closed_at", "-id"
        )
    return tickets


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
) -> Slice[Ticket]:
    """The first `limit` tickets of `ticket_list` that come after `after` in its order
    (from the start when None). One query, however deep the page."""
    tickets = ticket_list(user=user, status=status, mine=mine, queue=queue)
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


def ticket_counts(*, user: Agent) -> dict[str, int]:
    """How many tickets each inbox queue holds, in one query."""
    return _visible_tickets(user).aggregate(
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
    timestamp = getattr(ticket, "last_message_ts", None)
    if timestamp is None:
        return None
    attachments: list[Any] = getattr(ticket, "last_message_attachments", None) or []
    return LastMessage(
        author_kind=getattr(ticket, "last_message_author", ""),
        text=getattr(ticket, "last_message_text", None) or "",
        attachment_types=[str(a.get("type") or "file") for a in attachments if isinstance(a, dict)],
        timestamp=timestamp,
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


def ticket_events(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    return (
        TicketEvent.objects.filter(ticket=ticket)
        .select_related("actor")
        .order_by("created_at", "id")
    )


def ticket_messages(*, ticket: Ticket) -> QuerySet[Message]:
    """The conversation's whole history, in timestamp order, each message annotated
    `is_context`: bot-side history, shown above the handover point. That is another
    ticket's or no ticket's message, or one the customer or the bot sent before control
    came to us (deliveries can be processed after the handover that followed them)."""
    return (
        Message.objects.filter(conversation_id=ticket.conversation_id)
        .select_related("author")
        .annotate(
            is_context=Case(
                When(~Q(ticket_id=ticket.pk), then=Value(True)),
                When(
                    Q(timestamp__lt=ticket.handover_timestamp)
                    & ~Q(author_kind__in=[Message.Author.AGENT, Message.Author.SYSTEM]),
                    then=Value(True),
                ),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
        .order_by("timestamp", "id")
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
    all when None), in timestamp order; `more` says whether older ones exist. One query
    (on the conversation-and-timestamp index), however far back the page is."""
    messages = ticket_messages(ticket=ticket)
    if before is not None:
        messages = messages.filter(
            Q(timestamp__lt=before.timestamp) | Q(timestamp=before.timestamp, pk__lt=before.id)
        )
    newest_first = _slice(list(messages.order_by("-timestamp", "-id")[: limit + 1]), limit)
    return Slice(items=newest_first.items[::-1], more=newest_first.more)


def ticket_message_get(*, ticket: Ticket, message_id: int) -> Message | None:
    """One message of the ticket's conversation, annotated like `ticket_messages`."""
    return ticket_messages(ticket=ticket).filter(pk=message_id).first()


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
