"""The agent JSON API, `/api/v1/`, described at `/api/v1/openapi.json`.

Thin: parse, authorize, call one service or selector, return rows; the schemas
(`agents.api.schemas`) shape them. Service errors become answers with their status
(400, 403, 404, 409) and a `detail` in words.
"""

from __future__ import annotations

from typing import Any, Literal

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query, Status
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer, SessionAuth

from agents import selectors
from agents.api import pagination, render
from agents.api.docs import LocalSwagger
from agents.api.schemas import (
    CloseIn,
    Error,
    MessageOut,
    ProfileIn,
    ProfileOut,
    QueuesOut,
    ReplyIn,
    SeenOut,
    TicketDetailOut,
    TicketOut,
    TransferIn,
    TypingOut,
    UserOut,
    ValidationErrorOut,
)
from agents.api.throttles import PerTokenRateThrottle
from agents.auth import token_digest, token_user
from agents.errors import NotFound, ServiceError
from agents.models import Agent, Message, Ticket
from agents.services import outbound, personas, throttle, tickets


class AgentRequest(HttpRequest):
    """A request the API has authenticated: its user is an agent."""

    user: Agent  # narrower than HttpRequest's: set by authentication


class TooManyFailures(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>`. Too many bad tokens from one address (see
    `agents.services.throttle`) and tokens from there are not even looked up: 429."""

    def __call__(self, request: HttpRequest) -> Agent | None:
        # Ninja's own __call__ logs a header of another scheme in full under DEBUG.
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme or not token:
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> Agent | None:
        address = request.META.get("REMOTE_ADDR")
        wait = throttle.token_blocked(address=address)
        if wait:
            raise TooManyFailures(wait)
        user = token_user(token)
        if user is None:
            throttle.token_failure_record(address=address)
            return None
        request.user = user
        request.rate_limit_key = f"token:{token_digest(token)[:32]}"  # type: ignore[attr-defined]
        return user


class SessionCookie(SessionAuth):
    """Session auth, CSRF-checked, for logged-in users only: a request without a session
    falls through to 401 rather than failing the CSRF check with 403."""

    def _get_key(self, request: HttpRequest) -> str | None:
        if not request.user.is_authenticated:
            return None
        request.rate_limit_key = f"user:{request.user.pk}"  # type: ignore[attr-defined]
        return super()._get_key(request)


class AgentApi(NinjaAPI):
    def get_openapi_operation_id(self, operation: Any) -> str:
        # The ids clients were generated with, from when the API was one module.
        return f"agents_api_{operation.view_func.__name__}"

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        """Ninja's document, plus what every operation may answer without declaring it:
        401 (not authenticated), 429 (rate limit), and 422 (input it cannot read) where it
        takes parameters or a body."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error = ValidationErrorOut.json_schema()
        for name, definition in error.pop("$defs", {}).items():
            components[name] = definition
        error["title"] = "ValidationError"
        error["properties"]["detail"]["items"] = {"$ref": "#/components/schemas/ValidationIssue"}
        components["ValidationError"] = error
        reference = {"$ref": "#/components/schemas/ValidationError"}
        words = {"$ref": "#/components/schemas/Error"}
        for operations in schema["paths"].values():
            for operation in operations.values():
                # Every operation authenticates and counts against the rate limit.
                for status, why in (
                    ("401", "No valid token or session"),
                    ("429", "Too many requests: wait for Retry-After seconds"),
                ):
                    operation["responses"].setdefault(
                        status,
                        {"description": why, "content": {"application/json": {"schema": words}}},
                    )
                if operation.get("requestBody") or operation.get("parameters"):
                    operation["responses"].setdefault(
                        "422",
                        {
                            "description": "The input could not be read: what and where",
                            "content": {"application/json": {"schema": reference}},
                        },
                    )
        return schema


api = AgentApi(
    title="Messenger helpdesk agent API",
    version="1",
    description="Tickets, messages and thread control for support agents. Authenticate "
    "with `Authorization: Bearer <token>` (from `manage.py create_agent`) or a session.",
    auth=[BearerToken(), SessionCookie()],
    throttle=[PerTokenRateThrottle()],
    docs=LocalSwagger(),
    urls_namespace="api-v1",
)


@api.exception_handler(ServiceError)
def service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    return api.create_response(request, {"detail": exc.message}, status=exc.status)


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = api.create_response(
        request,
        {"detail": "Authentication required: a valid bearer token or a session."},
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@api.exception_handler(TooManyFailures)
def too_many_failures(request: HttpRequest, exc: TooManyFailures) -> HttpResponse:
    response = api.create_response(
        request, {"detail": throttle.wait_message(exc.seconds)}, status=429
    )
    response["Retry-After"] = str(exc.seconds)
    return response


# The list's filters (GET /tickets and GET /queues), issue 11.
FILTER_DOCS = {
    "page": "Only this page's tickets: its Facebook page id (`page_id`), a page you can see.",
    "tag": "Only tickets that carry this tag: its name, in any case (inactive tags too).",
    "assignee": "Only tickets of `me`, of `none` (nobody has them), or of an agent (their id).",
    "needs_reply": "`1`: only tickets whose customer wrote last (the conversation's last "
    "message is theirs); `0` or empty: all.",
}


def _visible_ticket(request: AgentRequest, ticket_id: int) -> Ticket:
    ticket = selectors.ticket_get(user=request.user, ticket_id=ticket_id)
    if ticket is None:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return ticket


@api.get(
    "/tickets",
    response={200: list[TicketOut], 400: Error},
    tags=["tickets"],
    openapi_extra=pagination.documented("after", "the tickets that follow in the same order"),
)
def tickets_list(
    request: AgentRequest,
    response: HttpResponse,
    status: Literal["waiting", "open", "closed"] | None = None,
    mine: bool = False,
    queue: selectors.Queue | None = None,
    limit: int = Query(  # type: ignore[type-arg]
        pagination.TICKETS_PAGE,
        ge=1,
        le=pagination.TICKETS_PAGE_MAX,
        description="Tickets per page (default 50, at most 200).",
    ),
    after: str | None = Query(  # type: ignore[type-arg]
        None, description="The `X-Next-Cursor` of the previous page; leave out for the first."
    ),
    page: str | None = Query(None, description=FILTER_DOCS["page"]),  # type: ignore[type-arg]
    tag: str | None = Query(None, description=FILTER_DOCS["tag"]),  # type: ignore[type-arg]
    assignee: str | None = Query(None, description=FILTER_DOCS["assignee"]),  # type: ignore[type-arg]
    needs_reply: str | None = Query(None, description=FILTER_DOCS["needs_reply"]),  # type: ignore[type-arg]
) -> HttpResponse:
    """Tickets the agent may see, oldest first; filter by status and by assignee, or
    ask for one of the inbox's queues: `waiting`, `mine` (your unclosed tickets),
    `all_open` (waiting or open), `closed` (most recently closed first).

    Each ticket carries a preview of the conversation's last message, since when the
    customer has been waiting (`waiting_since`, null when not waiting), when the
    messaging windows close, and why you cannot reply now (`lock_reason`, "" if you can).

    Paginated by cursor, a page of `limit` tickets at a time: when more follow, the
    `X-Next-Cursor` header holds the cursor to pass as `after` for the next page (and
    `Link` its URL). The cursor marks a position in the list's order (opened_at, id; or
    closed_at, id for `closed`), so a page costs the same however deep, and tickets that
    come or go meanwhile are neither skipped nor repeated. A cursor that this list did
    not give out answers 400.

    Filters combine with the queue and with each other: `page`, `tag`, `assignee`,
    `needs_reply` (the customer wrote last: the conversation's last message is theirs).
    A value that names nothing you can see answers 400, saying which.
    """
    order = selectors.ticket_order(queue)
    filters = selectors.ticket_filters_parse(
        user=request.user, page=page, tag=tag, assignee=assignee, needs_reply=needs_reply
    )
    rows = selectors.ticket_page(
        user=request.user,
        status=status,
        mine=mine,
        queue=queue,
        after=None if after is None else pagination.ticket_position(after, order),
        limit=limit,
        filters=filters,
    )
    if rows.more:
        pagination.next_page(
            request, response, "after", pagination.ticket_cursor(rows.items[-1], order)
        )
    # Read into TicketOut's shape without validating each ticket (`render`): the
    # response schema above documents it, and test_render holds the two equal.
    data = render.rows(TicketOut, rows.items, {"request": request, "response_status": 200})
    return api.create_response(request, data, temporal_response=response)


@api.get("/queues", response={200: QueuesOut, 400: Error}, tags=["tickets"])
def queues(
    request: AgentRequest,
    page: str | None = Query(None, description=FILTER_DOCS["page"]),  # type: ignore[type-arg]
    tag: str | None = Query(None, description=FILTER_DOCS["tag"]),  # type: ignore[type-arg]
    assignee: str | None = Query(None, description=FILTER_DOCS["assignee"]),  # type: ignore[type-arg]
    needs_reply: str | None = Query(None, description=FILTER_DOCS["needs_reply"]),  # type: ignore[type-arg]
) -> dict[str, int]:
    """How many tickets each inbox queue holds; with filters (those of `GET /tickets`),
    how many of them match."""
    filters = selectors.ticket_filters_parse(
        user=request.user, page=page, tag=tag, assignee=assignee, needs_reply=needs_reply
    )
    return selectors.ticket_counts(user=request.user, filters=filters if filters.active else None)


@api.get("/tickets/{ticket_id}", response={200: TicketDetailOut, 404: Error}, tags=["tickets"])
def ticket_detail(request: AgentRequest, ticket_id: int) -> Ticket:
    """One ticket, with its conversation's thread-control history (`transitions`) and
    the ticket's own changes (`events`: opened, claimed, transferred, closed…)."""
    return _visible_ticket(request, ticket_id)


@api.get(
    "/tickets/{ticket_id}/messages",
    response={200: list[MessageOut], 400: Error, 404: Error},
    tags=["tickets"],
    openapi_extra=pagination.documented("before", "older messages"),
)
def ticket_messages(
    request: AgentRequest,
    response: HttpResponse,
    ticket_id: int,
    limit: int = Query(  # type: ignore[type-arg]
        pagination.MESSAGES_PAGE,
        ge=1,
        le=pagination.MESSAGES_PAGE_MAX,
        description="Messages per page (default 50, at most 200).",
    ),
    before: str | None = Query(  # type: ignore[type-arg]
        None, description="The `X-Next-Cursor` of the previous page; leave out for the newest."
    ),
) -> list[Message]:
    """The conversation in timestamp order (the event time, not when it arrived): the
    ticket's own messages, and context (`context: true`) with who had the conversation
    then (`segment`: the bot, the Page Inbox, another app, nobody, or an earlier ticket
    with its number, who closed it and the outcome). What a person in the Page Inbox and
    the customer said while this ticket was open is the ticket's business: not context.
    Each outbound message has its delivery status and, when it failed, why (`error`, for
    agents, and `error_detail` with Meta's code).

    Paginated by cursor, newest page first: without `before`, the newest `limit`
    messages (still oldest first within the page). When older ones exist, the
    `X-Next-Cursor` header holds the cursor to pass as `before` for the page before it
    (and `Link` its URL). A page costs the same however far back it is. A cursor that
    this list did not give out answers 400.
    """
    page = selectors.ticket_message_page(
        ticket=_visible_ticket(request, ticket_id),
        before=None if before is None else pagination.message_position(before),
        limit=limit,
    )
    if page.more:
        pagination.next_page(request, response, "before", pagination.message_cursor(page.items[0]))
    return page.items


@api.get(
    "/tickets/{ticket_id}/messages/{message_id}",
    response={200: MessageOut, 404: Error},
    tags=["tickets"],
)
def ticket_message(request: AgentRequest, ticket_id: int, message_id: int) -> Message:
    """One message of the ticket's conversation, as `GET /tickets/{ticket_id}/messages`
    shows it (`context` is relative to this ticket): what a live `message.created` or
    `message.updated` event names. 404 when the ticket is not yours to see or the message
    is not in its conversation."""
    message = selectors.ticket_message_get(
        ticket=_visible_ticket(request, ticket_id), message_id=message_id
    )
    if message is None:
        raise NotFound(f"Message {message_id} is not in ticket {ticket_id}'s conversation.")
    return message


@api.post(
    "/tickets/{ticket_id}/claim",
    response={200: TicketOut, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_claim(request: AgentRequest, ticket_id: int) -> Ticket:
    """Assign a waiting ticket to yourself. 409 when someone else was first."""
    tickets.ticket_claim(ticket_id=ticket_id, user=request.user)
    return _visible_ticket(request, ticket_id)


@api.post(
    "/tickets/{ticket_id}/reply",
    response={201: MessageOut, 400: Error, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_reply(request: AgentRequest, ticket_id: int, payload: ReplyIn) -> Status[Message]:
    """Queue a reply; it is sent by a worker. Its `status` goes pending → sent (or failed,
    with `error`). 409 when the helpdesk does not own the thread, with the reason."""
    message = outbound.ticket_reply(ticket_id=ticket_id, user=request.user, text=payload.text)
    return Status(201, message)  # an agent's reply is never context


@api.post(
    "/tickets/{ticket_id}/close",
    response={200: TicketOut, 400: Error, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_close(request: AgentRequest, ticket_id: int, payload: CloseIn) -> Ticket:
    """Close the ticket and pass the conversation back to the bot (after an optional
    closing message). `outcome` travels to the bot in the handover metadata."""
    tickets.ticket_close(
        ticket_id=ticket_id,
        user=request.user,
        closing_message=payload.closing_message,
        outcome=payload.outcome,
    )
    return _visible_ticket(request, ticket_id)


@api.post(
    "/tickets/{ticket_id}/transfer",
    response={200: TicketOut, 400: Error, 403: Error, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_transfer(request: AgentRequest, ticket_id: int, payload: TransferIn) -> Ticket:
    """Give the ticket to another agent: one of `GET /tickets/{ticket_id}/transfer-targets`.
    Its assignee, anyone while it waits, or an admin may (403 otherwise); 400 when
    `agent_id` names no active agent who works on the ticket's page (the same answer
    whether or not such an agent exists elsewhere); 409 when the ticket is closed or is
    theirs already."""
    tickets.ticket_transfer(ticket_id=ticket_id, user=request.user, to_user_id=payload.agent_id)
    return _visible_ticket(request, ticket_id)


@api.get(
    "/tickets/{ticket_id}/transfer-targets",
    response={200: list[UserOut], 404: Error},
    tags=["tickets"],
)
def ticket_transfer_targets(request: AgentRequest, ticket_id: int) -> list[Agent]:
    """Whom the ticket may be transferred to: the active agents who may see its page
    (its teams' members and the admins; everyone while no team handles the page), but
    its assignee. In name order."""
    return selectors.ticket_transfer_targets(ticket=_visible_ticket(request, ticket_id))


@api.post(
    "/tickets/{ticket_id}/request-control",
    response={202: TicketOut, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_request_control(request: AgentRequest, ticket_id: int) -> Status[Ticket]:
    """Ask the bot for the conversation again: after it took it back, or from a closed
    ticket while the 24-hour window is open and the customer has no unclosed ticket
    (`can_request_control` says whether you may; 409 with the reason otherwise). When the
    bot passes it, a recently closed ticket reopens, else a new one opens."""
    tickets.ticket_request_control(ticket_id=ticket_id, user=request.user)
    return Status(202, _visible_ticket(request, ticket_id))


@api.post(
    "/tickets/{ticket_id}/take-control",
    response={202: TicketOut, 404: Error, 409: Error},
    tags=["tickets"],
)
def ticket_take_control(request: AgentRequest, ticket_id: int) -> Status[Ticket]:
    """Take the conversation (`take_thread_control`) where the page lets the helpdesk take
    it, or it is idle on a Conversation Routing page (`can_take_over` says whether you
    may; 409 with the reason otherwise). The ticket opens or reopens as soon as Meta
    confirms."""
    tickets.ticket_take_control(ticket_id=ticket_id, user=request.user)
    return Status(202, _visible_ticket(request, ticket_id))


@api.post(
    "/tickets/{ticket_id}/seen",
    response={202: SeenOut, 404: Error},
    tags=["tickets"],
)
def ticket_seen(request: AgentRequest, ticket_id: int) -> Status[dict[str, bool]]:
    """You opened the conversation: the customer sees it as seen (`mark_seen`, with your
    persona), while the helpdesk owns the thread, at most once a minute per
    conversation. `sent` says whether this call queued one."""
    return Status(202, {"sent": outbound.ticket_seen(ticket_id=ticket_id, user=request.user)})


@api.post(
    "/tickets/{ticket_id}/typing",
    response={202: TypingOut, 404: Error},
    tags=["tickets"],
)
def ticket_typing(request: AgentRequest, ticket_id: int) -> Status[dict[str, bool]]:
    """The agent is typing: the customer sees Messenger's typing indicator
    (`sender_action: typing_on`), at most once per 10 seconds per conversation and only
    while you could reply. `sent` says whether this call queued one."""
    return Status(202, {"sent": outbound.ticket_typing(ticket_id=ticket_id, user=request.user)})


@api.post(
    "/messages/{message_id}/retry",
    response={200: MessageOut, 404: Error, 409: Error},
    tags=["messages"],
)
def message_retry(request: AgentRequest, message_id: int) -> Message:
    """Send a failed message again."""
    return outbound.message_retry(message_id=message_id, user=request.user)


@api.get("/me", response=ProfileOut, tags=["agents"])
def me(request: AgentRequest) -> dict[str, Any]:
    """You, and the name customers see on your replies."""
    return personas.profile_view(request.user)


@api.put("/me", response={200: ProfileOut, 400: Error}, tags=["agents"])
def me_update(request: AgentRequest, payload: ProfileIn) -> dict[str, Any]:
    """Set the name (and picture: a public https URL) customers see on your replies. An
    empty name: your first name, else your username."""
    personas.profile_update(
        request.user, public_name=payload.public_name, picture_url=payload.picture_url
    )
    return personas.profile_view(request.user)


@api.get("/agents", response=list[UserOut], tags=["agents"])
def agents_list(request: AgentRequest) -> QuerySet[Agent]:
    """Active agents you work with: your teams' members, and the agents on no team while
    some page is on no team. Admins (superusers) see every active agent. Whom a ticket
    may be transferred to is `GET /tickets/{ticket_id}/transfer-targets`."""
    return selectors.agent_list(user=request.user)


# The feature modules register their routes on `api` (imported last: they import it).
from agents.api import attachments, context, replies, routing, tags  # noqa: E402,F401
