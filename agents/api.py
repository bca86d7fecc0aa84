"""The agent JSON API, `/api/v1/`, described at `/api/v1/openapi.json`.

Thin: parse, authorize, call one service or selector, render. Service errors become
answers with their status (400, 403, 404, 409) and a `detail` in words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query, Schema, Status
from ninja.security import HttpBearer, django_auth

from agents import rules, selectors
from agents.auth import token_user
from agents.errors import NotFound, ServiceError
from agents.models import ControlState, ControlTransition, Message, Ticket, TicketEvent
from agents.services import outbound, tickets


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = token_user(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="Messenger helpdesk agent API",
    version="1",
    description="Tickets, messages and thread control for support agents. Authenticate "
    "with `Authorization: Bearer <token>` (from `manage.py create_agent`) or a session.",
    auth=[BearerToken(), django_auth],
    urls_namespace="api-v1",
)


@api.exception_handler(ServiceError)
def service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    return api.create_response(request, {"detail": exc.message}, status=exc.status)


class Error(Schema):
    detail: str


class UserOut(Schema):
    id: int
    username: str
    name: str


class ContactOut(Schema):
    psid: str
    name: str
    profile_pic: str


class LastMessageOut(Schema):
    author_kind: str
    text: str
    attachment_types: list[str]
    timestamp: int


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


class TransitionOut(Schema):
    from_state: str
    to_state: str
    cause: str
    detail: str
    metadata: str
    created_at: datetime


class TicketEventOut(Schema):
    kind: str
    actor: UserOut | None
    detail: str
    created_at: datetime


class TicketDetailOut(TicketOut):
    transitions: list[TransitionOut]
    events: list[TicketEventOut]


class QueuesOut(Schema):
    waiting: int
    mine: int
    all_open: int
    closed: int


class TypingOut(Schema):
    sent: bool


class MessageOut(Schema):
    id: int
    ticket_id: int | None
    context: bool
    direction: Literal["in", "out"]
    author_kind: str
    author: UserOut | None
    app_id: str
    mid: str | None
    text: str
    attachments: list[dict]
    postback_title: str
    quick_reply_payload: str
    timestamp: int
    status: str
    error: str


class ReplyIn(Schema):
    text: str


class CloseIn(Schema):
    closing_message: str = ""
    outcome: str = "resolved"


class TransferIn(Schema):
    agent_id: int


def _user(user) -> dict | None:
    if user is None:
        return None
    return {
        "id": user.pk,
        "username": user.get_username(),
        "name": user.get_full_name() or user.get_username(),
    }


def _last_message(ticket: Ticket) -> dict | None:
    timestamp = getattr(ticket, "last_message_ts", None)
    if timestamp is None:
        return None
    attachments = getattr(ticket, "last_message_attachments", None) or []
    return {
        "author_kind": ticket.last_message_author,
        "text": ticket.last_message_text or "",
        "attachment_types": [
            str(a.get("type") or "file") for a in attachments if isinstance(a, dict)
        ],
        "timestamp": timestamp,
    }


def _ticket(ticket: Ticket, user) -> dict:
    """A ticket from `selectors.ticket_list` (its joins and annotations), as `user` sees it."""
    conversation = ticket.conversation
    contact = conversation.contact
    windows = rules.conversation_windows(conversation)
    return {
        "id": ticket.pk,
        "status": ticket.status,
        "assignee": _user(ticket.assignee),
        "page_id": conversation.page.page_id,
        "page_name": conversation.page.name,
        "conversation_id": conversation.pk,
        "contact": {
            "psid": contact.psid,
            "name": contact.display_name,
            "profile_pic": contact.profile_pic,
        },
        "control_state": conversation.control_state,
        "control_state_label": ControlState(conversation.control_state).label,
        "flagged": ticket.flagged,
        "flag_reason": ticket.flag_reason,
        "handover_metadata": ticket.handover_metadata,
        "handover_timestamp": ticket.handover_timestamp,
        "closing_note": ticket.closing_note,
        "opened_at": ticket.opened_at,
        "closed_at": ticket.closed_at,
        "updated_at": ticket.updated_at,
        "last_user_message_at": conversation.last_user_message_at,
        "last_message": _last_message(ticket),
        "waiting_since": selectors.ticket_waiting_since(ticket),
        "window_closes_at": windows.standard_closes_at,
        "human_agent_enabled": conversation.page.human_agent_enabled,
        "human_agent_window_closes_at": windows.human_agent_closes_at,
        "lock_reason": rules.reply_lock_reason(ticket, user),
        "can_request_control": rules.control_request_allowed(ticket),
    }


def _transition(transition: ControlTransition) -> dict:
    return {
        "from_state": transition.from_state,
        "to_state": transition.to_state,
        "cause": transition.cause,
        "detail": transition.detail,
        "metadata": transition.metadata,
        "created_at": transition.created_at,
    }


def _event(event: TicketEvent) -> dict:
    return {
        "kind": event.kind,
        "actor": _user(event.actor),
        "detail": event.detail,
        "created_at": event.created_at,
    }


def _message(message: Message, ticket: Ticket | None = None) -> dict:
    return {
        "id": message.pk,
        "ticket_id": message.ticket_id,
        "context": ticket is not None and selectors.message_is_context(message, ticket=ticket),
        "direction": message.direction,
        "author_kind": message.author_kind,
        "author": _user(message.author),
        "app_id": message.app_id,
        "mid": message.mid,
        "text": message.text,
        "attachments": message.attachments,
        "postback_title": message.postback_title,
        "quick_reply_payload": message.quick_reply_payload,
        "timestamp": message.timestamp,
        "status": message.status,
        "error": message.error,
    }


def _visible_ticket(request: HttpRequest, ticket_id: int) -> Ticket:
    ticket = selectors.ticket_get(user=request.user, ticket_id=ticket_id)
    if ticket is None:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return ticket


@api.get("/tickets", response=list[TicketOut], tags=["tickets"])
def tickets_list(
    request: HttpRequest,
    status: Literal["waiting", "open", "closed"] | None = None,
    mine: bool = False,
    queue: selectors.Queue | None = None,
    limit: int | None = Query(None, ge=1, le=1000),
):
    """Tickets the agent may see, oldest first; filter by status and by assignee, or
    ask for one of the inbox's queues: `waiting`, `mine` (your unclosed tickets),
    `all_open` (waiting or open), `closed` (most recently closed first).

    Each ticket carries a preview of the conversation's last message, since when the
    customer has been waiting (`waiting_since`, null when not waiting), when the
    messaging windows close, and why you cannot reply now (`lock_reason`, "" if you can).
    """
    tickets = selectors.ticket_list(
        user=request.user, status=status, mine=mine, queue=queue, limit=limit
    )
    return [_ticket(t, request.user) for t in tickets]


@api.get("/queues", response=QueuesOut, tags=["tickets"])
def queues(request: HttpRequest):
    """How many tickets each inbox queue holds."""
    return selectors.ticket_counts(user=request.user)


@api.get("/tickets/{ticket_id}", response={200: TicketDetailOut, 404: Error}, tags=["tickets"])
def ticket_detail(request: HttpRequest, ticket_id: int):
    """One ticket, with its conversation's thread-control history (`transitions`) and
    the ticket's own changes (`events`: opened, claimed, transferred, closed…)."""
    ticket = _visible_ticket(request, ticket_id)
    return {
        **_ticket(ticket, request.user),
        "transitions": [_transition(t) for t in selectors.ticket_transitions(ticket=ticket)],
        "events": [_event(e) for e in selectors.ticket_events(ticket=ticket)],
    }


@api.get(
    "/tickets/{ticket_id}/messages", response={200: list[MessageOut], 404: Error}, tags=["tickets"]
)
def ticket_messages(request: HttpRequest, ticket_id: int):
    """The conversation in timestamp order: bot-side context (`context: true`) and the
    ticket's own messages, with each outbound message's delivery status and error."""
    ticket = _visible_ticket(request, ticket_id)
    return [_message(m, ticket) for m in selectors.ticket_messages(ticket=ticket)]


@api.post(
    "/tickets/{ticket_id}/claim",
    response={200: TicketOut, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_claim(request: HttpRequest, ticket_id: int):
    """Assign a waiting ticket to yourself. 409 when someone else was first."""
    tickets.ticket_claim(ticket_id=ticket_id, user=request.user)
    return _ticket(_visible_ticket(request, ticket_id), request.user)


@api.post(
    "/tickets/{ticket_id}/reply",
    response={201: MessageOut, 400: Error, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_reply(request: HttpRequest, ticket_id: int, payload: ReplyIn):
    """Queue a reply; it is sent by a worker. Its `status` goes pending → sent (or failed,
    with `error`). 409 when the helpdesk does not own the thread, with the reason."""
    message = outbound.ticket_reply(ticket_id=ticket_id, user=request.user, text=payload.text)
    return Status(201, _message(message))  # an agent's reply is never context


@api.post(
    "/tickets/{ticket_id}/close",
    response={200: TicketOut, 400: Error, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_close(request: HttpRequest, ticket_id: int, payload: CloseIn):
    """Close the ticket and pass the conversation back to the bot (after an optional
    closing message). `outcome` travels to the bot in the handover metadata."""
    tickets.ticket_close(
        ticket_id=ticket_id,
        user=request.user,
        closing_message=payload.closing_message,
        outcome=payload.outcome,
    )
    return _ticket(_visible_ticket(request, ticket_id), request.user)


@api.post(
    "/tickets/{ticket_id}/transfer",
    response={200: TicketOut, 400: Error, 403: Error, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_transfer(request: HttpRequest, ticket_id: int, payload: TransferIn):
    tickets.ticket_transfer(ticket_id=ticket_id, user=request.user, to_user_id=payload.agent_id)
    return _ticket(_visible_ticket(request, ticket_id), request.user)


@api.post(
    "/tickets/{ticket_id}/request-control",
    response={202: TicketOut, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_request_control(request: HttpRequest, ticket_id: int):
    """Ask the bot for the conversation again (after it took it back)."""
    tickets.ticket_request_control(ticket_id=ticket_id, user=request.user)
    return Status(202, _ticket(_visible_ticket(request, ticket_id), request.user))


@api.post(
    "/tickets/{ticket_id}/typing",
    response={202: TypingOut, 404: Error},
    tags=["tickets"],
)
def ticket_typing(request: HttpRequest, ticket_id: int):
    """The agent is typing: the customer sees Messenger's typing indicator
    (`sender_action: typing_on`), at most once per 10 seconds per conversation and only
    while you could reply. `sent` says whether this call queued one."""
    return Status(202, {"sent": outbound.ticket_typing(ticket_id=ticket_id, user=request.user)})


@api.post(
    "/messages/{message_id}/retry",
    response={200: MessageOut, 404: Error, 409: Error},
    tags=["messages"],
)
def message_retry(request: HttpRequest, message_id: int):
    """Send a failed message again."""
    message = outbound.message_retry(message_id=message_id, user=request.user)
    return _message(message)


@api.get("/agents", response=list[UserOut], tags=["agents"])
def agents_list(request: HttpRequest):
    """Active agents, e.g. to choose whom to transfer a ticket to."""
    return [_user(u) for u in selectors.agent_list()]
