"""The customer context panel and search (issue 11): `GET /tickets/{id}/context`, `PUT
/tickets/{id}/context/note`, `GET /search`. Registered on the API by the import at the
end of `agents.api.endpoints`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpResponse
from ninja import Query, Schema

from agents import context_selectors
from agents.api import pagination
from agents.api.endpoints import AgentRequest, api
from agents.api.schemas import ContactOut, Error, UserOut
from agents.context_selectors import (
    ContactContext,
    EarlierTicket,
    SearchHit,
    SearchPosition,
    SearchResult,
)
from agents.errors import NotFound
from agents.services import context

SEARCH_PAGE = 20
SEARCH_PAGE_MAX = 50
_SEARCH_ORDER = "search"

# --- schemas -----------------------------------------------------------------------------


class EarlierTicketOut(Schema):
    """A ticket of the same customer opened before this one. `outcome`: what the agent
    gave when closing it (empty while it is not closed); `agent`: who had it; `closed_by`:
    who closed it (null when it is not closed, or closed by nobody: the bot took the
    conversation back)."""

    id: int
    status: Literal["waiting", "open", "closed"]
    outcome: str
    agent: UserOut | None
    closed_by: UserOut | None
    opened_at: datetime
    closed_at: datetime | None

    @staticmethod
    def resolve_id(obj: EarlierTicket) -> int:
        return obj.ticket.pk

    @staticmethod
    def resolve_status(obj: EarlierTicket) -> str:
        return obj.ticket.status

    @staticmethod
    def resolve_outcome(obj: EarlierTicket) -> str:
        return obj.ticket.closing_note

    @staticmethod
    def resolve_agent(obj: EarlierTicket) -> Any:
        return obj.ticket.assignee

    @staticmethod
    def resolve_opened_at(obj: EarlierTicket) -> datetime:
        return obj.ticket.opened_at

    @staticmethod
    def resolve_closed_at(obj: EarlierTicket) -> datetime | None:
        return obj.ticket.closed_at


class ContactNoteOut(Schema):
    """The agents' note on the customer: its text, who changed it last and when (null
    while nobody wrote one)."""

    text: str
    updated_by: UserOut | None
    updated_at: datetime | None


class ContextOut(Schema):
    """The customer beside a ticket (and its conversation, which live events name): who
    they are on which page, since when the helpdesk knows them (`first_seen`: the
    contact's first sight or its first message, whichever came first), their earlier
    tickets, newest first (`earlier_tickets_more`: more than these exist), and the
    agents' note."""

    ticket_id: int
    conversation_id: int
    contact_id: int
    contact: ContactOut
    page_id: str
    page_name: str
    first_seen: datetime
    earlier_tickets: list[EarlierTicketOut]
    earlier_tickets_more: bool
    note: ContactNoteOut

    @staticmethod
    def resolve_ticket_id(obj: ContactContext) -> int:
        return obj.ticket.pk

    @staticmethod
    def resolve_conversation_id(obj: ContactContext) -> int:
        return obj.ticket.conversation_id

    @staticmethod
    def resolve_contact_id(obj: ContactContext) -> int:
        return obj.contact.pk

    @staticmethod
    def resolve_page_id(obj: ContactContext) -> str:
        return obj.ticket.conversation.page.page_id

    @staticmethod
    def resolve_page_name(obj: ContactContext) -> str:
        return obj.ticket.conversation.page.name

    @staticmethod
    def resolve_earlier_tickets(obj: ContactContext) -> list[EarlierTicket]:
        return obj.earlier

    @staticmethod
    def resolve_earlier_tickets_more(obj: ContactContext) -> bool:
        return obj.earlier_more

    @staticmethod
    def resolve_note(obj: ContactContext) -> dict[str, Any]:
        return {
            "text": obj.contact.note,
            "updated_by": obj.contact.note_updated_by,
            "updated_at": obj.contact.note_updated_at,
        }


class NoteIn(Schema):
    text: str


class SearchMessageOut(Schema):
    """A matching message: `snippet` is its text on one line, cut around the first match
    when long ("…" where cut); `highlights` are [start, end) offsets of the matches in
    the snippet, in Unicode code points (JavaScript counts UTF-16 code units: the inbox
    splits the snippet with Array.from)."""

    id: int
    author_kind: str
    author: UserOut | None
    timestamp: int
    snippet: str
    highlights: list[tuple[int, int]]

    @staticmethod
    def resolve_id(obj: SearchHit) -> int:
        return obj.message.pk

    @staticmethod
    def resolve_author_kind(obj: SearchHit) -> str:
        return obj.message.author_kind

    @staticmethod
    def resolve_author(obj: SearchHit) -> Any:
        return obj.message.author

    @staticmethod
    def resolve_timestamp(obj: SearchHit) -> int:
        return obj.message.timestamp


class SearchResultOut(Schema):
    """A ticket that matches: by its contact (`contact_highlights` in `contact.name`,
    `psid_highlights` in `contact.psid`) or by messages found under it (`match_count`,
    the newest in `messages`; context from before any ticket is found under the
    conversation's latest ticket, whose timeline shows it). `at`: its newest match, epoch
    ms (the handover's time for a contact match): the order of the results."""

    ticket_id: int
    status: Literal["waiting", "open", "closed"]
    assignee: UserOut | None
    conversation_id: int
    page_id: str
    page_name: str
    contact: ContactOut
    contact_highlights: list[tuple[int, int]]
    psid_highlights: list[tuple[int, int]]
    opened_at: datetime
    closed_at: datetime | None
    at: int
    match_count: int
    messages: list[SearchMessageOut]

    @staticmethod
    def resolve_ticket_id(obj: SearchResult) -> int:
        return obj.ticket.pk

    @staticmethod
    def resolve_status(obj: SearchResult) -> str:
        return obj.ticket.status

    @staticmethod
    def resolve_assignee(obj: SearchResult) -> Any:
        return obj.ticket.assignee

    @staticmethod
    def resolve_conversation_id(obj: SearchResult) -> int:
        return obj.ticket.conversation_id

    @staticmethod
    def resolve_page_id(obj: SearchResult) -> str:
        return obj.ticket.conversation.page.page_id

    @staticmethod
    def resolve_page_name(obj: SearchResult) -> str:
        return obj.ticket.conversation.page.name

    @staticmethod
    def resolve_contact(obj: SearchResult) -> Any:
        return obj.ticket.conversation.contact

    @staticmethod
    def resolve_opened_at(obj: SearchResult) -> datetime:
        return obj.ticket.opened_at

    @staticmethod
    def resolve_closed_at(obj: SearchResult) -> datetime | None:
        return obj.ticket.closed_at


# --- cursors -----------------------------------------------------------------------------


def search_cursor(result: SearchResult) -> str:
    return pagination._encode(_SEARCH_ORDER, result.at, result.ticket.pk)


def search_position(cursor: str) -> SearchPosition:
    key, pk = pagination._decode(cursor, _SEARCH_ORDER, "after")
    try:
        return SearchPosition(at=int(key), id=pk)
    except ValueError:
        raise pagination._bad("after") from None


# --- operations --------------------------------------------------------------------------


@api.get(
    "/tickets/{ticket_id}/context",
    response={200: ContextOut, 404: Error},
    tags=["context"],
    summary="The customer beside a ticket",
)
def ticket_context(request: AgentRequest, ticket_id: int) -> ContactContext:
    """The ticket's customer for the context panel: name, picture, page, PSID, first
    seen, their earlier tickets (outcome, agent, dates) and the agents' note on them.
    404 when the ticket does not exist or is on a page you do not see."""
    found = context_selectors.ticket_context(user=request.user, ticket_id=ticket_id)
    if found is None:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return found


@api.put(
    "/tickets/{ticket_id}/context/note",
    response={200: ContactNoteOut, 400: Error, 404: Error},
    tags=["context"],
    summary="Set the note on the ticket's customer",
)
def ticket_context_note(request: AgentRequest, ticket_id: int, payload: NoteIn) -> dict[str, Any]:
    """Replace the agents' note on the ticket's customer (trimmed; empty clears it), as
    yours, now. It is the customer's: every ticket of theirs on this page shows it, and
    agents who have one open see it change (`contact.updated`). 400 when longer than
    2,000 characters; 404 when the ticket is not yours to see."""
    contact = context.contact_note_update(ticket_id=ticket_id, user=request.user, note=payload.text)
    return {
        "text": contact.note,
        "updated_by": contact.note_updated_by,
        "updated_at": contact.note_updated_at,
    }


@api.get(
    "/search",
    response={200: list[SearchResultOut], 400: Error},
    tags=["search"],
    summary="Search contacts and messages",
    openapi_extra=pagination.documented("after", "older results"),
)
def search(
    request: AgentRequest,
    response: HttpResponse,
    q: str = Query(  # type: ignore[type-arg]
        ...,
        description="Words to find in contacts' names and PSIDs and in message texts; "
        "the last word also as the start of a word. Empty: no results.",
    ),
    limit: int = Query(  # type: ignore[type-arg]
        SEARCH_PAGE,
        ge=1,
        le=SEARCH_PAGE_MAX,
        description="Results (tickets) per page (default 20, at most 50).",
    ),
    after: str | None = Query(  # type: ignore[type-arg]
        None, description="The `X-Next-Cursor` of the previous page; leave out for the first."
    ),
) -> list[SearchResult]:
    """Tickets on pages you see whose customer (name, PSID) or messages match every
    word of `q`, newest match first, each with its newest matching messages and where
    the words are in them. PostgreSQL: full-text search (whole words, the last one as
    a prefix, any language); SQLite: the words anywhere in the text.

    400 with the reason for a query of fewer than 2 letters or digits, more than 200
    characters or more than 8 words, or a cursor this search did not give out.
    Paginated like `GET /tickets`: `X-Next-Cursor` (and `Link`) when more follow."""
    page = context_selectors.search(
        user=request.user,
        query=q,
        after=None if after is None else search_position(after),
        limit=limit,
    )
    if page.more:
        pagination.next_page(request, response, "after", search_cursor(page.items[-1]))
    return page.items
