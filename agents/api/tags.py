"""Tags on tickets and the options of the list's filters (issue 11, point 5).

Registered on the one `api` by the import at the end of `agents.api.endpoints`. The
filters themselves are parameters of `GET /tickets` and `GET /queues`.
"""

from __future__ import annotations

from typing import Any

from ninja import Schema

from agents import selectors
from agents.api.endpoints import AgentRequest, _visible_ticket, api
from agents.api.schemas import Error, TagOut, TicketOut, UserOut
from agents.models import Tag, Ticket
from agents.services import tags


class TagsIn(Schema):
    tag_ids: list[int]


class PageOut(Schema):
    """A Facebook page: `id` is its page id (a ticket's `page_id`)."""

    id: str
    name: str


class FilterOptionsOut(Schema):
    """What the list can be filtered by: the pages you can see, every tag (inactive ones
    are still on tickets), the agents you work with."""

    pages: list[PageOut]
    tags: list[TagOut]
    agents: list[UserOut]


@api.get("/tags", response=list[TagOut], tags=["tags"])
def tags_list(request: AgentRequest) -> list[Tag]:
    """Every tag, by name: the active ones can be applied to tickets; inactive ones stay
    on the tickets that carry them. Admins manage them (Django admin)."""
    return selectors.tag_list()


@api.get("/ticket-filters", response=FilterOptionsOut, tags=["tickets"])
def ticket_filter_options(request: AgentRequest) -> dict[str, Any]:
    """The choices of the list's filters (`GET /tickets`' `page`, `tag`, `assignee`): the
    pages you can see, by name, every tag, and the agents you work with."""
    return {
        "pages": [
            {"id": page.page_id, "name": page.name}
            for page in selectors.page_list(user=request.user)
        ],
        "tags": selectors.tag_list(),
        "agents": list(selectors.agent_list(user=request.user)),
    }


@api.put(
    "/tickets/{ticket_id}/tags",
    response={200: TicketOut, 400: Error, 404: Error},
    tags=["tags"],
)
def ticket_tags_set(request: AgentRequest, ticket_id: int, payload: TagsIn) -> Ticket:
    """Make the ticket carry exactly these tags (`tag_ids`; `[]` removes them all). An
    inactive tag may stay on a ticket that has it but not be added; an id of no tag, or
    an inactive tag to add: 400 in words, and nothing changes. Each tag added or removed
    is a line in the ticket's history (`tagged`, `untagged`) and a live update."""
    tags.ticket_tags_set(ticket_id=ticket_id, user=request.user, tag_ids=payload.tag_ids)
    return _visible_ticket(request, ticket_id)


@api.post(
    "/tickets/{ticket_id}/tags/{tag_id}",
    response={200: TicketOut, 400: Error, 404: Error},
    tags=["tags"],
)
def ticket_tag_add(request: AgentRequest, ticket_id: int, tag_id: int) -> Ticket:
    """Put one tag on the ticket (already there: nothing changes). 400 for an id of no
    tag or an inactive tag."""
    tags.ticket_tag_add(ticket_id=ticket_id, user=request.user, tag_id=tag_id)
    return _visible_ticket(request, ticket_id)


@api.delete(
    "/tickets/{ticket_id}/tags/{tag_id}",
    response={200: TicketOut, 400: Error, 404: Error},
    tags=["tags"],
)
def ticket_tag_remove(request: AgentRequest, ticket_id: int, tag_id: int) -> Ticket:
    """Take one tag off the ticket, inactive ones too (not there: nothing changes). 400
    for an id of no tag."""
    tags.ticket_tag_remove(ticket_id=ticket_id, user=request.user, tag_id=tag_id)
    return _visible_ticket(request, ticket_id)
