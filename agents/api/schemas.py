"""The agent API's shapes, each defined once.

Output schemas read the rows that `agents.selectors` returns (with their joins and
annotations); the `resolve_*` methods derive what is not a column, through
`agents.rules` and `agents.selectors`, so that the API explains with the same rules
that the services enforce. Resolvers that depend on who asks read the agent from the
request in Ninja's validation context.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from django.core.exceptions import ObjectDoesNotExist
from ninja import Schema

from agents import rules, selectors
from agents.models import (
    Agent,
    ControlState,
    ControlTransition,
    Ticket,
    TicketEvent,
    agent_name,
)
from agents.selectors import SegmentKind


def _agent(context: dict[str, Any]) -> Agent:
    # Every operation of the API authenticates: the user is an agent, never anonymous.
    return cast(Agent, context["request"].user)


class Error(Schema):
    detail: str


class ValidationIssue(Schema):
    type: str
    loc: list[str | int]
    msg: str


class ValidationErrorOut(Schema):
    """Ninja's answer to input it cannot read (HTTP 422)."""

    detail: list[ValidationIssue]


class UserOut(Schema):
    """An agent. `name` is how the inbox shows them: the full name where one is set,
    else the username."""

    id: int
    username: str
    name: str

    @staticmethod
    def resolve_username(obj: Agent) -> str:
        return obj.get_username()

    @staticmethod
    def resolve_name(obj: Agent) -> str:
        return agent_name(obj)


class ContactOut(Schema):
    psid: str
    name: str
    profile_pic: str

    @staticmethod
    def resolve_name(obj: Any) -> str:
        return str(obj.display_name)


class LastMessageOut(Schema):
    author_kind: str
    text: str
    attachment_types: list[str]
    timestamp: int


class TagOut(Schema):
    """A tag (admin-managed). `colour` is one of a fixed palette; an inactive tag stays
    on the tickets that carry it but cannot be applied."""

    id: int
    name: str
    colour: Literal["grey", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink"]
    description: str
    active: bool


# A ticket as an agent sees it in a list: a row of `selectors.ticket_list`.
class TicketOut(Schema):
    id: int
    status: Literal["waiting", "open", "closed"]
    assignee: UserOut | None
    page_id: str
    page_name: str
    conversation_id: int
    contact: ContactOut
    control_state: str
    control_state_label: str
    flagged: bool
    flag_reason: str
    handover_metadata: str
    handover_timestamp: int
    closing_note: str
    opened_at: datetime
    closed_at: datetime | None
    updated_at: datetime
    last_user_message_at: datetime | None
    last_message: LastMessageOut | None
    waiting_since: datetime | None
    window_closes_at: datetime | None
    human_agent_enabled: bool
    human_agent_window_closes_at: datetime | None
    lock_reason: str
    can_request_control: bool
    can_transfer: bool
    owner_role: str
    owner_text: str
    owner_since: int | None
    owner_note: str
    handover_mode_text: str
    waiting_reason: str
    can_take_over: bool
    take_over_refusal: str
    outbox_paused_reason: str
    # Issue 11, tags and filters: the ticket's tags (by name) and whether the customer
    # wrote last in its conversation (the `needs_reply` filter).
    tags: list[TagOut]
    needs_reply: bool

    @staticmethod
    def resolve_tags(obj: Ticket) -> list[Any]:
        return list(obj.tags.all())  # prefetched by selectors.ticket_list

    @staticmethod
    def resolve_needs_reply(obj: Ticket) -> bool:
        return selectors.ticket_needs_reply(obj)

    # CSAT before hand-back (issue 11, point 9): the rating asked when the ticket closed.
    csat_status: Literal["", "waiting", "answered", "expired"]
    csat_score: int | None
    csat_text: str
    csat_expires_at: datetime | None

    @staticmethod
    def resolve_csat_status(obj: Ticket) -> str:
        """ "" (never asked), waiting (the helpdesk keeps the conversation for the answer
        until `csat_expires_at`), answered, expired (no answer in time)."""
        rating = rules.ticket_csat(obj)
        return rating.status if rating else ""

    @staticmethod
    def resolve_csat_score(obj: Ticket) -> int | None:
        rating = rules.ticket_csat(obj)
        return rating.score if rating else None

    @staticmethod
    def resolve_csat_text(obj: Ticket) -> str:
        return rules.csat_text(rules.ticket_csat(obj))

    @staticmethod
    def resolve_csat_expires_at(obj: Ticket) -> datetime | None:
        rating = rules.ticket_csat(obj)
        return rating.expires_at if rating else None

    @staticmethod
    def resolve_page_id(obj: Ticket) -> str:
        return obj.conversation.page.page_id

    @staticmethod
    def resolve_page_name(obj: Ticket) -> str:
        return obj.conversation.page.name

    @staticmethod
    def resolve_contact(obj: Ticket) -> Any:
        return obj.conversation.contact

    @staticmethod
    def resolve_control_state(obj: Ticket) -> str:
        return obj.conversation.control_state

    @staticmethod
    def resolve_control_state_label(obj: Ticket) -> str:
        return str(ControlState(obj.conversation.control_state).label)

    @staticmethod
    def resolve_last_user_message_at(obj: Ticket) -> datetime | None:
        return obj.conversation.last_user_message_at

    @staticmethod
    def resolve_last_message(obj: Ticket) -> dict[str, Any] | None:
        preview = selectors.ticket_last_message(obj)
        return None if preview is None else preview._asdict()

    @staticmethod
    def resolve_waiting_since(obj: Ticket) -> datetime | None:
        return selectors.ticket_waiting_since(obj)

    @staticmethod
    def resolve_window_closes_at(obj: Ticket) -> datetime | None:
        return rules.conversation_windows(obj.conversation).standard_closes_at

    @staticmethod
    def resolve_human_agent_enabled(obj: Ticket) -> bool:
        return obj.conversation.page.human_agent_enabled

    @staticmethod
    def resolve_human_agent_window_closes_at(obj: Ticket) -> datetime | None:
        return rules.conversation_windows(obj.conversation).human_agent_closes_at

    @staticmethod
    def resolve_lock_reason(obj: Ticket, context: dict[str, Any]) -> str:
        return rules.reply_lock_reason(obj, _agent(context))

    @staticmethod
    def resolve_can_request_control(obj: Ticket) -> bool:
        # From a closed ticket: ask for the conversation again.
        open_ticket = obj.status == Ticket.Status.CLOSED and (
            selectors.ticket_conversation_has_unclosed(obj)
        )
        return not rules.ticket_control_request_refusal(obj, open_ticket=open_ticket)

    @staticmethod
    def resolve_owner_role(obj: Ticket) -> str:
        return obj.conversation.owner_role

    @staticmethod
    def resolve_owner_text(obj: Ticket) -> str:
        return rules.owner_text(obj.conversation)

    @staticmethod
    def resolve_owner_since(obj: Ticket) -> int | None:
        return obj.conversation.owner_since or None

    @staticmethod
    def resolve_owner_note(obj: Ticket) -> str:
        return obj.conversation.owner_note

    @staticmethod
    def resolve_handover_mode_text(obj: Ticket) -> str:
        return rules.handover_mode_text(obj.conversation.page)

    @staticmethod
    def resolve_waiting_reason(obj: Ticket) -> str:
        return obj.conversation.waiting_reason

    @staticmethod
    def resolve_take_over_refusal(obj: Ticket) -> str:
        open_ticket = obj.status == Ticket.Status.CLOSED and (
            selectors.ticket_conversation_has_unclosed(obj)
        )
        return rules.take_over_refusal(obj, open_ticket=open_ticket)

    @staticmethod
    def resolve_can_take_over(obj: Ticket) -> bool:
        return not TicketOut.resolve_take_over_refusal(obj)

    @staticmethod
    def resolve_outbox_paused_reason(obj: Ticket) -> str:
        return rules.outbox_paused_text(obj.conversation.page)

    @staticmethod
    def resolve_can_transfer(obj: Ticket, context: dict[str, Any]) -> bool:
        return obj.status != Ticket.Status.CLOSED and not rules.transfer_refusal(
            obj, _agent(context)
        )


class TransitionOut(Schema):
    """A change of the conversation's thread control. `at`: when it happened, epoch ms on
    Messenger's clock (the handover's time, or when our call was made), as messages'
    `timestamp`; `created_at`: when it was recorded."""

    from_state: str
    to_state: str
    cause: str
    detail: str
    metadata: str
    at: int
    created_at: datetime


class SegmentOut(Schema):
    """Who had the conversation when a timeline item happened, from the thread-control
    history and the tickets' (re)openings. The inbox folds consecutive `context` items
    of one `key` under `label`.

    `kind`: `this_ticket` (the ticket's own, shown as it is); `earlier_ticket` or
    `later_ticket` (another ticket of the conversation, or an earlier stretch of this one
    before it was reopened: `ticket_id`, `ticket_status`, and when closed, `closed_by`
    and `outcome`); otherwise who owned the thread: `bot` (the page's bot, the default
    app), `page_inbox` (a person in Meta's Page Inbox), `other_app` (`app_id` when
    known), `nobody` (idle), `helpdesk` (we did, outside any ticket).
    """

    kind: SegmentKind
    key: str
    label: str
    app_id: str
    ticket_id: int | None
    ticket_status: str
    closed_by: str
    outcome: str


class TicketEventOut(Schema):
    kind: str
    actor: UserOut | None
    detail: str
    created_at: datetime
    timestamp: int
    context: bool
    segment: SegmentOut

    @staticmethod
    def resolve_timestamp(obj: TicketEvent) -> int:
        """When it happened, epoch ms: the handover's time for an opening or reopening
        (Meta's clock, like messages'), else when it was recorded."""
        if obj.event_timestamp is not None:
            return obj.event_timestamp
        return int(obj.created_at.timestamp() * 1000)

    @staticmethod
    def resolve_context(obj: TicketEvent) -> bool:
        return bool(getattr(obj, "is_context", False))

    @staticmethod
    def resolve_segment(obj: TicketEvent) -> selectors.Segment:
        return getattr(obj, "segment", None) or selectors.this_ticket_segment(obj.ticket_id)


class TicketDetailOut(TicketOut):
    transitions: list[TransitionOut]
    events: list[TicketEventOut]
    csat_on_close: str

    @staticmethod
    def resolve_csat_on_close(obj: Ticket) -> str:
        """What closing does about a rating, for the close dialog ("" when nothing)."""
        return rules.csat_close_note(obj)

    @staticmethod
    def resolve_transitions(obj: Ticket) -> list[ControlTransition]:
        return selectors.ticket_transitions(ticket=obj)

    @staticmethod
    def resolve_events(obj: Ticket) -> list[TicketEvent]:
        return selectors.ticket_events(ticket=obj)


class ProfileOut(Schema):
    """You, as the inbox and customers see you: `public_name` is the name on your
    replies in Messenger (empty: your first name, else your username)."""

    id: int
    username: str
    name: str
    public_name: str
    picture_url: str


class ProfileIn(Schema):
    public_name: str
    picture_url: str = ""


class SeenOut(Schema):
    sent: bool


class QueuesOut(Schema):
    waiting: int
    mine: int
    all_open: int
    closed: int


class TypingOut(Schema):
    sent: bool


class FileOut(Schema):
    """A file an agent sent (one Messenger message of its own). `url` downloads it, for
    agents who may see its ticket; `kind` is how Messenger shows it."""

    id: int
    name: str
    size: int
    content_type: str
    kind: Literal["image", "video", "audio", "file"]
    url: str

    @staticmethod
    def resolve_url(obj: Any) -> str:
        return f"/api/v1/attachments/{obj.pk}/file"


# `context` and `segment` come from `selectors.timeline_segments`: who had the
# conversation then, and whether the timeline folds the message; a message shown on its
# own (a new reply, a retry) is its ticket's, never context.
class MessageOut(Schema):
    """A message of the conversation. `timestamp` is the event time (Meta's; ours for
    what agents send): the conversation is in that order. `context`: folded in the
    timeline, under `segment.label`. An outbound message that failed (or is retried)
    says why in `error`, a sentence for agents, with Meta's side in `error_detail`
    ("Meta error 551: …") and `error_code`/`error_subcode`."""

    id: int
    ticket_id: int | None
    context: bool
    segment: SegmentOut
    direction: Literal["in", "out"]
    author_kind: str
    author: UserOut | None
    app_id: str
    mid: str | None
    text: str
    attachments: list[dict[str, Any]]
    postback_title: str
    quick_reply_payload: str
    timestamp: int
    status: str
    error: str
    error_detail: str
    error_code: int | None
    error_subcode: int | None
    quick_replies: list[dict[str, str]]
    # Issue 11 point 7 (agents.api.attachments): the file an agent sent with this message.
    files: list[FileOut] = []

    @staticmethod
    def resolve_files(obj: Any) -> list[Any]:
        try:
            return [obj.attachment_file]
        except ObjectDoesNotExist:
            return []

    @staticmethod
    def resolve_context(obj: Any) -> bool:
        return bool(getattr(obj, "is_context", False))

    @staticmethod
    def resolve_segment(obj: Any) -> selectors.Segment:
        return getattr(obj, "segment", None) or selectors.this_ticket_segment(obj.ticket_id)


class ReplyIn(Schema):
    text: str


class CloseIn(Schema):
    closing_message: str = ""
    outcome: str = "resolved"


class TransferIn(Schema):
    agent_id: int
