"""The two funnels every state change goes through, and what the services share.

`control_transition` changes a conversation's thread-control state; `ticket_change`
changes a ticket. Each writes its audit row (`ControlTransition`, `TicketEvent`) in the
caller's transaction and tells the agents' browsers after commit. Nothing else writes
`Conversation.control_state` or a ticket's status, assignee or flag.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from django.conf import settings
from django.db import transaction

from agents import realtime, rules
from agents.errors import Conflict, NotFound
from agents.locks import conversation_lock, ticket_lock
from agents.models import (
    Agent,
    ControlState,
    ControlTransition,
    Conversation,
    HandoverTrigger,
    HandoverWay,
    Message,
    OwnerRole,
    Ticket,
    TicketEvent,
)
from agents.selectors import page_visible
from helpdesk import clock, metrics
from webhooks.models import Page

METADATA_LIMIT = 1000


class Outcome(Enum):
    """What a task-driven service did (tasks log it; tests assert it)."""

    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


def now_ms() -> int:
    """Now in epoch ms, on Messenger's clock (the emulator's in development)."""
    return clock.now_ms()


def handover_metadata(**fields: object) -> str:
    """The metadata string of our thread-control calls: short JSON the other app reads."""
    text = json.dumps({"source": "helpdesk", **fields}, separators=(",", ":"))
    return text[:METADATA_LIMIT]


_REASON_TRIGGERS = (
    ("keyword ", HandoverTrigger.KEYWORD),
    ("postback ", HandoverTrigger.POSTBACK),
    ("quick reply ", HandoverTrigger.QUICK_REPLY),
    ("agent ", HandoverTrigger.AGENT),
)


def handover_trigger(page: Page, *, metadata: str, ours: bool, from_app_id: str = "") -> str:
    """What started a handover, for the reports: our own request or take names its reason
    in our metadata (`handover_metadata`: a trigger rule or an agent); a pass we did not
    ask for is the previous owner's doing."""
    if not ours:
        if from_app_id == page.bot_app_id:
            return HandoverTrigger.BOT
        if from_app_id == settings.PAGE_INBOX_APP_ID:
            return HandoverTrigger.PAGE_INBOX
        return HandoverTrigger.OTHER_APP
    try:
        reason = str(json.loads(metadata).get("reason", ""))
    except (ValueError, AttributeError):
        reason = ""
    for prefix, trigger in _REASON_TRIGGERS:
        if reason.startswith(prefix):
            return trigger
    return HandoverTrigger.UNKNOWN


def app_label(page: Page, app_id: str) -> str:
    """An app as agents know it: the bot, the Page Inbox, the helpdesk, or its id."""
    if app_id == page.bot_app_id:
        return "the bot"
    if app_id == settings.PAGE_INBOX_APP_ID:
        return "the Page Inbox"
    if app_id == settings.MESSENGER_APP_ID:
        return "the helpdesk"
    return f"app {app_id}" if app_id else "nobody (idle)"


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- Conversations --------------------------------------------------------------


def control_transition(
    conversation: Conversation,
    *,
    to_state: ControlState,
    cause: ControlTransition.Cause,
    detail: str = "",
    metadata: str = "",
    event_timestamp: int | None = None,
    owner_app_id: str | None = None,
    at: int | None = None,
    role: OwnerRole | None = None,
    owner_note: str = "",
    owner_since: int | None = None,
) -> None:
    """Change the thread-control state and write its audit row.

    `event_timestamp` (of a handover webhook) only moves forward: a late, older event
    must not undo a newer one. A change of any other cause (our own call, an agent, a
    check with Meta) moves `control_known_at` forward to when it happened. Entering
    `requested` stamps `requested_at`. The row records who owns the thread after the
    change and when it happened (`at`, else the event's time, else now): the timeline
    reads from them who had the conversation when. The
    caller holds the conversation's lock (agents.locks.conversation_lock).
    """
    from_state = conversation.control_state
    # Who owns the thread after the change: a change that names no owner leaves the one
    # last seen (asking for the thread leaves it where it was), and the state says the
    # rest (`rules.owner_role`).
    row_owner = conversation.owner_app_id if owner_app_id is None else owner_app_id
    if role is None and to_state == ControlState.REQUESTED and owner_app_id is None:
        # Asking changes nothing we know about the owner (a conversation first seen on
        # standby has no owner id yet, and is the bot's).
        role = OwnerRole(conversation.owner_role)
    elif role is None:
        role = rules.owner_role(to_state, row_owner, bot_app_id=conversation.page.bot_app_id)
    happened = at or event_timestamp or now_ms()
    conversation.control_state = to_state
    fields = ["control_state", "owner_role", "owner_since", "owner_note"]
    owner_changed = role != conversation.owner_role or row_owner != conversation.owner_app_id
    if owner_changed:
        conversation.owner_since = owner_since or happened
    elif owner_since:
        conversation.owner_since = owner_since
    conversation.owner_role = role
    if owner_note or owner_changed or to_state != from_state:
        conversation.owner_note = owner_note[:500]
    ours = to_state in (ControlState.AGENT, ControlState.REQUESTED) or role == OwnerRole.HELPDESK
    if ours and conversation.waiting_reason:
        conversation.waiting_reason = ""
        fields.append("waiting_reason")
    if owner_app_id is not None:
        conversation.owner_app_id = owner_app_id
        fields.append("owner_app_id")
    if event_timestamp is not None:
        conversation.control_event_timestamp = max(
            conversation.control_event_timestamp, event_timestamp
        )
        fields.append("control_event_timestamp")
    if cause != ControlTransition.Cause.WEBHOOK:
        conversation.control_known_at = max(conversation.control_known_at, happened)
        fields.append("control_known_at")
    if metadata:
        conversation.control_metadata = metadata
        fields.append("control_metadata")
    if to_state == ControlState.REQUESTED:
        conversation.requested_at = clock.now()
        fields.append("requested_at")
    conversation.save(update_fields=fields)
    transaction.on_commit(
        lambda: metrics.count(
            "handovers", from_state=str(from_state), to_state=str(to_state), cause=str(cause)
        )
    )
    ControlTransition.objects.create(
        conversation=conversation,
        from_state=from_state,
        to_state=to_state,
        cause=cause,
        detail=detail[:500],
        metadata=metadata,
        event_timestamp=event_timestamp,
        owner_role=role,
        owner_app_id=row_owner,
        at=happened,
    )
    realtime.broadcast_on_commit(
        "conversation.updated", page_pk=conversation.page_id, conversation_id=conversation.pk
    )


def system_message_add(
    conversation: Conversation, text: str, *, timestamp: int, ticket: Ticket | None = None
) -> Message:
    """A line in the conversation's timeline that no person wrote ("Control passed…")."""
    message = Message.objects.create(
        conversation=conversation,
        ticket=ticket,
        direction=Message.Direction.INBOUND,
        author_kind=Message.Author.SYSTEM,
        text=text,
        timestamp=timestamp,
        status=Message.Status.RECEIVED,
    )
    realtime.broadcast_on_commit(
        "message.created",
        page_pk=conversation.page_id,
        conversation_id=conversation.pk,
        message_id=message.pk,
    )
    return message


# --- Tickets ----------------------------------------------------------------------


def ticket_change(
    ticket: Ticket,
    kind: TicketEvent.Kind,
    *,
    actor: Agent | None = None,
    detail: str = "",
    event_timestamp: int | None = None,
    handover: tuple[str, str] = ("", ""),
    **fields: Any,
) -> None:
    """The one way a ticket changes: set and save `fields`, write the `TicketEvent`,
    tell the agents after commit. An event without fields records a fact (another app
    asked for the thread) without changing the ticket. `event_timestamp`: the platform's
    time of the handover behind it, where the timeline places it; `handover`: its
    trigger and way (`HandoverTrigger`, `HandoverWay`), which the reports count.

    The caller holds the ticket's lock (and its conversation's, taken first), or has
    just created the ticket in its transaction.
    """
    for name, value in fields.items():
        setattr(ticket, name, value)
    if fields:
        ticket.save(update_fields=[*fields, "updated_at"])
    TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        actor=actor,
        detail=detail[:500],
        event_timestamp=event_timestamp,
        trigger=handover[0],
        way=handover[1],
    )
    realtime.broadcast_on_commit(
        "ticket.updated",
        page_pk=_page_pk_at_hand(ticket),
        ticket_id=ticket.pk,
        conversation_id=ticket.conversation_id,
    )


def _page_pk_at_hand(ticket: Ticket) -> int | None:
    """The ticket's page, when its conversation is loaded already (no query); else None
    and the broadcast looks it up."""
    if Ticket.conversation.is_cached(ticket):
        return ticket.conversation.page_id
    return None


def ticket_open(
    conversation: Conversation,
    *,
    metadata: str,
    timestamp: int,
    handover: tuple[str, str] = (HandoverTrigger.UNKNOWN, HandoverWay.UNKNOWN),
) -> Ticket:
    """A new waiting ticket: control came to us at `timestamp` (what is older is context);
    `handover`: what started it and how control came (`handover_trigger`)."""
    ticket = Ticket.objects.create(
        conversation=conversation,
        status=Ticket.Status.WAITING,
        handover_metadata=metadata,
        handover_timestamp=timestamp,
    )
    ticket_change(
        ticket,
        TicketEvent.Kind.OPENED,
        detail=metadata,
        event_timestamp=timestamp,
        handover=handover,
    )
    return ticket


def ticket_reopen(
    ticket: Ticket,
    *,
    metadata: str,
    timestamp: int,
    handover: tuple[str, str] = (HandoverTrigger.UNKNOWN, HandoverWay.UNKNOWN),
) -> None:
    """A recently closed ticket waits again, unassigned and unflagged."""
    ticket_change(
        ticket,
        TicketEvent.Kind.REOPENED,
        detail=metadata,
        event_timestamp=timestamp,
        handover=handover,
        status=Ticket.Status.WAITING,
        assignee=None,
        closed_at=None,
        flagged=False,
        flag_reason="",
        handover_metadata=metadata,
        handover_timestamp=timestamp,
    )


def ticket_unflag(ticket: Ticket, *, metadata: str) -> None:
    """Control came back to an open ticket: replies are possible again."""
    ticket_change(
        ticket,
        TicketEvent.Kind.CONTROL_REGAINED,
        detail=metadata,
        flagged=False,
        flag_reason="",
        handover_metadata=metadata,
    )


def ticket_flag(
    ticket: Ticket,
    *,
    reason: str,
    kind: TicketEvent.Kind = TicketEvent.Kind.CONTROL_LOST,
    detail: str | None = None,
) -> None:
    """Something needs an agent's eye: `reason` is shown on the ticket and its composer."""
    ticket_change(
        ticket,
        kind,
        detail=reason if detail is None else detail,
        flagged=True,
        flag_reason=reason[:500],
    )


def ticket_assign(
    ticket: Ticket,
    *,
    assignee: Agent,
    actor: Agent,
    kind: TicketEvent.Kind = TicketEvent.Kind.CLAIMED,
    detail: str = "",
) -> None:
    """The ticket is `assignee`'s now, and open."""
    previous = ticket.assignee_id
    ticket_change(
        ticket, kind, actor=actor, detail=detail, status=Ticket.Status.OPEN, assignee=assignee
    )
    # Routing (issue 11): the assignee goes to the back of auto-assignment's line; a
    # ticket taken from an agent frees room in their team's queue.
    from agents.services import routing  # noqa: PLC0415 -- routing builds on this module

    routing.manual_assigned(ticket, assignee_id=assignee.pk, previous_id=previous)


def ticket_mark_closed(ticket: Ticket, *, actor: Agent, outcome: str) -> None:
    """The ticket is closed with its outcome (handing the thread back is the caller's)."""
    ticket_change(
        ticket,
        TicketEvent.Kind.CLOSED,
        actor=actor,
        detail=outcome,
        status=Ticket.Status.CLOSED,
        closed_at=clock.now(),
        closing_note=outcome,
    )
    from agents.services import routing  # noqa: PLC0415 -- routing builds on this module

    routing.capacity_freed(page_id=ticket.conversation.page_id)  # issue 11: room for the queue


def conversation_for_agent(ticket_id: int, user: Agent) -> Conversation:
    """Lock the conversation of a ticket the agent may see.

    Raises NotFound for a ticket that does not exist or that the agent may not see: the
    two are not told apart. Call inside `transaction.atomic()`.
    """
    conversation_id = (
        Ticket.objects.filter(pk=ticket_id).values_list("conversation_id", flat=True).first()
    )
    if conversation_id is None:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    conversation = conversation_lock(conversation_id)
    if not page_visible(user, conversation.page_id):
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return conversation


def ticket_for_agent(ticket_id: int, user: Agent) -> Ticket:
    """Lock a ticket the agent may see, and its conversation first (`ticket.conversation`).
    NotFound as `conversation_for_agent`. Call inside `transaction.atomic()`."""
    conversation = conversation_for_agent(ticket_id, user)
    ticket = ticket_lock(ticket_id)
    ticket.conversation = conversation
    return ticket


def require(reason: str) -> None:
    """Refuse with `reason` (a rule's answer, `agents.rules`) unless it is empty."""
    if reason:
        raise Conflict(reason)
