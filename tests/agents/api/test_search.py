"""Search through the API (`GET /search`): contacts by name and PSID and message texts,
results grouped by ticket, newest match first, with where the words are; a page at a
time, in a bounded number of queries; only pages the agent sees; bad queries refused in
words. The same answers on SQLite (LIKE) and PostgreSQL (full-text search on a GIN
index, which the query uses: shown by EXPLAIN)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from agents.context_selectors import search_groups_sql, search_terms
from agents.models import Message, Team, Ticket
from agents.services.state import now_ms
from tests.support import factories

pytestmark = pytest.mark.django_db

HIDDEN_PAGE_ID = "1000000000000041"
T0 = now_ms() - 3_600_000


def _search(client: Client, q: str, **params) -> tuple[int, object, object]:
    response = client.get("/api/v1/search", {"q": q, **params})
    return response.status_code, response.json(), response


def _ids(results) -> list[int]:
    return [r["ticket_id"] for r in results]


@pytest.fixture
def tickets(page, agent):
    """Three customers on Acme. Ada asked about a refund twice (her ticket is open with
    Ana); Grace Hopper's ticket waits, she wrote about a refund later than Ada; Linus
    talked about the weather. One of Ada's messages is context from before her ticket
    (the bot's part): it is found under her ticket."""
    ada = factories.ticket(
        page=page, psid="3000000000000101", status=Ticket.Status.OPEN, assignee=agent
    )
    grace = factories.ticket(page=page, psid="3000000000000102")
    linus = factories.ticket(page=page, psid="3000000000000103")
    Ticket.objects.filter(pk=ada.pk).update(handover_timestamp=T0)
    for ticket, first, last in ((grace, "Grace", "Hopper"), (linus, "Linus", "T")):
        contact = ticket.conversation.contact
        contact.first_name, contact.last_name = first, last
        contact.save()
        Ticket.objects.filter(pk=ticket.pk).update(handover_timestamp=T0)
    messages = {
        "ada_context": factories.message(
            conversation=ada.conversation,
            text="refund please, bot",
            timestamp=T0 - 1000,
            author_kind=Message.Author.CUSTOMER,
        ),
        "ada_1": factories.message(
            ticket=ada, text="Where is my REFUND for order 88?", timestamp=T0 + 1000
        ),
        "ada_reply": factories.message(
            ticket=ada,
            text="Your refund is on its way.",
            timestamp=T0 + 2000,
            author_kind=Message.Author.AGENT,
            author=agent,
        ),
        "ada_system": factories.message(
            ticket=ada,
            text="refund system line",
            timestamp=T0 + 2500,
            author_kind=Message.Author.SYSTEM,
        ),
        "grace_1": factories.message(
            ticket=grace, text="I want a refund, the order 88 never came", timestamp=T0 + 3000
        ),
        "linus_1": factories.message(ticket=linus, text="Nice weather today", timestamp=T0 + 4000),
    }
    return {"ada": ada, "grace": grace, "linus": linus, **messages}


def test_results_are_tickets_newest_match_first_with_the_matches_marked(api, tickets, page, agent):
    status, results, response = _search(api, "Refund")

    assert status == 200, results
    assert "X-Next-Cursor" not in response
    ada, grace = tickets["ada"], tickets["grace"]
    assert results == [
        {
            "ticket_id": grace.pk,
            "status": "waiting",
            "assignee": None,
            "conversation_id": grace.conversation_id,
            "page_id": page.page_id,
            "page_name": "Acme",
            "contact": {"psid": "3000000000000102", "name": "Grace Hopper", "profile_pic": ""},
            "contact_highlights": [],
            "psid_highlights": [],
            "opened_at": results[0]["opened_at"],
            "closed_at": None,
            "at": T0 + 3000,
            "match_count": 1,
            "messages": [
                {
                    "id": tickets["grace_1"].pk,
                    "author_kind": "customer",
                    "author": None,
                    "timestamp": T0 + 3000,
                    "snippet": "I want a refund, the order 88 never came",
                    "highlights": [[9, 15]],
                }
            ],
        },
        {
            "ticket_id": ada.pk,
            "status": "open",
            "assignee": {"id": agent.pk, "username": "ana", "name": "ana"},
            "conversation_id": ada.conversation_id,
            "page_id": page.page_id,
            "page_name": "Acme",
            "contact": {"psid": "3000000000000101", "name": "Ada Lovelace", "profile_pic": ""},
            "contact_highlights": [],
            "psid_highlights": [],
            "opened_at": results[1]["opened_at"],
            "closed_at": None,
            "at": T0 + 2000,
            # Three messages (the system line is not searched), the context one included.
            "match_count": 3,
            "messages": [
                {
                    "id": tickets["ada_reply"].pk,
                    "author_kind": "agent",
                    "author": {"id": agent.pk, "username": "ana", "name": "ana"},
                    "timestamp": T0 + 2000,
                    "snippet": "Your refund is on its way.",
                    "highlights": [[5, 11]],
                },
                {
                    "id": tickets["ada_1"].pk,
                    "author_kind": "customer",
                    "author": None,
                    "timestamp": T0 + 1000,
                    "snippet": "Where is my REFUND for order 88?",
                    "highlights": [[12, 18]],
                },
                {
                    "id": tickets["ada_context"].pk,
                    "author_kind": "customer",
                    "author": None,
                    "timestamp": T0 - 1000,
                    "snippet": "refund please, bot",
                    "highlights": [[0, 6]],
                },
            ],
        },
    ]


def test_every_word_must_match_and_the_last_one_is_a_prefix(api, tickets):
    status, results, _ = _search(api, "order 88")
    assert status == 200
    assert _ids(results) == [tickets["grace"].pk, tickets["ada"].pk]
    assert [m["highlights"] for r in results for m in r["messages"]] == [
        [[21, 26], [27, 29]],
        [[23, 28], [29, 31]],
    ]
    # Both words, in any order; "refu" is the start of "refund".
    assert _ids(_search(api, "88 refu")[1]) == [tickets["grace"].pk, tickets["ada"].pk]
    assert _search(api, "weather refund")[1] == []


def test_contacts_are_found_by_name_and_psid(api, tickets):
    status, results, _ = _search(api, "grace hop")
    assert status == 200
    [grace] = results
    assert (grace["ticket_id"], grace["contact_highlights"], grace["match_count"]) == (
        tickets["grace"].pk,
        [[0, 5], [6, 9]],
        0,
    )
    assert (grace["messages"], grace["at"]) == ([], T0)
    [by_psid] = _search(api, "0000000000103")[1]
    assert (by_psid["ticket_id"], by_psid["psid_highlights"]) == (tickets["linus"].pk, [[3, 16]])


def test_a_customer_with_several_tickets_is_found_under_each(api, tickets, page):
    ada = tickets["ada"]
    Ticket.objects.filter(pk=ada.pk).update(status=Ticket.Status.CLOSED)
    newer = factories.ticket(conversation=ada.conversation, handover_timestamp=T0 + 5000)
    factories.message(ticket=newer, text="refund again?", timestamp=T0 + 6000)
    results = _search(api, "ada lovelace")[1]
    assert _ids(results) == [newer.pk, ada.pk]
    # By message: each ticket with its own; context goes to the latest ticket.
    by_text = {r["ticket_id"]: [m["id"] for m in r["messages"]] for r in _search(api, "refund")[1]}
    assert by_text[ada.pk] == [tickets["ada_reply"].pk, tickets["ada_1"].pk]
    assert by_text[newer.pk][-1] == tickets["ada_context"].pk


def test_only_the_newest_three_messages_of_a_ticket_are_shown(api, tickets):
    for n in range(4):
        factories.message(ticket=tickets["linus"], text=f"weather {n}", timestamp=T0 + 5000 + n)
    [linus] = _search(api, "weather")[1]
    assert linus["match_count"] == 5
    assert [m["snippet"] for m in linus["messages"]] == ["weather 3", "weather 2", "weather 1"]


def test_a_long_message_is_cut_around_its_first_match(api, page):
    ticket = factories.ticket(page=page, psid="3000000000000555")
    text = "word " * 60 + "the parcel arrived broken" + " more" * 60
    factories.message(ticket=ticket, text=text)
    [result] = _search(api, "parcel")[1]
    [message] = result["messages"]
    snippet = message["snippet"]
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) == 162
    [[start, end]] = message["highlights"]
    assert snippet[start:end] == "parcel"


def test_words_inside_urls_addresses_and_markup_are_found(api, page):
    # PostgreSQL's parser would read a URL, an e-mail address or a path as one token and
    # drop what looks like an HTML tag: the index reads the words between the punctuation.
    ticket = factories.ticket(page=page, psid="3000000000000556")
    url = factories.message(ticket=ticket, text="Track it: https://post.example/t/4417?ref=x")
    mail = factories.message(ticket=ticket, text="write to ana@shop.example please")
    tag = factories.message(ticket=ticket, text="<b>urgent</b> box_damaged")
    for q, message, marked in (
        ("4417", url, "4417"),
        ("post example", url, "post"),
        ("shop", mail, "shop"),
        ("urgent", tag, "urgent"),
        ("damaged", tag, "damaged"),
    ):
        [result] = _search(api, q)[1]
        [found] = result["messages"]
        assert found["id"] == message.pk, q
        start, end = found["highlights"][0]
        assert found["snippet"][start:end] == marked


# --- pages of results -------------------------------------------------------------------


def test_results_come_a_page_at_a_time(api, page):
    made = []
    for n in range(5):
        ticket = factories.ticket(page=page, psid=f"30000000000002{n:02d}")
        factories.message(ticket=ticket, text=f"invoice {n}", timestamp=T0 + n)
        made.append(ticket.pk)
    seen = []
    status, first, response = _search(api, "invoice", limit=2)
    assert status == 200
    seen += _ids(first)
    while "X-Next-Cursor" in response:
        cursor = response["X-Next-Cursor"]
        assert response["Link"].startswith("</api/v1/search?")
        status, more, response = _search(api, "invoice", limit=2, after=cursor)
        assert status == 200
        seen += _ids(more)
    assert seen == made[::-1]


def test_a_cursor_of_another_list_is_refused(api, tickets):
    response = api.get("/api/v1/tickets", {"limit": 1, "queue": "all_open"})
    cursor = response["X-Next-Cursor"]
    status, body, _ = _search(api, "refund", after=cursor)
    assert status == 400
    assert body["detail"].startswith("`after` is not a cursor of this list")


def test_a_page_of_results_costs_a_bounded_number_of_queries(
    api, page, django_assert_max_num_queries
):
    for n in range(30):
        ticket = factories.ticket(page=page, psid=f"30000000000003{n:02d}")
        for k in range(4):
            factories.message(ticket=ticket, text=f"damaged box {n} {k}", timestamp=T0 + n * 10 + k)
        factories.message(conversation=ticket.conversation, text="damaged?", timestamp=T0 - n)
    # Authentication (2), visibility (3 for an agent on no team), groups, tickets, messages.
    with django_assert_max_num_queries(9):
        status, results, _ = _search(api, "damaged", limit=20)
    assert status == 200
    assert len(results) == 20
    assert all(len(r["messages"]) == 3 for r in results)


# --- bad queries ------------------------------------------------------------------------


def test_an_empty_query_finds_nothing_without_asking(api, tickets, django_assert_num_queries):
    with django_assert_num_queries(2):  # authentication only
        assert _search(api, "   ")[:2] == (200, [])


@pytest.mark.parametrize(
    ("q", "detail"),
    [
        ("a", "Type at least 2 letters or digits to search."),
        ("?!", "Type at least 2 letters or digits to search."),
        ("x" * 201, "The search is too long: 201 characters, at most 200."),
        ("a b c d e f g h i", "Search for at most 8 words at a time."),
    ],
)
def test_a_bad_query_is_refused_in_words(api, tickets, q, detail):
    assert _search(api, q)[:2] == (400, {"detail": detail})


def test_words_are_letters_and_digits_only(tickets):
    assert search_terms("  it's REFUND-88 & (refund) 'or' :* ") == ["it", "s", "refund", "88", "or"]


# --- visibility -------------------------------------------------------------------------


def test_another_teams_contacts_and_messages_never_appear(api, api2, agent, agent2, page):
    hidden_page = factories.page(page_id=HIDDEN_PAGE_ID, name="Hidden", access_token="t")
    billing, sales = Team.objects.create(name="billing"), Team.objects.create(name="sales")
    billing.pages.add(hidden_page)
    billing.members.add(agent2)
    sales.pages.add(page)
    sales.members.add(agent)
    hidden = factories.ticket(page=hidden_page, psid="3000000000000991")
    factories.message(ticket=hidden, text="zebra secret refund")
    factories.message(conversation=hidden.conversation, text="zebra context")
    mine = factories.ticket(page=page, psid="3000000000000992")
    factories.message(ticket=mine, text="zebra refund")

    for q in ("zebra", "zebra secret", "3000000000000991", "Hidden", "refund"):
        status, results, response = _search(api, q)
        assert status == 200
        assert hidden.pk not in _ids(results)
        assert "secret" not in response.content.decode()
        assert "3000000000000991" not in response.content.decode()
    assert _ids(_search(api, "zebra")[1]) == [mine.pk]
    assert _ids(_search(api2, "zebra secret")[1]) == [hidden.pk]


# --- PostgreSQL: the index --------------------------------------------------------------


@pytest.fixture
def postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the full-text index is PostgreSQL's; SQLite searches with LIKE")


def test_the_full_text_index_exists(postgresql_only):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'agents_message_text_fts'"
        )
        [(definition,)] = cursor.fetchall()
    assert "USING gin (to_tsvector('simple'::regconfig, translate(text, " in definition


def test_the_search_uses_the_full_text_index(postgresql_only, page, agent):
    # Many conversations of the page, few messages that match, and the planner's
    # statistics up to date: the matches are found through the index, not by reading
    # every message of the page (sequential scans off, so that this small table's
    # cheapest plan is not a scan of it all).
    messages = []
    for n in range(20):
        ticket = factories.ticket(page=page, psid=f"30000000000004{n:02d}")
        messages += [
            Message(
                conversation_id=ticket.conversation_id,
                ticket=ticket,
                direction=Message.Direction.INBOUND,
                author_kind=Message.Author.CUSTOMER,
                text="about shipping" if k == 0 and n % 4 == 0 else f"hello number {k}",
                timestamp=T0 + k,
            )
            for k in range(50)
        ]
    Message.objects.bulk_create(messages)
    sql, params = search_groups_sql(
        terms=search_terms("shipp"), visible={page.pk}, after=None, limit=21
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE agents_message")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(sql, params)
        assert len(cursor.fetchall()) == 5
    assert "Bitmap Index Scan on agents_message_text_fts" in plan, plan
