"""Who said what, in a real browser (Debian's Chromium) against the real stack: a reopened
ticket's earlier conversation is folded as that ticket's, a Page Inbox reply shows as the
Page Inbox's, the day is said where it changes, in the agent's time zone."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.support import fake_of, login, new_context
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine
# One format for every time in the timeline: the time of day (the day is a separator).
TIME_OF_DAY = re.compile(r"^\d{2}:\d{2}( [AP]M)?$")


def _api(stack: Stack, method: str, path: str, body: dict | None = None) -> requests.Response:
    return requests.request(
        method,
        f"{stack.base_url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {stack.tokens['ana']}"},  # type: ignore[attr-defined]
        timeout=5,
    )


def _handover(stack: Stack, clock: Clock, *, psid: str, text: str, name: str) -> int:
    """A customer talks to the bot on standby; the bot passes the thread: the ticket's id."""
    fake_of(stack).profiles[psid] = {"first_name": name, "last_name": "Tester", "profile_pic": ""}
    stack.post_webhook(payloads.user_message(text, ts=clock(), psid=psid), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid))

    def ticket() -> int | None:
        listed = _api(stack, "GET", "/tickets?queue=all_open&limit=200").json()
        return next((t["id"] for t in listed if t["contact"]["psid"] == psid), None)

    return eventually(ticket, what=f"the ticket of {psid}")


def _texts(stack: Stack, ticket_id: int) -> list[str]:
    return [m["text"] for m in _api(stack, "GET", f"/tickets/{ticket_id}/messages").json()]


def _open(page, name: str) -> None:
    row = page.locator(".ticket-row", has_text=name)
    expect(row).to_be_visible(timeout=SETTLE)
    row.click()
    expect(page.locator("#conversation")).to_be_visible()


def test_a_reopened_ticket_folds_its_earlier_conversation_as_that_ticket(stack, context):
    clock, psid = Clock(), "3000000000000301"
    ticket = _handover(stack, clock, psid=psid, text="my order is late", name="Rosa")
    assert _api(stack, "POST", f"/tickets/{ticket}/reply", {"text": "Let me check."}).ok
    stack.post_webhook(payloads.user_message("thanks, found it", ts=clock(), psid=psid))
    eventually(lambda: "thanks, found it" in _texts(stack, ticket), what="the customer's thanks")
    assert _api(stack, "POST", f"/tickets/{ticket}/close", {"outcome": "resolved"}).ok
    eventually(
        lambda: "The conversation went back to the bot." in _texts(stack, ticket),
        what="control back with the bot",
    )
    # Back with the bot, the customer asks again; the bot hands over: the ticket reopens.
    stack.post_webhook(payloads.echo("Welcome back!", ts=clock(), psid=psid), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid))
    eventually(
        lambda: _api(stack, "GET", f"/tickets/{ticket}").json()["status"] == "waiting",
        what="the ticket reopened",
    )

    page = login(context, "ana")
    _open(page, "Rosa Tester")
    groups = page.locator("#timeline > .context-group details")
    expect(groups.locator("summary")).to_have_text(
        [
            "With the bot · 1 message",
            f"Earlier ticket #{ticket} · closed by ana · resolved · 4 messages",
            "With the bot · 1 message",
        ]
    )
    earlier = groups.nth(1)
    expect(earlier).not_to_have_attribute("open", "")
    # Folded with it: the agent's reply too, and that stretch's ticket events.
    earlier.locator("summary").click()
    expect(earlier.locator(".msg-agent .text")).to_have_text("Let me check.")
    expect(earlier.locator(".msg-customer .text")).to_have_text("thanks, found it")
    expect(earlier.locator(".msg-event .system-text")).to_have_text(
        ["You claimed the ticket (by replying)", "You closed the ticket (resolved)"]
    )
    # What is this ticket's now: the handover and the reopening, not folded.
    expect(page.locator("#timeline > .msg-system .system-text")).to_have_text(
        ["The ticket was reopened", "Control passed to the helpdesk."]
    )


def test_a_page_inbox_reply_while_the_ticket_is_open_shows_as_the_page_inbox(stack, context):
    clock, psid = Clock(), "3000000000000302"
    ticket = _handover(stack, clock, psid=psid, text="where is my refund?", name="Kai")
    page = login(context, "ana")
    _open(page, "Kai Tester")
    page.get_by_role("button", name="Claim").click()
    expect(page.locator("#conv-status")).to_have_text("with you")

    # A colleague answers from Meta's Page Inbox: it takes the thread, and the reply comes
    # as an echo with the Page Inbox's app id (on standby: we no longer own the thread).
    stack.post_webhook(
        payloads.take_control(ts=clock(), psid=psid, new_owner=payloads.PAGE_INBOX_APP_ID)
    )
    stack.post_webhook(
        payloads.echo(
            "Refund sent today.", ts=clock(), psid=psid, app_id=payloads.PAGE_INBOX_APP_ID
        ),
        channel="standby",
    )
    stack.post_webhook(payloads.user_message("great!", ts=clock(), psid=psid), channel="standby")

    timeline = page.locator("#timeline")
    reply = timeline.locator("> li.msg-page_inbox")  # in the ticket's conversation, not folded
    expect(reply.locator(".author")).to_have_text("Page Inbox", timeout=SETTLE)
    expect(reply.locator(".text")).to_have_text("Refund sent today.")
    expect(timeline.locator("> li.msg-customer").last.locator(".text")).to_have_text("great!")
    expect(timeline.locator("> .msg-system .system-text").last).to_have_text(
        "The Page Inbox took the conversation."
    )
    expect(timeline.locator("details.context summary")).to_have_text(["With the bot · 1 message"])
    assert _texts(stack, ticket)[-2:] == ["Refund sent today.", "great!"]


DAYS = """
from django.contrib.auth.models import User
from agents.models import Contact, Message
from tests.support import factories
from webhooks.models import Page

ana = User.objects.get(username="ana")
ticket = factories.ticket(
    page=Page.objects.get(), psid="{psid}", handover_timestamp={handover}, assignee=ana,
    status="open",
)
Contact.objects.filter(psid="{psid}").update(first_name="Night", last_name="Owl")
for ts, author, text in (
    ({before}, "customer", "still awake?"),
    ({handover}, "system", "Control passed to the helpdesk."),
    ({late}, "customer", "my card was charged twice"),
    ({reply}, "agent", "Looking into it now."),
    ({morning}, "customer", "good morning, any news?"),
):
    Message.objects.create(
        conversation=ticket.conversation,
        ticket=None if author == "customer" and ts < {handover} else ticket,
        direction="out" if author == "agent" else "in",
        author_kind=author,
        author=ana if author == "agent" else None,
        status="read" if author == "agent" else "received",
        text=text,
        timestamp=ts,
    )
"""


def test_a_day_change_shows_a_day_separator_in_the_agents_time_zone(stack, chromium):
    zone = ZoneInfo("Asia/Kolkata")  # the agent's, not the server's (UTC); no DST
    now = datetime.now(zone)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if now - midnight < timedelta(minutes=15):  # the morning's message is not in the future
        midnight -= timedelta(days=1)

    def ms(at: datetime) -> int:
        return int(at.timestamp() * 1000)

    stack.manage(
        "shell",
        "-c",
        DAYS.format(
            psid="3000000000000303",
            before=ms(midnight - timedelta(hours=2)),
            handover=ms(midnight - timedelta(hours=1, minutes=30)),
            late=ms(midnight - timedelta(hours=1)),
            reply=ms(midnight - timedelta(minutes=50)),
            morning=ms(midnight + timedelta(minutes=5)),
        ),
    )
    listed = _api(stack, "GET", "/tickets?queue=all_open&limit=200").json()
    [ticket] = [t["id"] for t in listed if t["contact"]["psid"] == "3000000000000303"]
    context = new_context(
        chromium, stack, viewport={"width": 1280, "height": 800}, timezone_id="Asia/Kolkata"
    )
    # The browser's today is the day after `midnight` whenever the test runs: its clock
    # is held at 01:00 (a run at 23:59 in Kolkata would otherwise see a third day).
    context.clock.set_fixed_time(midnight + timedelta(hours=1))
    errors: list[str] = []
    context.on("page", lambda page: page.on("pageerror", lambda error: errors.append(str(error))))
    try:
        page = login(context, "ana")
        page.goto(f"/tickets/{ticket}/")
        timeline = page.locator("#timeline")
        expect(timeline.locator("> li")).to_have_count(7)
        lines = timeline.locator("> li").evaluate_all(
            """(items) => items.map((li) => li.classList.contains('day-separator')
                ? `== ${li.textContent}`
                : li.querySelector('summary, .text, .system-text').textContent)"""
        )
        assert lines == [
            "== Yesterday",
            "With the bot · 1 message",
            "Control passed to the helpdesk.",
            "my card was charged twice",
            "Looking into it now.",
            "== Today",
            "good morning, any news?",
        ]
        expect(timeline.locator(".day-separator").first).to_have_attribute("role", "separator")
        times = timeline.locator("time").all_text_contents()
        assert len(times) == 5 and all(TIME_OF_DAY.match(t) for t in times), times
        morning = (midnight + timedelta(minutes=5)).astimezone(ZoneInfo("UTC"))
        expect(timeline.locator("> .msg-customer time").last).to_have_attribute(
            "datetime", morning.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        )
    finally:
        context.close()
    assert errors == [], errors
