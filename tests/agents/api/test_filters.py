"""The ticket list's filters through the agent API (`GET /tickets` and `GET /queues`):
page, tag, assignee, needs reply, each alone, together and with the queues; paging by
cursor within a filter; bad values answered 400 in words; and a query count that does
not grow with the number of tickets."""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import Message, Tag, Team, Ticket, TicketTag
from agents.services.state import now_ms
from tests.support import factories, payloads

pytestmark = pytest.mark.django_db

SHIPPING_ID = "1000000000000021"


@pytest.fixture
def world(page, agent, agent2) -> dict[str, Any]:
    """Tickets on two pages (no team: every agent sees both):

    waiting  Acme      refund          the customer wrote last
    mine     Acme                      ana answered last
    bos      Shipping  refund, VIP     the customer wrote last (a system line after it)
    closed   Acme      VIP (inactive)  the customer wrote last; ana had it
    quiet    Shipping                  no message at all
    early    Acme                      ana; the customer's message is older than the reply
    """
    shipping = factories.page(page_id=SHIPPING_ID, name="Shipping")
    refund = Tag.objects.create(name="refund", colour=Tag.Colour.RED)
    vip = Tag.objects.create(name="VIP", colour=Tag.Colour.PURPLE, active=False)
    now = now_ms()

    def make(name, on, status=Ticket.Status.WAITING, assignee=None, tags=(), said=()):
        ticket = factories.ticket(
            page=on, psid=f"30000000009{len(made):04d}", status=status, assignee=assignee
        )
        for tag in tags:
            TicketTag.objects.create(ticket=ticket, tag=tag)
        for offset, author in said:
            factories.message(ticket=ticket, author_kind=author, timestamp=now + offset)
        made[name] = ticket
        return ticket

    made: dict[str, Ticket] = {}
    customer, agent_, system = Message.Author.CUSTOMER, Message.Author.AGENT, Message.Author.SYSTEM
    make("waiting", page, tags=[refund], said=[(0, customer)])
    make("mine", page, Ticket.Status.OPEN, agent, said=[(0, customer), (10, agent_)])
    make("bos", shipping, Ticket.Status.OPEN, agent2, [refund, vip], [(0, customer), (5, system)])
    make("closed", page, Ticket.Status.CLOSED, agent, [vip], [(0, agent_), (9, customer)])
    make("quiet", shipping)
    # Written in this order, but the customer's message is the older one.
    make("early", page, Ticket.Status.OPEN, agent, said=[(20, agent_), (15, customer)])
    return made


def _names(world, api, **params) -> list[str]:
    response = api.get("/api/v1/tickets", params)
    assert response.status_code == 200, response.content
    by_id = {t.pk: name for name, t in world.items()}
    return [by_id[row["id"]] for row in response.json()]


def test_each_filter_alone(world, api, agent2):
    everything = {"queue": "all_open"}
    assert _names(world, api, **everything) == ["waiting", "mine", "bos", "quiet", "early"]
    assert _names(world, api, **everything, page=SHIPPING_ID) == ["bos", "quiet"]
    assert _names(world, api, **everything, tag="refund") == ["waiting", "bos"]
    assert _names(world, api, **everything, tag="REFUND") == ["waiting", "bos"]
    assert _names(world, api, **everything, tag="vip") == ["bos"]  # inactive: still there
    assert _names(world, api, **everything, assignee="me") == ["mine", "early"]
    assert _names(world, api, **everything, assignee="none") == ["waiting", "quiet"]
    assert _names(world, api, **everything, assignee=str(agent2.pk)) == ["bos"]
    assert _names(world, api, **everything, needs_reply="1") == ["waiting", "bos"]
    assert _names(world, api, **everything, needs_reply="true") == ["waiting", "bos"]
    assert _names(world, api, **everything, needs_reply="0") == _names(world, api, **everything)
    # Without a queue: every state, closed too.
    assert _names(world, api, tag="vip") == ["bos", "closed"]
    assert _names(world, api, needs_reply="1") == ["waiting", "bos", "closed"]


def test_filters_combine_with_each_other_and_with_the_queues_and_status(world, api):
    assert _names(world, api, queue="all_open", tag="refund", needs_reply="1") == [
        "waiting",
        "bos",
    ]
    assert _names(world, api, queue="all_open", tag="refund", page=SHIPPING_ID) == ["bos"]
    assert _names(world, api, queue="waiting", tag="refund", assignee="none") == ["waiting"]
    assert _names(world, api, queue="waiting", assignee="me") == []
    assert _names(world, api, queue="mine", needs_reply="1") == []
    assert _names(world, api, queue="mine", page=payloads.PAGE_ID) == ["mine", "early"]
    assert _names(world, api, queue="closed", assignee="me", tag="VIP", needs_reply="1") == [
        "closed"
    ]
    assert _names(world, api, status="open", assignee="me") == ["mine", "early"]
    assert _names(world, api, status="open", needs_reply="1") == ["bos"]
    assert _names(world, api, mine=True, tag="vip") == ["closed"]


def test_needs_reply_is_the_conversations_last_message_from_the_customer(world, api, agent):
    """What the list says of each ticket is what the filter selects: by event time (not
    the order rows were written), system lines aside, and a reply ends it."""
    rows = {t["id"]: t["needs_reply"] for t in api.get("/api/v1/tickets").json()}
    assert {name: rows[t.pk] for name, t in world.items()} == {
        "waiting": True,
        "mine": False,
        "bos": True,
        "closed": True,
        "quiet": False,
        "early": False,
    }
    # The customer writes again in "mine": it needs a reply; the bot answering in
    # "waiting" (an echo) means it does not.
    factories.message(ticket=world["mine"], author_kind=Message.Author.CUSTOMER)
    factories.message(ticket=world["waiting"], author_kind=Message.Author.BOT)
    assert _names(world, api, queue="all_open", needs_reply="1") == ["mine", "bos"]
    assert api.get(f"/api/v1/tickets/{world['mine'].pk}").json()["needs_reply"] is True


def test_the_queues_count_what_matches_the_filters(world, api):
    assert api.get("/api/v1/queues").json() == {
        "waiting": 2,
        "mine": 2,
        "all_open": 5,
        "closed": 1,
    }
    assert api.get("/api/v1/queues", {"tag": "vip"}).json() == {
        "waiting": 0,
        "mine": 0,
        "all_open": 1,
        "closed": 1,
    }
    assert api.get("/api/v1/queues", {"needs_reply": "1", "assignee": "me"}).json() == {
        "waiting": 0,
        "mine": 0,
        "all_open": 0,
        "closed": 1,
    }
    assert api.get("/api/v1/queues", {"tag": "nope"}).status_code == 400


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"tag": "nope"}, "`tag`: there is no tag named 'nope'."),
        ({"page": "123"}, "`page`: no page with id '123' that you can see."),
        (
            {"assignee": "bob"},
            "`assignee` is `me`, `none` (nobody has the ticket) or an agent's id, not 'bob'.",
        ),
        ({"assignee": "999999"}, "`assignee`: no agent with id 999999."),
        ({"needs_reply": "maybe"}, "`needs_reply` is 1 or 0 (true or false), not 'maybe'."),
    ],
)
def test_bad_filter_values_are_400_in_words(world, api, params, detail):
    response = api.get("/api/v1/tickets", {"queue": "all_open", **params})
    assert (response.status_code, response.json()) == (400, {"detail": detail})


def test_a_page_of_another_team_is_a_bad_value(world, api, api2, agent2):
    team = Team.objects.create(name="shipping")
    team.pages.add(world["bos"].conversation.page)
    team.members.add(agent2)
    response = api.get("/api/v1/tickets", {"page": SHIPPING_ID})
    assert response.status_code == 400
    assert response.json()["detail"] == f"`page`: no page with id '{SHIPPING_ID}' that you can see."
    assert [row["id"] for row in api2.get("/api/v1/tickets", {"page": SHIPPING_ID}).json()] == [
        world["bos"].pk,
        world["quiet"].pk,
    ]


def test_paging_by_cursor_within_a_filter_skips_and_repeats_nothing(page, api):
    refund = Tag.objects.create(name="refund")
    tagged = []
    for n in range(12):
        ticket = factories.ticket(page=page, psid=f"3300000000{n:04d}")
        if n % 2:
            TicketTag.objects.create(ticket=ticket, tag=refund)
            tagged.append(ticket.pk)
    seen: list[int] = []
    params: dict[str, Any] = {"queue": "all_open", "tag": "refund", "limit": 4}
    while True:
        response = api.get("/api/v1/tickets", params)
        seen += [row["id"] for row in response.json()]
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            break
        assert "tag=refund" in response.headers["Link"]
        params["after"] = cursor
    assert seen == tagged


def test_a_filtered_list_costs_the_same_queries_for_1_or_20_tickets(
    page, api, agent, django_assert_num_queries
):
    # Bearer auth (2) + visible pages (1) + the tag's and the agent's lookups (2) + the
    # list (1) + its tickets' tags (1) = 7; the counts: 6 (no tags to fetch).
    refund = Tag.objects.create(name="refund")
    vip = Tag.objects.create(name="vip")

    def make(n: int) -> None:
        ticket = factories.ticket(
            page=page, psid=f"3400000000{n:04d}", status=Ticket.Status.OPEN, assignee=agent
        )
        TicketTag.objects.create(ticket=ticket, tag=refund)
        TicketTag.objects.create(ticket=ticket, tag=vip)
        factories.message(ticket=ticket, text=f"help {n}")

    params = {
        "queue": "all_open",
        "tag": "refund",
        "assignee": str(agent.pk),
        "needs_reply": "1",
    }
    make(0)
    with django_assert_num_queries(7):
        assert len(api.get("/api/v1/tickets", params).json()) == 1
    with django_assert_num_queries(6):
        assert api.get("/api/v1/queues", params).json()["all_open"] == 1
    for n in range(1, 20):
        make(n)
    with django_assert_num_queries(7):
        listed = api.get("/api/v1/tickets", params).json()
    assert [len(t["tags"]) for t in listed] == [2] * 20
    with django_assert_num_queries(6):
        assert api.get("/api/v1/queues", params).json()["all_open"] == 20
