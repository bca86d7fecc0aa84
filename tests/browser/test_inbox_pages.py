"""The inbox reads a page at a time and patches what live events name, in a real browser
(Debian's Chromium) against the real stack. Each test says which API requests the page
made, and which it did not."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.support import fake_of, login
from tests.browser.test_inbox import FAKE_NOTIFICATIONS
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine
QUIET = 0.6  # s: longer than the page's burst window (100 ms) and a few fetches

LONG = """
from datetime import UTC, datetime
from django.contrib.auth.models import User
from agents.models import Contact, Message, TicketEvent
from agents.services.state import now_ms
from tests.support import factories
from webhooks.models import Page

ana = User.objects.get(username="ana")
ticket = factories.ticket(page=Page.objects.get(), psid="{psid}")
Contact.objects.filter(psid="{psid}").update(first_name="Paged", last_name="Customer")
handover = ticket.handover_timestamp
rows = [
    Message(
        conversation_id=ticket.conversation_id,
        direction="out" if n % 2 else "in",
        author_kind="bot" if n % 2 else "customer",
        status="sent" if n % 2 else "received",
        text=f"context {{n}}",
        timestamp=handover - 60_000 + n * 100,
    )
    for n in range({context})
]
rows.append(Message(
    conversation_id=ticket.conversation_id, ticket=ticket, direction="in",
    author_kind="system", text="Control passed to the helpdesk.", timestamp=handover,
))
rows += [
    Message(
        conversation_id=ticket.conversation_id,
        ticket=ticket,
        direction="out" if n % 2 else "in",
        author_kind="agent" if n % 2 else "customer",
        author=ana if n % 2 else None,
        status="read" if n % 2 else "received",
        text=f"ticket message {{n}}",
        timestamp=handover + 1000 + n * 1000,
    )
    for n in range({messages})
]
Message.objects.bulk_create(rows)
# ana claimed it between the 6th and the 7th message (a ticket event in the timeline)
claim = TicketEvent.objects.create(ticket=ticket, kind="claimed", actor=ana)
claimed_at = datetime.fromtimestamp((handover + 6500) / 1000, tz=UTC)
TicketEvent.objects.filter(pk=claim.pk).update(created_at=claimed_at)
"""

CLOSED = """
from datetime import timedelta
from django.utils import timezone
from agents.models import Contact, Ticket
from tests.support import factories
from webhooks.models import Page

now = timezone.now()
for n in range({count}):
    psid = "34000000000000" + format(n, "02d")
    factories.ticket(
        page=Page.objects.get(), psid=psid, status=Ticket.Status.CLOSED,
        closed_at=now - timedelta(minutes=n),
    )
    Contact.objects.filter(psid=psid).update(first_name="Closed", last_name=format(n, "02d"))
"""


def _api_calls(page: Any) -> list[str]:
    """Every API request the page makes from now on, as `path?query`."""
    calls: list[str] = []

    def record(request: Any) -> None:
        url = urlsplit(request.url)
        if url.path.startswith("/api/v1/"):
            calls.append(f"{request.method} {url.path}" + (f"?{url.query}" if url.query else ""))

    page.on("request", record)
    return calls


def _in_flight(context: Any) -> set[Any]:
    """The API requests of the context's pages sent and not answered yet."""
    requests: set[Any] = set()

    def sent(request: Any) -> None:
        if urlsplit(request.url).path.startswith("/api/v1/"):
            requests.add(request)

    def answered(request: Any) -> None:
        requests.discard(request)

    context.on("request", sent)
    context.on("requestfinished", answered)
    context.on("requestfailed", answered)
    return requests


def _quiet(calls: list[str]) -> list[str]:
    """Wait until the page has made no API request for QUIET seconds; return the calls."""
    seen = [-1]

    def settled() -> bool:
        if len(calls) == seen[0]:
            return True
        seen[0] = len(calls)
        return False

    eventually(settled, interval=QUIET, what="the page to stop making requests")
    return list(calls)


def _handover(stack: Stack, clock: Clock, *, psid: str, text: str, name: str) -> None:
    fake_of(stack).profiles[psid] = {"first_name": name, "last_name": "Live", "profile_pic": ""}
    stack.post_webhook(payloads.user_message(text, ts=clock(), psid=psid), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid))


def _ticket_id(stack: Stack, psid: str) -> int:
    def find() -> int | None:
        listed = requests.get(
            f"{stack.base_url}/api/v1/tickets",
            params={"queue": "all_open", "limit": 200},
            headers={"Authorization": f"Bearer {stack.tokens['ana']}"},
            timeout=5,
        ).json()
        return next((t["id"] for t in listed if t["contact"]["psid"] == psid), None)

    return eventually(find, what=f"the ticket of {psid}")


def test_scrolling_to_the_top_loads_older_messages_in_place(stack, context):
    stack.manage("shell", "-c", LONG.format(psid="3400000000000100", context=60, messages=60))
    page = login(context, "ana")
    calls = _api_calls(page)
    page.locator(".ticket-row", has_text="Paged Customer").click()
    timeline = page.locator("#timeline")

    # the newest page: the ticket's last 50 messages, and the way to older ones
    expect(timeline.locator(".msg")).to_have_count(50)
    expect(timeline.locator(".msg .text").first).to_have_text("ticket message 10")
    expect(timeline.locator(".timeline-older")).to_have_text("Earlier messages")
    expect(timeline.locator(".msg-event")).to_have_count(0)  # the claim is further back
    first = [c for c in _quiet(calls) if "/messages" in c]
    ticket_id = int(re.search(r"/tickets/(\d+)/messages", first[0]).group(1))
    assert set(first) == {f"GET /api/v1/tickets/{ticket_id}/messages"}
    del calls[:]

    # to the top: the page before comes in above, and what the agent sees does not move
    oldest = timeline.locator(".msg").first
    top_before = timeline.evaluate(
        "(list) => { list.scrollTop = 0;"
        " return list.querySelector('.msg').getBoundingClientRect().top; }"
    )
    first_of_all = timeline.locator(".msg .text", has_text=re.compile(r"^ticket message 0$"))
    expect(first_of_all).to_have_count(1)
    expect(oldest).to_have_text(re.compile("context 21"))  # the group holds the first now
    moved = timeline.evaluate(
        "(list) => [...list.querySelectorAll('.msg')]"
        ".find((n) => n.textContent.includes('ticket message 10')).getBoundingClientRect().top"
    )
    assert abs(moved - top_before) <= 1, (top_before, moved)

    # the bot-side history is one folded group, cut where the loaded pages start; the
    # handover line and the claim have their places among the messages
    groups = timeline.locator(".context-group summary")
    expect(groups).to_have_text(["With the bot · 39 messages (more above)"])
    order = timeline.evaluate(
        "(list) => [...list.children].slice(0, 11).map((n) => n.className + ':' +"
        " (n.querySelector('.text, .system-text, summary') || n).textContent.trim())"
    )
    assert order == [
        "timeline-older:Earlier messages",
        "day-separator:Today",
        "context-group:With the bot · 39 messages (more above)",
        "msg msg-system:Control passed to the helpdesk.",
        "msg msg-customer msg-in:ticket message 0",
        "msg msg-agent msg-out:ticket message 1",
        "msg msg-customer msg-in:ticket message 2",
        "msg msg-agent msg-out:ticket message 3",
        "msg msg-customer msg-in:ticket message 4",
        "msg msg-agent msg-out:ticket message 5",
        "msg msg-system msg-event:You claimed the ticket",
    ]
    second = _quiet(calls)
    [(path, query)] = [c.split("?") for c in second]
    assert path == f"GET /api/v1/tickets/{ticket_id}/messages"
    assert list(parse_qs(query)) == ["before"]
    del calls[:]

    # unfolded, the group stays open as its older part comes in and joins it
    groups.click()
    timeline.evaluate("(list) => { list.scrollTop = 0; }")
    expect(groups).to_have_text(["With the bot · 60 messages"])
    expect(timeline.locator("details.context")).to_have_attribute("open", "")
    expect(timeline.locator("details.context .msg")).to_have_count(60)
    expect(timeline.locator(".timeline-older")).to_have_count(0)
    expect(timeline.locator(".msg")).to_have_count(122)  # and the claim
    third = _quiet(calls)
    assert len(third) == 1 and "before=" in third[0] and third[0] != second[0]


def test_a_live_event_patches_the_row_it_names_without_refetching_the_list(stack, context):
    clock = Clock()
    psids = {"open": "3400000000000201", "other": "3400000000000202", "new": "3400000000000203"}
    _handover(stack, clock, psid=psids["open"], text="the one I am reading", name="Reading")
    _handover(stack, clock, psid=psids["other"], text="another customer", name="Other")
    opened, other = _ticket_id(stack, psids["open"]), _ticket_id(stack, psids["other"])
    page = login(context, "ana")
    page.locator(".ticket-row", has_text="the one I am reading").click()
    expect(page.locator("#conv-name")).to_have_text("Reading Live")
    rows = page.locator("#ticket-list .ticket-row")
    other_row = page.locator(f".ticket-row[data-ticket-id='{other}']")
    expect(other_row).to_be_visible()
    calls = _api_calls(page)
    _quiet(calls)
    del calls[:]

    # a customer writes in another conversation: its row changes, nothing else is fetched
    count = rows.count()
    stack.post_webhook(payloads.user_message("any news?", ts=clock(), psid=psids["other"]))
    expect(other_row.locator(".ticket-preview")).to_have_text("any news?", timeout=SETTLE)
    assert set(_quiet(calls)) == {f"GET /api/v1/tickets/{other}", "GET /api/v1/queues"}
    expect(rows).to_have_count(count)
    del calls[:]

    # in the open conversation: the one new message joins the timeline
    stack.post_webhook(payloads.user_message("still there?", ts=clock(), psid=psids["open"]))
    expect(page.locator("#timeline .msg-customer .text").last).to_have_text(
        "still there?", timeout=SETTLE
    )
    made = set(_quiet(calls))
    [message] = [c for c in made if "/messages/" in c]
    assert made == {f"GET /api/v1/tickets/{opened}", message, "GET /api/v1/queues"}
    assert re.fullmatch(rf"GET /api/v1/tickets/{opened}/messages/\d+", message)
    del calls[:]

    # another agent claims a waiting ticket: it leaves this waiting list, the count follows
    waiting = int(page.locator("[data-count=waiting]").inner_text())
    claimed = requests.post(
        f"{stack.base_url}/api/v1/tickets/{other}/claim",
        headers={"Authorization": f"Bearer {stack.tokens['bo']}"},
        timeout=5,
    )
    assert claimed.status_code == 200
    expect(other_row).to_have_count(0, timeout=SETTLE)
    expect(page.locator("[data-count=waiting]")).to_have_text(str(waiting - 1))
    assert set(_quiet(calls)) == {f"GET /api/v1/tickets/{other}", "GET /api/v1/queues"}
    del calls[:]

    # a new ticket: in at its place (the end of the waiting list, oldest first)
    _handover(stack, clock, psid=psids["new"], text="I am new here", name="Newcomer")
    expect(rows.last).to_contain_text("I am new here", timeout=SETTLE)
    expect(page.locator("[data-count=waiting]")).to_have_text(str(waiting))
    new = int(rows.last.get_attribute("data-ticket-id"))
    assert set(_quiet(calls)) == {f"GET /api/v1/tickets/{new}", "GET /api/v1/queues"}


def test_a_new_waiting_ticket_is_named_when_its_events_come_after_the_count(stack, context):
    """The waiting count can grow in one burst of events (another ticket's) before the
    events that name the new ticket arrive: the notification waits for the name."""
    clock, psids = Clock(), ("3400000000000301", "3400000000000302")
    context.add_init_script(FAKE_NOTIFICATIONS)
    held: list[str | bytes] = []
    sockets: list[Any] = []

    def route(page_side: Any) -> None:
        server = page_side.connect_to_server()
        server.on_message(
            lambda message: held.append(message) if held_back else page_side.send(message)
        )
        sockets.append(page_side)

    held_back = False
    context.route_web_socket(re.compile(r"/ws/inbox/$"), route)
    _handover(stack, clock, psid=psids[0], text="already waiting", name="Earlier")
    first = requests.get(
        f"{stack.base_url}/api/v1/tickets/{_ticket_id(stack, psids[0])}",
        headers={"Authorization": f"Bearer {stack.tokens['ana']}"},
        timeout=5,
    ).json()
    page = login(context, "ana")
    expect(page.locator(".ticket-row", has_text="already waiting")).to_be_visible()
    page.get_by_role("button", name="Notifications: off").click()
    _quiet(_api_calls(page))

    # the new ticket's events are held back; an event about the other ticket comes first
    held_back = True
    _handover(stack, clock, psid=psids[1], text="just arrived", name="Newest")
    second = _ticket_id(stack, psids[1])

    def its_events_held() -> bool:
        page.wait_for_timeout(50)  # (Playwright delivers the socket's messages meanwhile)
        return any(f'"ticket_id": {second}' in str(m) for m in held)

    eventually(its_events_held, what="its events")
    [page_side] = sockets
    page_side.send(
        json.dumps(
            {
                "event": "ticket.updated",
                "ticket_id": first["id"],
                "conversation_id": first["conversation_id"],
            }
        )
    )
    page.wait_for_timeout(500)  # the page fetched that ticket and the grown count
    assert page.evaluate("window.__notes") == []
    held_back = False
    for message in held:
        page_side.send(message)

    expect(page.locator("html[data-notes='1']")).to_be_attached(timeout=SETTLE)
    page.wait_for_timeout(1500)  # no second, unnamed notification follows
    assert page.evaluate("window.__notes") == [["New waiting ticket", "Newest Live is waiting."]]


def test_the_ticket_list_loads_more_at_the_bottom(stack, context):
    stack.manage("shell", "-c", CLOSED.format(count=60))
    page = login(context, "ana")
    calls = _api_calls(page)
    page.get_by_role("button", name="Closed").click()
    rows = page.locator("#ticket-list .ticket-row")
    expect(rows).to_have_count(50)
    expect(page.locator(".list-more")).to_have_text("More tickets")
    assert "GET /api/v1/tickets?queue=closed&limit=50" in _quiet(calls)
    del calls[:]

    page.locator("#ticket-list").evaluate("(list) => { list.scrollTop = list.scrollHeight; }")
    expect(rows).to_have_count(60)
    expect(page.locator(".list-more")).to_have_count(0)
    [more] = _quiet(calls)
    assert re.fullmatch(r"GET /api/v1/tickets\?queue=closed&limit=50&after=[\w-]+", more)
    names = rows.locator(".ticket-name").all_inner_texts()
    assert names == [f"Closed {n:02d}" for n in range(60)]  # newest first, none twice


def test_a_read_receipt_reaches_the_reply_when_a_newer_message_is_not_shown_yet(stack, context):
    """A receipt names the conversation, not the messages it marked: the page fetches
    the newest messages back to its oldest reply not yet read. The server may hold newer
    messages than the page shows (their `message.created` is in the same burst, or still
    on its way; in the walk-through, the bot's welcome back came with the customer's read
    of the closing message): the fetch still reaches the reply."""
    clock, psid = Clock(), "3400000000000401"
    held: list[str | bytes] = []
    sockets: list[Any] = []
    holding = [False]

    def route(page_side: Any) -> None:
        server = page_side.connect_to_server()

        def forward(message: str | bytes) -> None:
            if holding[0] and "message.created" in str(message):
                held.append(message)
            else:
                page_side.send(message)

        server.on_message(forward)
        sockets.append(page_side)

    context.route_web_socket(re.compile(r"/ws/inbox/$"), route)
    in_flight = _in_flight(context)
    _handover(stack, clock, psid=psid, text="where is my parcel?", name="Reader")
    page = login(context, "ana")
    row = page.locator(".ticket-row", has_text="where is my parcel?")
    row.click()
    ticket_id = int(row.get_attribute("data-ticket-id"))
    composer = page.locator("#composer-text")
    composer.fill("Let me check.")
    composer.press("Enter")
    reply = page.locator("#timeline .msg-agent")
    expect(reply.locator(".msg-status")).to_have_text("Sent", timeout=SETTLE)
    # The socket is open and what its opening fetched has come (a slow machine may open
    # it after the ticket was shown: its full reload would otherwise come after the
    # receipt and show the reply read, with no receipt fetch to look at).
    expect(page.locator("#app[data-live=on]")).to_be_attached()

    def answered() -> bool:
        page.wait_for_timeout(50)  # (Playwright delivers the page's events meanwhile)
        return not in_flight

    def unanswered() -> str:
        return f"answers to {sorted(r.url for r in in_flight)}"

    eventually(answered, what=unanswered)
    _quiet(_api_calls(page))
    eventually(answered, what=unanswered)
    assert len(sockets) == 1
    read_at = clock()  # the customer reads the reply, then answers

    # the answer is stored, its message.created held back; then the read receipt comes
    holding[0] = True
    stack.post_webhook(payloads.user_message("It is order 42.", ts=clock(), psid=psid))

    def answer_held() -> bool:
        page.wait_for_timeout(50)  # (Playwright delivers the socket's messages meanwhile)
        return any("message.created" in str(m) for m in held)

    eventually(answer_held, what="the answer's message.created")
    calls = _api_calls(page)
    stack.post_webhook(payloads.read(ts=clock(), watermark=read_at, psid=psid))
    expect(reply.locator(".msg-status")).to_have_text("Read", timeout=SETTLE)
    # the list fetches (a message.updated fetches its one message: not counted here)
    fetched = [c for c in _quiet(calls) if "/messages?" in c]
    # the newest message (the answer), then the page before it, which holds the reply
    assert fetched[0] == f"GET /api/v1/tickets/{ticket_id}/messages?limit=1"
    assert len(fetched) == 2 and re.fullmatch(
        rf"GET /api/v1/tickets/{ticket_id}/messages\?before=[\w-]+", fetched[1]
    ), fetched
    # it was fetched with the receipt: the answer shows in its place already
    customer = page.locator("#timeline .msg-customer .text")
    expect(customer).to_have_text(["where is my parcel?", "It is order 42."])

    # the held event comes at last: the answer is shown once, the reply stays read
    holding[0] = False
    [page_side] = sockets
    for message in held:
        page_side.send(message)
    page.wait_for_timeout(int(QUIET * 1000))
    expect(customer).to_have_text(["where is my parcel?", "It is order 42."])
    expect(reply.locator(".msg-status")).to_have_text("Read")
