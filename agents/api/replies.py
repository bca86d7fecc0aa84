"""The API of saved replies, private notes and mentions (registered on `endpoints.api`).

Saved replies: `/saved-replies` (list, create, change, delete) and their text filled
for a ticket. Notes: `/tickets/{ticket_id}/notes`. Mentions: `/mentions` and marking a
ticket's mentions read. Rules live in `agents.services.replies` and `.notes`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpResponse
from ninja import Field, Query, Schema, Status

from agents import selectors
from agents.api.endpoints import AgentRequest, _visible_ticket, api
from agents.api.schemas import Error, UserOut
from agents.models import Agent, Note, NoteMention, SavedReply, Team
from agents.services import notes, replies

# --- schemas ----------------------------------------------------------------------------


class TeamOut(Schema):
    id: int
    name: str


class RenderedOut(Schema):
    """A saved reply's text filled for a ticket. `unfilled` lists the placeholders left
    in `text` (no value for this ticket, e.g. `{first_name}` of a contact without
    one): the agent replaces them; a reply still holding one is refused."""

    text: str
    unfilled: list[str]


class SavedReplyOut(Schema):
    """A saved reply. `scope`: `personal` (yours), `team` (`team`'s members') or
    `everyone` (every agent; only admins change it). `can_edit`: whether you may change
    or delete it. `rendered`: its text filled for the ticket asked for (`ticket_id`),
    else null."""

    id: int
    title: str
    shortcut: str
    body: str
    scope: str
    team: TeamOut | None
    can_edit: bool
    updated_at: datetime
    rendered: RenderedOut | None = None

    @staticmethod
    def resolve_scope(obj: SavedReply) -> str:
        return replies.scope_of(obj)

    @staticmethod
    def resolve_can_edit(obj: SavedReply, context: dict[str, Any]) -> bool:
        return replies.may_change(obj, context["request"].user)

    @staticmethod
    def resolve_rendered(obj: SavedReply) -> dict[str, Any] | None:
        rendered = getattr(obj, "rendered", None)
        if rendered is None:
            return None
        return {"text": rendered.text, "unfilled": rendered.unfilled}


class SavedReplyIn(Schema):
    title: str = Field(..., max_length=1000, examples=["Refund policy"])
    shortcut: str = Field(
        ...,
        max_length=1000,
        examples=["refund"],
        description="One word (letters, digits, - and _), typed after / in the composer.",
    )
    body: str = Field(..., max_length=10000, examples=["Hi {first_name}, refunds take 5 days."])


class SavedReplyCreateIn(SavedReplyIn):
    team_id: int | None = Field(
        None, description="A team you are on, for a team's reply; leave out for your own."
    )


class NoteOut(Schema):
    """A private note. `timestamp` (epoch ms) places it among the messages; `ticket_id`
    is the ticket it was written on (an earlier ticket of the conversation, maybe)."""

    id: int
    ticket_id: int
    text: str
    author: UserOut | None
    mentions: list[UserOut]
    timestamp: int
    created_at: datetime

    @staticmethod
    def resolve_mentions(obj: Note) -> list[Agent]:
        return list(obj.mentions.all())


class NoteIn(Schema):
    text: str = Field(..., max_length=20000)


class MentionOut(Schema):
    """A note that names you: where (`ticket_id`, `contact_name`), by whom, what it
    says, and whether you read it (opened the ticket since)."""

    id: int
    note_id: int
    ticket_id: int
    contact_name: str
    author: UserOut | None
    text: str
    created_at: datetime
    read: bool

    @staticmethod
    def resolve_ticket_id(obj: NoteMention) -> int:
        return obj.note.ticket_id

    @staticmethod
    def resolve_contact_name(obj: NoteMention) -> str:
        return str(obj.note.conversation.contact.display_name)

    @staticmethod
    def resolve_author(obj: NoteMention) -> Agent | None:
        return obj.note.author

    @staticmethod
    def resolve_text(obj: NoteMention) -> str:
        return obj.note.text

    @staticmethod
    def resolve_read(obj: NoteMention) -> bool:
        return obj.read_at is not None


class MentionsOut(Schema):
    unread: int
    mentions: list[MentionOut]


class ReadOut(Schema):
    read: int


# --- saved replies ----------------------------------------------------------------------


@api.get(
    "/saved-replies",
    response={200: list[SavedReplyOut], 404: Error},
    tags=["saved replies"],
    summary="List saved replies",
)
def saved_replies_list(
    request: AgentRequest,
    q: str = Query("", max_length=200, description="Words in the title, shortcut or text."),  # type: ignore[type-arg]
    ticket_id: int | None = Query(  # type: ignore[type-arg]
        None, description="Fill each reply's placeholders for this ticket (`rendered`)."
    ),
) -> list[SavedReply]:
    """The saved replies you may use, by shortcut: yours, your teams' and everyone's
    (an admin: every team's too), filtered by `q`. With `ticket_id`, each has its text
    filled for that ticket in `rendered`; 404 when the ticket is not yours to see."""
    ticket = None if ticket_id is None else _visible_ticket(request, ticket_id)
    rows = list(replies.saved_reply_list(user=request.user, q=q))
    if ticket is not None:
        values = replies.placeholder_values(ticket=ticket, user=request.user)
        for row in rows:
            row.rendered = replies.render(row.body, values)  # type: ignore[attr-defined]
    return rows


@api.get(
    "/saved-replies/teams",
    response=list[TeamOut],
    tags=["saved replies"],
    summary="Teams you may write saved replies for",
)
def saved_reply_teams(request: AgentRequest) -> Any:
    """The teams whose saved replies you may write: yours (an admin: every team)."""
    teams = Team.objects.order_by("name")
    return teams if request.user.is_superuser else teams.filter(members=request.user)


@api.post(
    "/saved-replies",
    response={201: SavedReplyOut, 400: Error},
    tags=["saved replies"],
    summary="Create a saved reply",
)
def saved_reply_create(request: AgentRequest, payload: SavedReplyCreateIn) -> Status[SavedReply]:
    """A reply of your own, or with `team_id` one of a team you are on. 400 with every
    problem in words (empty title or text, a shortcut that is not one word or is taken
    in that scope, a text longer than Messenger's 2000 characters): nothing saved."""
    reply = replies.saved_reply_create(
        user=request.user,
        title=payload.title,
        shortcut=payload.shortcut,
        body=payload.body,
        team_id=payload.team_id,
    )
    return Status(201, reply)


@api.get(
    "/tickets/{ticket_id}/saved-replies/{reply_id}/render",
    response={200: RenderedOut, 404: Error},
    tags=["saved replies"],
    summary="A saved reply filled for a ticket",
)
def saved_reply_render(request: AgentRequest, ticket_id: int, reply_id: int) -> Any:
    """The reply's text with `{first_name}` (the contact's), `{agent_name}` (your name
    as customers see it) and `{page_name}` filled; a placeholder without a value stays
    in the text and is listed in `unfilled`."""
    ticket = _visible_ticket(request, ticket_id)
    return replies.saved_reply_render(user=request.user, ticket=ticket, reply_id=reply_id)


@api.put(
    "/saved-replies/{reply_id}",
    response={200: SavedReplyOut, 400: Error, 403: Error, 404: Error},
    tags=["saved replies"],
    summary="Change a saved reply",
)
def saved_reply_update(request: AgentRequest, reply_id: int, payload: SavedReplyIn) -> SavedReply:
    """Change a reply's title, shortcut and text (not its scope). 404 for a reply you do
    not see (another agent's, another team's); 403 for everyone's unless you are an
    admin; 400 as for creating, nothing changed."""
    return replies.saved_reply_update(
        user=request.user,
        reply_id=reply_id,
        title=payload.title,
        shortcut=payload.shortcut,
        body=payload.body,
    )


@api.delete(
    "/saved-replies/{reply_id}",
    response={204: None, 403: Error, 404: Error},
    tags=["saved replies"],
    summary="Delete a saved reply",
)
def saved_reply_delete(request: AgentRequest, reply_id: int) -> HttpResponse:
    """Delete a reply you may change (404 and 403 as for changing it)."""
    replies.saved_reply_delete(user=request.user, reply_id=reply_id)
    return HttpResponse(status=204)


# --- notes and mentions -----------------------------------------------------------------


@api.get(
    "/tickets/{ticket_id}/notes",
    response={200: list[NoteOut], 404: Error},
    tags=["notes"],
    summary="A conversation's private notes",
)
def ticket_notes(request: AgentRequest, ticket_id: int) -> list[Note]:
    """The private notes of the ticket's conversation (the newest 500, oldest first):
    agents' only, never sent to Messenger. The timeline places each by its `timestamp`
    among the messages of `GET /tickets/{ticket_id}/messages`, which lists messages only.
    A live `note.created` event names the conversation, ticket and note."""
    return notes.note_list(ticket=_visible_ticket(request, ticket_id))


@api.post(
    "/tickets/{ticket_id}/notes",
    response={201: NoteOut, 400: Error, 404: Error},
    tags=["notes"],
    summary="Write a private note",
)
def ticket_note_add(request: AgentRequest, ticket_id: int, payload: NoteIn) -> Status[Note]:
    """A note for the agents of the ticket's page, on a ticket in any state; never
    sent to the customer. `@username` or `@Full Name` mentions an agent who may see the
    ticket: they are notified (`GET /mentions`, a live `mention.created`). 400 (nothing
    stored) for an empty note, one over 5000 characters, or a mention of anyone else."""
    note = notes.note_add(ticket_id=ticket_id, user=request.user, text=payload.text)
    return Status(201, note)


@api.get(
    "/tickets/{ticket_id}/mentionable",
    response={200: list[UserOut], 404: Error},
    tags=["notes"],
    summary="Agents a note on this ticket may mention",
)
def ticket_mentionable(request: AgentRequest, ticket_id: int) -> list[Agent]:
    """The active agents who may see the ticket's page, by username."""
    ticket = _visible_ticket(request, ticket_id)
    return list(selectors.page_agents(ticket.conversation.page_id).order_by("username"))


@api.get("/mentions", response=MentionsOut, tags=["notes"], summary="Notes that mention you")
def mentions(request: AgentRequest, unread: bool = False) -> dict[str, Any]:
    """The newest 50 notes that mention you on tickets you may see, newest first (only
    the unread ones with `unread=true`), and how many are unread."""
    return {
        "unread": notes.mention_unread_count(user=request.user),
        "mentions": notes.mention_list(user=request.user, unread=unread),
    }


@api.post(
    "/tickets/{ticket_id}/mentions/read",
    response={200: ReadOut, 404: Error},
    tags=["notes"],
    summary="Mark your mentions in a ticket read",
)
def ticket_mentions_read(request: AgentRequest, ticket_id: int) -> dict[str, int]:
    """You read the ticket's notes that mention you; `read` says how many were unread."""
    _visible_ticket(request, ticket_id)
    return {"read": notes.mentions_read(user=request.user, ticket_id=ticket_id)}
