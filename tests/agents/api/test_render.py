"""The ticket list reads its tickets into TicketOut's shape without Pydantic validating
each one (`agents.api.render`): its answer must be exactly what the validated schema
gives, field for field, on every kind of ticket an agent meets."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone
from ninja import Field, Schema
from ninja.responses import NinjaJSONEncoder

from agents import selectors
from agents.api import render
from agents.api.schemas import TicketOut
from agents.models import ControlState, Csat, Message, Tag, Team, Ticket, TicketTag
from tests.support import factories

pytestmark = pytest.mark.django_db


def _validated(user, queue: str) -> list[dict]:
    """What Ninja's validation of TicketOut gives for the list, as JSON."""
    request = RequestFactory().get("/api/v1/tickets")
    request.user = user
    items = selectors.ticket_page(
        user=user,
        queue=queue,
        limit=200,
        filters=selectors.ticket_filters_parse(user=user),
    ).items
    context = {"request": request, "response_status": 200}
    dumped = [TicketOut.model_validate(t, context=context).model_dump() for t in items]
    return json.loads(json.dumps(dumped, cls=NinjaJSONEncoder))


@pytest.fixture
def tickets(page, agent, agent2):
    """One of each kind: waiting and unanswered, open and answered, assigned to another
    agent, flagged, tagged, in every control state, closed with a rating answered,
    waited for and expired, on a page with the Human Agent tag and a paused outbox, a
    contact without a name, a last message that is an attachment."""
    team = Team.objects.create(name="Support")
    team.pages.add(page)
    team.members.add(agent, agent2)
    other = factories.page(page_id="1000000000000009", name="Other", human_agent_enabled=True)
    other.outbox_paused_reason = "the page token is invalid or expired"
    other.conversation_routing = False
    other.save()
    vip = Tag.objects.create(name="vip", colour="purple", description="Big customer")
    old = Tag.objects.create(name="old", active=False)
    now = timezone.now()
    made = []

    def ticket(n: int, **fields):
        made.append(factories.ticket(psid=f"7{n:04d}", **fields))
        return made[-1]

    waiting = ticket(1, page=page)
    factories.message(ticket=waiting, text="hello?")
    mine = ticket(2, page=page, status=Ticket.Status.OPEN, assignee=agent)
    factories.message(ticket=mine, text="my parcel")
    factories.message(ticket=mine, text="on it", author_kind=Message.Author.AGENT)
    TicketTag.objects.create(ticket=mine, tag=vip)
    TicketTag.objects.create(ticket=mine, tag=old)
    theirs = ticket(3, page=page, status=Ticket.Status.OPEN, assignee=agent2)
    factories.message(
        ticket=theirs,
        text="",
        attachments=[{"type": "image", "url": "https://example.invalid/a.png"}],
    )
    ticket(4, page=page, flagged=True, flag_reason="The bot took the conversation back.")
    for n, state in enumerate(ControlState, start=10):
        conversation = factories.conversation(page=page, psid=f"7{n:04d}", control_state=state)
        ticket(n, conversation=conversation, status=Ticket.Status.CLOSED, closing_note=state)
    for n, status in enumerate(Csat.Status, start=30):
        closed = ticket(n, page=page, status=Ticket.Status.CLOSED)
        Csat.objects.create(
            ticket=closed,
            status=status,
            asked_at=now - timedelta(minutes=5),
            expires_at=now + timedelta(minutes=10),
            score=4 if status == Csat.Status.ANSWERED else None,
            answered_at=now if status == Csat.Status.ANSWERED else None,
        )
    ticket(40, page=other, status=Ticket.Status.OPEN, assignee=agent)
    nameless = factories.conversation(page=page, psid="70041")
    nameless.contact.first_name = nameless.contact.last_name = ""
    nameless.contact.save()
    ticket(41, conversation=nameless)
    stale = factories.conversation(
        page=page, psid="70042", last_user_message_at=now - timedelta(days=3)
    )
    ticket(42, conversation=stale, status=Ticket.Status.OPEN, assignee=agent)
    return made


@pytest.mark.parametrize("queue", ["all_open", "waiting", "mine", "closed"])
def test_the_list_answers_exactly_what_the_validated_schema_gives(api, agent, tickets, queue):
    answer = api.get(f"/api/v1/tickets?queue={queue}&limit=200")

    assert answer.status_code == 200
    expected = _validated(agent, queue)
    assert len(expected) == {"all_open": 7, "waiting": 3, "mine": 3, "closed": 9}[queue]
    assert answer.json() == expected


def test_a_page_of_the_list_keeps_its_cursor_headers(api, agent, tickets):
    in_order = [t["id"] for t in _validated(agent, "all_open")]

    first = api.get("/api/v1/tickets?queue=all_open&limit=2")
    after = first.headers["X-Next-Cursor"]
    second = api.get(f"/api/v1/tickets?queue=all_open&limit=2&after={after}")

    assert [t["id"] for t in first.json()] == in_order[:2]
    assert [t["id"] for t in second.json()] == in_order[2:4]
    assert first.headers["Link"].endswith('rel="next"')


class _Tag(Schema):
    name: str


class _Row(Schema):
    label: str
    tags: list[_Tag]
    best: _Tag | None
    shout: str

    @staticmethod
    def resolve_shout(obj: dict, context: dict) -> str:
        return f"{obj['label'].upper()}{context['mark']}"


def test_a_reader_reads_resolvers_with_their_context_and_nested_schemas():
    row = {"label": "a", "tags": [{"name": "x"}, {"name": "y"}], "best": None, "extra": 1}

    assert render.rows(_Row, [row], {"mark": "!"}) == [
        {"label": "a", "tags": [{"name": "x"}, {"name": "y"}], "best": None, "shout": "A!"}
    ]
    assert render.rows(_Row, [row], {"mark": "!"}) == [
        _Row.model_validate(row, context={"mark": "!"}).model_dump()
    ]


def test_a_schema_with_an_alias_is_refused_rather_than_read_wrong():
    class Aliased(Schema):
        name: str = Field(alias="first_name")

    with pytest.raises(TypeError, match="aliases"):
        render.reader(Aliased)
