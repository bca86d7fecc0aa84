"""What applying one event costs in SQL statements, by kind, pinned exactly (issue 12).

Counted as a worker runs them: no test transaction around them (`transaction=True`),
so each event's own transaction is a real one and what runs after its commit (the live
broadcasts) is counted too. A known customer, their profile fresh: the steady state.
The exactly-once bookkeeping every event pays, whatever it is: the delivery's claim,
which reads it too (1), the pages (1), the event's key and outcome (2), the delivery's
status (1).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from agents import realtime
from agents.models import ControlState, Conversation, Message, Ticket, TicketEvent
from helpdesk.clock import now_ms
from tests.support import factories, payloads
from webhooks import services
from webhooks.events import timestamp_to_datetime
from webhooks.models import Page, WebhookDelivery, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

BOOKKEEPING = 5
# The event's transaction: its BEGIN (BEGIN IMMEDIATE on SQLite) and COMMIT, which
# Django runs and counts on both databases.
TRANSACTION = 2


@pytest.fixture
def later() -> Callable[[], int]:
    """Event timestamps after the fixtures' clocks (the conversation's last message was
    "now"), so that a message moves them forward as live traffic does."""
    counter = itertools.count(now_ms() + 1_000, 10)
    return lambda: next(counter)


@pytest.fixture
def page_events(page: Page) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The live events sent to the page's group (what the agents' sockets get)."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(realtime.page_group(page.pk), channel)

    async def drain() -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(await asyncio.wait_for(layer.receive(channel), timeout=0.05))
            except TimeoutError:
                return out

    yield async_to_sync(drain)


def _stored(event: dict[str, Any], *, channel: str, page_id: str = payloads.PAGE_ID) -> int:
    """A delivery stored as intake stores it, not enqueued (its processing is counted)."""
    body = payloads.body_bytes(payloads.delivery(event, channel=channel, page_id=page_id))
    return WebhookDelivery.objects.create(digest=hashlib.sha256(body).hexdigest(), body=body).pk


def _process(delivery_id: int, statements: int, assert_num_queries: Any) -> None:
    with assert_num_queries(statements):
        assert services.delivery_process(delivery_id=delivery_id) is True
    assert WebhookDelivery.objects.get(pk=delivery_id).status == "processed"


def test_a_standby_message_costs_5_statements_beyond_the_bookkeeping(
    page, later, page_events, django_assert_num_queries
):
    conversation = factories.conversation(page=page)
    delivery_id = _stored(payloads.user_message("hello", ts=later()), channel="standby")
    page_events()  # the page's own events so far
    # The conversation found and locked (1); its mid unseen, the message stored (2);
    # its two clocks, moved in one UPDATE (1); the page's triggers (1).
    _process(delivery_id, BOOKKEEPING + TRANSACTION + 5, django_assert_num_queries)
    message = Message.objects.get()
    assert (message.text, message.channel, message.ticket_id) == ("hello", "standby", None)
    conversation.refresh_from_db()
    assert conversation.last_user_message_at == conversation.last_message_at
    assert conversation.last_message_at.timestamp() * 1000 == message.timestamp
    assert [(e["event"], e["message_id"]) for e in page_events()] == [
        ("message.created", message.pk)
    ]


def test_a_message_with_an_open_ticket_costs_5_statements_beyond_the_bookkeeping(
    page, later, page_events, django_assert_num_queries
):
    ticket = factories.ticket(page=page)
    delivery_id = _stored(payloads.user_message("my order", ts=later()), channel="messaging")
    page_events()
    # The conversation (1); its open ticket (1); the mid, the message (2); the clocks (1).
    _process(delivery_id, BOOKKEEPING + TRANSACTION + 5, django_assert_num_queries)
    assert list(Message.objects.values_list("text", "ticket")) == [("my order", ticket.pk)]
    assert [e["event"] for e in page_events()] == ["message.created", "ticket.updated"]


def test_a_pass_to_us_that_opens_a_ticket_costs_10_statements_beyond_the_bookkeeping(
    page, later, page_events, django_assert_num_queries
):
    factories.conversation(page=page)
    delivery_id = _stored(payloads.pass_control(ts=later()), channel="messaging")
    page_events()
    # The conversation (1); no unclosed ticket, none closed lately (2); the new state
    # and its transition (2); the ticket and its "opened" event (2); the page's routing
    # team, here none (1); later messages join the ticket (1); the system line (1).
    _process(delivery_id, BOOKKEEPING + TRANSACTION + 10, django_assert_num_queries)
    assert Conversation.objects.get().control_state == ControlState.AGENT
    ticket = Ticket.objects.get()
    assert list(TicketEvent.objects.values_list("kind", flat=True)) == ["opened"]
    assert list(Message.objects.values_list("author_kind", "ticket")) == [("system", ticket.pk)]
    assert sorted(e["event"] for e in page_events()) == [
        "conversation.updated",
        "message.created",
        "ticket.updated",
    ]


def test_a_take_by_the_bot_costs_7_statements_beyond_the_bookkeeping(
    page, later, page_events, django_assert_num_queries
):
    ticket = factories.ticket(page=page)
    delivery_id = _stored(payloads.take_control(ts=later()), channel="messaging")
    page_events()
    # The conversation (1); its open ticket (1); the new state and its transition (2);
    # the ticket flagged and its event (2); the system line (1).
    _process(delivery_id, BOOKKEEPING + TRANSACTION + 7, django_assert_num_queries)
    assert Conversation.objects.get().control_state == ControlState.TAKEN
    ticket.refresh_from_db()
    assert ticket.flagged is True
    assert list(TicketEvent.objects.values_list("kind", flat=True)) == ["control_lost"]
    assert sorted(e["event"] for e in page_events()) == [
        "conversation.updated",
        "message.created",
        "ticket.updated",
    ]


def test_an_echo_of_the_bot_costs_4_statements_beyond_the_bookkeeping(
    page, later, page_events, django_assert_num_queries
):
    factories.conversation(page=page)
    delivery_id = _stored(payloads.echo("hi from the bot", ts=later()), channel="standby")
    page_events()
    # The conversation (1); the mid, the message (2); its clock (1).
    _process(delivery_id, BOOKKEEPING + TRANSACTION + 4, django_assert_num_queries)
    assert list(Message.objects.values_list("author_kind", "text")) == [("bot", "hi from the bot")]
    assert [e["event"] for e in page_events()] == ["message.created"]


def test_an_event_for_an_unknown_page_costs_the_bookkeeping_only(
    page, later, django_assert_num_queries
):
    delivery_id = _stored(
        payloads.user_message("hello", ts=later()), channel="standby", page_id="9000000000000009"
    )
    _process(delivery_id, BOOKKEEPING + TRANSACTION, django_assert_num_queries)
    assert WebhookEvent.objects.get().note == "unknown page"
    assert not Message.objects.exists()


def test_a_redelivered_event_costs_its_rolled_back_claim_and_a_look_and_changes_nothing(
    page, later, page_events, django_assert_num_queries
):
    """Exactly once: the second delivery of an event (another delivery, the same key)
    fails its INSERT, rolls back, and finds the key applied."""
    factories.conversation(page=page)
    event = payloads.user_message("hello", ts=later())
    _process(
        _stored(event, channel="standby"), BOOKKEEPING + TRANSACTION + 5, django_assert_num_queries
    )
    # Meta redelivers an event in a new body (the same body would be the same row).
    body = payloads.body_bytes({**payloads.delivery(event, channel="standby"), "redelivered": True})
    again = WebhookDelivery.objects.create(digest=hashlib.sha256(body).hexdigest(), body=body).pk
    page_events()
    # The bookkeeping but the outcome (4), the claim's transaction again and the key
    # looked up, locked (1 + TRANSACTION).
    _process(again, BOOKKEEPING - 1 + 1 + 2 * TRANSACTION, django_assert_num_queries)
    assert Message.objects.count() == 1
    assert WebhookEvent.objects.count() == 1
    assert page_events() == []


# --- the deliveries of one task, applied as a group (deliveries_process) ---------------

# The group's claim, which reads it (1), the pages (1), its transaction (2), its
# conversations locked in id order (1), which of its mids are stored (1), the keys
# recorded before (1), the new keys and outcomes in one INSERT (1), the deliveries'
# status, in the same transaction (1).
GROUP_BOOKKEEPING = 9


def test_ten_customers_standby_messages_cost_4_statements_in_all_as_a_group(
    page, later, page_events, django_assert_num_queries
):
    psids = [f"31000000000001{n:02d}" for n in range(10)]
    for psid in psids:
        factories.conversation(page=page, psid=psid)
    stamps = [later() for _ in psids]
    ids = [
        _stored(payloads.user_message(f"hello {n}", ts=stamp, psid=psid), channel="standby")
        for n, (psid, stamp) in enumerate(zip(psids, stamps, strict=True))
    ]
    again = later()
    ids.append(_stored(payloads.user_message("again", ts=again, psid=psids[0]), channel="standby"))
    page_events()
    # The conversations and the mids come with the group. The page's triggers, read
    # once for the group (1). A second message of a customer in the group reads its
    # conversation again (1): an event before it may have changed it. The 11 messages
    # in one INSERT (1), the 10 conversations' clocks in one UPDATE (1).
    with django_assert_num_queries(GROUP_BOOKKEEPING + 1 + 1 + 2) as captured:
        assert services.deliveries_process(delivery_ids=ids) == 11
    # The deliveries are finished in the transaction that applied their events.
    sqls = [query["sql"] for query in captured.captured_queries]
    finish = [
        n for n, sql in enumerate(sqls) if sql.startswith('UPDATE "webhooks_webhookdelivery"')
    ]
    assert len(finish) == 1
    assert sqls.index("COMMIT") == len(sqls) - 1 > finish[0]
    assert list(WebhookDelivery.objects.values_list("status", flat=True).distinct()) == [
        "processed"
    ]
    assert WebhookEvent.objects.filter(outcome="applied").count() == 11
    messages = list(Message.objects.order_by("id").values_list("pk", "text"))
    assert [text for _, text in messages] == [f"hello {n}" for n in range(10)] + ["again"]
    assert [(e["event"], e["message_id"]) for e in page_events()] == [
        ("message.created", pk) for pk, _ in messages
    ]
    clocks = {
        c.contact.psid: (c.last_message_at, c.last_user_message_at)
        for c in Conversation.objects.select_related("contact")
    }
    assert clocks == {
        psid: (timestamp_to_datetime(stamp), timestamp_to_datetime(stamp))
        for psid, stamp in zip(psids, [again, *stamps[1:]], strict=True)
    }


def test_a_message_whose_mid_is_stored_changes_nothing_in_a_group(
    page, later, django_assert_num_queries
):
    conversation = factories.conversation(page=page)
    first = payloads.user_message("once", ts=later(), mid="m_once")
    services.deliveries_process(delivery_ids=[_stored(first, channel="standby")])
    # The same mid in another event (its key differs: a postback that repeats it)
    again = _stored(payloads.postback("once", ts=later(), mid="m_once"), channel="standby")
    with django_assert_num_queries(GROUP_BOOKKEEPING):
        services.deliveries_process(delivery_ids=[again])
    assert list(Message.objects.values_list("mid", "conversation")) == [("m_once", conversation.pk)]
    assert WebhookEvent.objects.get(kind="postback").note == "duplicate mid"
