"""Who owns the thread, in the inbox (issue 10 §5, §6, §8, §9, §11), in Chromium against
the real stack: the header says who has the conversation since when and why, and how the
page gets control; "Take over" where the page lets the helpdesk take it (and a refusal in
words); every control change in the timeline with its cause, said once; the banner of a
page that cannot send, on that page's tickets only; the automatic hand-back notice as a
bubble of ours; mark_seen when a ticket the helpdesk owns is opened; "Your name for
customers". At 1280 px and on a phone (390 px): nothing wider than the screen, and what
the agent taps at least 44 px.

Screenshots go to $UI10_SHOTS when it is set (for a person to look at)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.support import fake_of, login, new_context, sender_actions
from tests.support import payloads
from tests.support.fakegraph import graph_error
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
TOUCH = 44  # px: the smallest touch target on a phone
ZONE = "Asia/Kolkata"  # the agent's time zone (not the server's UTC); en-GB: 24-hour times

PAGE_B = "1000000000000088"
NOTICE = "You're now chatting with our assistant again."
LAPSE_NOTE = "Messenger gives control back after 24 h without a customer message"

SECOND_PAGE = f"""
from tests.support import factories
from webhooks.models import Page

page = factories.page(page_id="{PAGE_B}", name="Second Page")
Page.objects.filter(pk=page.pk).update(conversation_routing=True, handback_notice="{NOTICE}")
"""

PROFILE = """
from agents.models import AgentProfile
print(list(AgentProfile.objects.filter(user__username="ana").values_list(
    "public_name", "picture_url")))
"""

CONTROLS = "button, a[href], select, textarea, input, summary"
TARGETS = """(scope) => [...document.querySelectorAll(scope)]
    .filter((node) => node.getClientRects().length > 0 && !node.closest(".bubble"))
    .map((node) => {
        const box = node.getBoundingClientRect();
        return [node.id || node.className || node.tagName, Math.round(box.width),
                Math.round(box.height)];
    })"""


@pytest.fixture(scope="module", autouse=True)
def second_page(stack) -> None:
    stack.manage("shell", "-c", SECOND_PAGE)


def _api(stack: Stack, method: str, path: str, body: dict | None = None) -> requests.Response:
    return requests.request(
        method,
        f"{stack.base_url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {stack.tokens['ana']}"},  # type: ignore[attr-defined]
        timeout=5,
    )


def _shell(stack: Stack, code: str) -> str:
    """Runs `code` in `manage.py shell`; its output's last line."""
    output = stack.manage("shell", "-c", code).strip()
    return output.splitlines()[-1] if output else ""


def _page_set(stack: Stack, **fields: str) -> None:
    """Set the first page's fields (as an admin would: no live event)."""
    code = f"Page.objects.filter(page_id={payloads.PAGE_ID!r}).update(**{fields!r})"
    _shell(stack, f"from webhooks.models import Page; {code}")


def _ticket_of(stack: Stack, psid: str) -> int:
    def ticket() -> int | None:
        listed = _api(stack, "GET", "/tickets?queue=all_open&limit=200").json()
        return next((t["id"] for t in listed if t["contact"]["psid"] == psid), None)

    return eventually(ticket, what=f"the ticket of {psid}")


def _handover(stack: Stack, clock: Clock, *, psid: str, name: str) -> int:
    """On the first page: the customer talks to the bot, the bot passes the thread."""
    fake_of(stack).profiles[psid] = {"first_name": name, "last_name": "Tester", "profile_pic": ""}
    stack.post_webhook(
        payloads.user_message("I need a person", ts=clock(), psid=psid), channel="standby"
    )
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="human"))
    return _ticket_of(stack, psid)


def _second_page_ticket(stack: Stack, *, psid: str, name: str) -> int:
    """A waiting ticket on the second page, the helpdesk owning its thread."""
    _shell(
        stack,
        f"""
from agents.models import Contact
from tests.support import factories
from webhooks.models import Page
ticket = factories.ticket(page=Page.objects.get(page_id="{PAGE_B}"), psid="{psid}")
Contact.objects.filter(psid="{psid}").update(first_name="{name}", last_name="Tester")
factories.message(ticket=ticket, text="hello from the second page")
""",
    )
    return _ticket_of(stack, psid)


def _context(chromium, stack, viewport=DESKTOP, **options):
    context = new_context(
        chromium, stack, viewport=viewport, timezone_id=ZONE, locale="en-GB", **options
    )
    errors: list[str] = []
    context.on("page", lambda page: page.on("pageerror", lambda e: errors.append(str(e))))
    return context, errors


def _at(ms: int) -> str:
    """How the inbox says a moment outside the timeline, in the agent's zone."""
    moment = datetime.fromtimestamp(ms / 1000, ZoneInfo(ZONE))
    today = datetime.now(ZoneInfo(ZONE)).date()
    if moment.date() == today:
        return moment.strftime("%H:%M")
    assert moment.date() == today - timedelta(days=1), moment
    return moment.strftime("Yesterday, %H:%M")


def _shot(page, name: str) -> None:
    where = os.environ.get("UI10_SHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / f"{name}.png"))


def _fits(page) -> None:
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width} px wide on a {inner} px screen"


def _small_targets(page) -> list:
    targets = page.evaluate(TARGETS, f"#app :is({CONTROLS}), dialog[open] :is({CONTROLS})")
    assert targets
    return [t for t in targets if t[1] < TOUCH or t[2] < TOUCH]


def _takes(stack: Stack, psid: str) -> list:
    return [
        c
        for c in fake_of(stack).calls_to("/me/take_thread_control")
        if c.body["recipient"] == {"id": psid}
    ]


def _lines(page) -> list[str]:
    """The timeline's centred lines: what happened, and who caused it."""
    return page.locator("#timeline .msg-system").evaluate_all(
        """(items) => items.map((li) => [...li.querySelectorAll('.system-text, .cause')]
            .map((n) => n.textContent).join(' '))"""
    )


def test_an_idle_conversation_says_since_when_and_why_nobody_owns_it(stack, chromium):
    clock, psid = Clock(), "3000000000000501"
    ticket = _handover(stack, clock, psid=psid, name="Lapsa")
    assert _api(stack, "POST", f"/tickets/{ticket}/claim").ok
    # The customer last wrote 25 hours ago; Messenger says nobody owns the thread now.
    last = datetime.now(UTC) - timedelta(hours=25)
    _shell(
        stack,
        f"""
from datetime import datetime, UTC
from agents.models import Conversation
Conversation.objects.filter(contact__psid="{psid}").update(
    last_user_message_at=datetime.fromtimestamp({last.timestamp()}, UTC))
""",
    )
    fake_of(stack).thread_owner_app_id = None  # `{"data": []}`: idle
    _shell(stack, "from agents.services import reconcile; reconcile.control_lapse_reconcile()")
    shown = _api(stack, "GET", f"/tickets/{ticket}").json()
    assert (shown["control_state"], shown["owner_role"]) == ("idle", "nobody")
    since = int((last + timedelta(hours=24)).timestamp() * 1000)
    assert shown["owner_since"] == since

    context, errors = _context(chromium, stack)
    try:
        page = login(context, "ana")
        page.goto(f"/tickets/{ticket}/")
        owner = page.locator("#conv-owner")
        expect(owner).to_have_text(
            f"Nobody owns this conversation since {_at(since)} ({LAPSE_NOTE})", timeout=SETTLE
        )
        expect(owner).to_have_attribute("data-role", "nobody")
        expect(page.locator("#conv-mode")).to_have_text(
            "Asks the bot first, takes control if refused"
        )
        # The window is closed: taking it again would lapse at once. Not offered.
        expect(page.locator("#composer-lock-reason")).to_contain_text("Nobody owns this")
        expect(page.locator("#take-over-btn")).to_be_hidden()
        # The change is in the timeline with its cause.
        lapse = page.locator('#timeline .msg-transition[data-cause="reconcile"]')
        expect(lapse).to_have_count(1)
        expect(lapse.locator(".cause")).to_have_text("(checked with Messenger)")
        expect(lapse).to_have_attribute("data-to", "idle")
        _shot(page, "idle-1280")
    finally:
        context.close()
    assert errors == [], errors


def test_a_draft_survives_the_lapse_and_the_conversation_is_taken_again(stack, chromium):
    clock, psid = Clock(), "3000000000000509"
    ticket = _handover(stack, clock, psid=psid, name="Dora")
    assert _api(stack, "POST", f"/tickets/{ticket}/claim").ok
    context, errors = _context(chromium, stack)
    try:
        page = login(context, "ana")
        page.goto(f"/tickets/{ticket}/")
        composer = page.locator("#composer-text")
        expect(composer).to_be_enabled(timeout=SETTLE)
        composer.fill("Your refund is on its way")  # half-written when control lapses

        # Messenger's 24-hour lapse, checked with thread_owner by the beat's reconciliation.
        last = datetime.now(UTC) - timedelta(hours=25)
        _shell(
            stack,
            f"""
from datetime import datetime, UTC
from agents.models import Conversation
Conversation.objects.filter(contact__psid="{psid}").update(
    last_user_message_at=datetime.fromtimestamp({last.timestamp()}, UTC))
""",
        )
        fake_of(stack).thread_owner_app_id = None  # idle
        # As beat does: the task, run by the worker, whose live event reaches the inbox.
        _shell(stack, "from agents import tasks; tasks.control_lapse_reconcile.delay()")
        expect(composer).to_be_disabled(timeout=SETTLE)
        expect(page.locator("#conv-owner")).to_contain_text("Nobody owns this conversation")
        expect(page.locator("#take-over-btn")).to_be_hidden()  # the window is closed
        expect(composer).to_have_value("Your refund is on its way")  # nothing typed is lost

        # The customer writes again (the bot has idle threads: standby for us): take it back.
        stack.post_webhook(
            payloads.user_message("hello? still there?", ts=clock(), psid=psid),
            channel="standby",
        )
        take = page.locator("#take-over-btn")
        expect(take).to_be_visible(timeout=SETTLE)
        take.click()
        expect(composer).to_be_enabled(timeout=SETTLE)
        expect(composer).to_have_value("Your refund is on its way")
        takes = [
            c
            for c in fake_of(stack).calls_to("/me/take_thread_control")
            if c.body["recipient"] == {"id": psid}
        ]
        assert len(takes) == 1
    finally:
        context.close()
    assert errors == [], errors


def test_take_over_where_the_page_lets_the_helpdesk_take(stack, chromium):
    clock, psid = Clock(), "3000000000000502"
    ticket = _handover(stack, clock, psid=psid, name="Tomas")
    assert _api(stack, "POST", f"/tickets/{ticket}/claim").ok
    _page_set(stack, control_mode="take")
    try:
        stack.post_webhook(payloads.take_control(ts=clock(), psid=psid))  # the bot takes it
        context, errors = _context(chromium, stack)
        try:
            page = login(context, "ana")
            seen: list[str] = []
            page.on("request", lambda r: seen.append(r.url) if r.url.endswith("/seen") else None)
            page.goto(f"/tickets/{ticket}/")
            expect(page.locator("#conv-mode")).to_have_text(
                "Gets control by taking it (Conversation Routing)", timeout=SETTLE
            )
            expect(page.locator("#conv-owner")).to_have_text(
                re.compile(r"^The bot has this conversation since \d{2}:\d{2}$")
            )
            take, ask = page.locator("#take-over-btn"), page.locator("#request-control-btn")
            expect(take).to_be_visible()
            expect(ask).to_be_visible()  # both ways, Take over first
            assert take.bounding_box()["x"] < ask.bounding_box()["x"]
            expect(take).to_be_focused()
            _shot(page, "take-over-1280")

            with page.expect_response(
                lambda r: r.url.endswith(f"/tickets/{ticket}/take-control")
            ) as answer:
                take.click()
            assert answer.value.status == 202
            [taken] = eventually(lambda: _takes(stack, psid), what="take_thread_control")
            assert taken.body["recipient"] == {"id": psid}
            expect(page.locator("#conv-owner")).to_have_text(
                re.compile(r"^The helpdesk has this conversation since \d{2}:\d{2}$"),
                timeout=SETTLE,
            )
            expect(take).to_be_hidden()
            expect(page.locator("#composer-text")).to_be_enabled()
            expect(page.locator("#conv-error")).to_be_hidden()
            assert _api(stack, "GET", f"/tickets/{ticket}").json()["control_state"] == "agent"
            # Opened while the bot had it: no mark_seen then (it came with control).
            assert len(seen) <= 1

            # Every change with its cause, each said once.
            expect(page.locator("#timeline .msg-transition").last).to_have_attribute(
                "data-to", "agent"
            )
            # (The take's answer wrote a system line and a change: one line, not two.)
            lines = _lines(page)
            assert [line for line in lines if line.startswith("The helpdesk took control")] == [
                "The helpdesk took control. (our call)"
            ], lines
            assert "The bot took the conversation. (Messenger)" in lines, lines
            assert "Taking control: agent ana took over. (agent)" in lines, lines

            # The bot takes it again; meanwhile the page stops allowing takes: the button,
            # still shown, is refused in words and no take is made.
            stack.post_webhook(payloads.take_control(ts=clock(), psid=psid))
            expect(take).to_be_visible(timeout=SETTLE)
            _page_set(stack, control_mode="request")
            with page.expect_response(
                lambda r: r.url.endswith(f"/tickets/{ticket}/take-control")
            ) as answer:
                take.click()
            assert answer.value.status == 409
            expect(page.locator("#conv-error")).to_have_text(
                "This page does not let the helpdesk take conversations from the bot; ask "
                "the bot for it instead."
            )
            expect(take).to_be_hidden()  # the ticket was fetched again
            assert len(_takes(stack, psid)) == 1
        finally:
            context.close()
        assert errors == [], errors
    finally:
        _page_set(stack, control_mode="auto", control_way="")  # what it learnt too


def test_no_take_over_from_a_person_in_the_page_inbox(stack, chromium):
    clock, psid = Clock(), "3000000000000512"
    ticket = _handover(stack, clock, psid=psid, name="Ines")
    assert _api(stack, "POST", f"/tickets/{ticket}/claim").ok
    _page_set(stack, control_mode="take")
    try:
        stack.post_webhook(
            payloads.take_control(ts=clock(), psid=psid, new_owner=payloads.PAGE_INBOX_APP_ID)
        )
        for viewport, name in ((DESKTOP, "1280"), (PHONE, "390")):
            context, errors = _context(chromium, stack, viewport)
            try:
                page = login(context, "ana")
                page.goto(f"/tickets/{ticket}/")
                expect(page.locator("#conv-owner")).to_have_text(
                    re.compile(r"^The Page Inbox has this conversation since \d{2}:\d{2}$"),
                    timeout=SETTLE,
                )
                expect(page.locator("#request-control-btn")).to_be_visible()
                expect(page.locator("#take-over-btn")).to_be_hidden()
                expect(page.locator("#composer-text")).to_be_disabled()
                _fits(page)
                _shot(page, f"page-inbox-no-take-{name}")
            finally:
                context.close()
            assert errors == [], errors
        assert _takes(stack, psid) == []
    finally:
        _page_set(stack, control_mode="auto", control_way="")


def test_a_closed_ticket_can_take_the_conversation_over_again(stack, context):
    clock, psid = Clock(), "3000000000000508"
    ticket = _handover(stack, clock, psid=psid, name="Clara")
    assert _api(stack, "POST", f"/tickets/{ticket}/claim").ok
    assert _api(stack, "POST", f"/tickets/{ticket}/close", {"outcome": "resolved"}).ok
    eventually(
        lambda: _api(stack, "GET", f"/tickets/{ticket}").json()["control_state"] == "bot",
        what="back with the bot",
    )
    _page_set(stack, control_mode="take")
    try:
        page = login(context, "ana")
        page.goto(f"/tickets/{ticket}/")
        take, ask = page.locator("#take-over-closed-btn"), page.locator("#ask-again-btn")
        expect(take).to_be_visible(timeout=SETTLE)
        expect(ask).to_be_visible()
        assert take.bounding_box()["y"] <= ask.bounding_box()["y"]  # Take over first
        expect(take).to_be_focused()
        take.click()
        [taken] = eventually(lambda: _takes(stack, psid), what="take_thread_control")
        assert taken.body["recipient"] == {"id": psid}
        # The ticket is back: no closed panel, the reply box instead.
        expect(page.locator("#closed-panel")).to_be_hidden(timeout=SETTLE)
        expect(page.locator("#conv-status")).not_to_have_text("closed")
        expect(page.locator("#conv-owner")).to_have_text(
            re.compile(r"^The helpdesk has this conversation since ")
        )
        assert _api(stack, "GET", f"/tickets/{ticket}").json()["status"] != "closed"
        assert len(_takes(stack, psid)) == 1
    finally:
        _page_set(stack, control_mode="auto", control_way="")


def test_when_meta_refuses_both_ways_in_the_conversation_says_it_waits_for_the_bot(stack, context):
    clock, psid = Clock(), "3000000000000507"
    ticket = _handover(stack, clock, psid=psid, name="Wanda")
    assert _api(stack, "POST", f"/tickets/{ticket}/claim").ok
    stack.post_webhook(payloads.take_control(ts=clock(), psid=psid))  # the bot takes it
    page = login(context, "ana")
    page.goto(f"/tickets/{ticket}/")
    ask, waiting = page.locator("#request-control-btn"), page.locator("#conv-waiting")
    expect(ask).to_be_visible(timeout=SETTLE)
    expect(page.locator("#take-over-btn")).to_be_hidden()  # the page asks first
    expect(waiting).to_be_hidden()

    fake = fake_of(stack)
    fake.fail_next(
        "/me/request_thread_control",
        graph_error(10, message="(#10) Handover Protocol APIs disabled for this page"),
    )
    fake.fail_next(
        "/me/take_thread_control",
        graph_error(200, message="(#200) Permissions error: this app is not allowed to take"),
    )
    try:
        ask.click()
        expect(waiting).to_have_text(
            re.compile(r"^Waiting for the bot to pass the conversation: Meta lets the helpdesk "),
            timeout=SETTLE,
        )
        expect(waiting).to_have_attribute("role", "status")
        expect(page.locator("#conv-mode")).to_have_text(
            "Waits for the bot to pass conversations (Meta refuses requests and takes)"
        )
        assert len(_takes(stack, psid)) == 1
        _shot(page, "waiting-1280")
    finally:
        _page_set(stack, control_way="", control_way_note="")


def test_opening_a_ticket_the_helpdesk_owns_marks_it_seen(stack, context):
    clock, psid = Clock(), "3000000000000503"
    ticket = _handover(stack, clock, psid=psid, name="Seena")
    page = login(context, "ana")
    with page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith(f"/api/v1/tickets/{ticket}/seen")
    ) as request:
        page.goto(f"/tickets/{ticket}/")
    assert request.value.response().json() == {"sent": True}
    [seen] = eventually(lambda: sender_actions(stack, psid), what="mark_seen")
    assert seen.body["sender_action"] == "mark_seen"
    assert seen.body["recipient"] == {"id": psid}


def test_a_paused_page_shows_a_banner_on_its_tickets_only(stack, chromium):
    clock, psid, other = Clock(), "3000000000000504", "3000000000000904"
    ticket = _handover(stack, clock, psid=psid, name="Pausa")
    second = _second_page_ticket(stack, psid=other, name="Bea")
    assert _api(stack, "POST", f"/tickets/{ticket}/claim").ok
    page_name = _api(stack, "GET", f"/tickets/{ticket}").json()["page_name"]
    context, errors = _context(chromium, stack)
    try:
        page = login(context, "ana")
        page.goto(f"/tickets/{ticket}/")
        eventually(lambda: sender_actions(stack, psid), what="mark_seen, before the failure")
        banner = page.locator("#conv-paused")
        expect(banner).to_be_hidden()

        # Meta says the page's token expired: the page's outbox stops.
        fake_of(stack).fail_next(
            "/me/messages", graph_error(190, message="Error validating access token")
        )
        composer = page.locator("#composer-text")
        composer.evaluate("(node) => { node.value = 'Checking your order now.'; }")
        composer.press("Enter")
        expect(banner).to_have_text(
            re.compile(
                rf"^Sending is paused for {re.escape(page_name)}: .*token.* Replies wait and go "
                r"out by themselves when it is fixed\.$"
            ),
            timeout=SETTLE,
        )
        expect(banner).to_have_attribute("role", "status")
        expect(composer).to_be_enabled()  # replies queue meanwhile
        reply = page.locator("#timeline .msg-agent").last
        expect(reply).to_have_attribute("data-status", "pending")
        _shot(page, "paused-1280")

        # Another page's ticket: no banner.
        page.goto(f"/tickets/{second}/")
        expect(page.locator("#conv-name")).to_have_text("Bea Tester", timeout=SETTLE)
        expect(banner).to_be_hidden()
        # Back on the paused page's ticket: the banner again.
        page.goto(f"/tickets/{ticket}/")
        expect(banner).to_be_visible(timeout=SETTLE)

        # The probe finds the page can send again: the banner goes, the reply goes out once.
        expect(banner).to_be_hidden(timeout=120_000)
        expect(reply.locator(".msg-status")).to_have_text("Sent", timeout=SETTLE)
        texts = [c.body["message"]["text"] for c in fake_of(stack).sends() if "message" in c.body]
        assert texts.count("Checking your order now.") == 2  # the refused one, then the probe
    finally:
        context.close()
    assert errors == [], errors


def test_the_automatic_hand_back_notice_is_a_bubble_of_ours(stack, context):
    psid = "3000000000000905"
    ticket = _second_page_ticket(stack, psid=psid, name="Nora")
    assert _api(stack, "POST", f"/tickets/{ticket}/claim").ok
    assert _api(stack, "POST", f"/tickets/{ticket}/close", {"outcome": "resolved"}).ok
    eventually(
        lambda: [
            c for c in fake_of(stack).sends() if c.body.get("message", {}).get("text") == NOTICE
        ],
        what="the hand-back notice",
    )
    page = login(context, "ana")
    page.goto(f"/tickets/{ticket}/")
    notice = page.locator("#timeline .msg-automatic")
    expect(notice).to_have_count(1, timeout=SETTLE)
    expect(notice.locator(".author")).to_have_text("Automatic message")
    expect(notice.locator(".text")).to_have_text(NOTICE)
    expect(notice).to_have_class(re.compile(r"\bmsg-out\b"))
    expect(notice.locator(".msg-status")).to_have_text(re.compile("^(Sent|Delivered|Read)$"))
    expect(notice.get_by_role("button", name="Retry")).to_have_count(0)
    # Not a centred system line, and not the customer's.
    expect(page.locator("#timeline .msg-system", has_text=NOTICE)).to_have_count(0)
    expect(page.locator("#timeline .msg-customer", has_text=NOTICE)).to_have_count(0)
    # In the order it happened: the close hands back, the notice goes, the bot has it.
    order = page.locator("#timeline > li").evaluate_all(
        "(items) => items.map((li) => li.querySelector('.system-text, .text')?.textContent)"
    )
    closing = f"Ticket {ticket} closed by ana; passing control to the bot."
    back = "The conversation went back to the bot."
    assert order.index(closing) < order.index(NOTICE) < order.index(back), order
    expect(page.locator(".msg-transition", has_text=back).locator(".cause")).to_have_text(
        "(our call)"
    )
    expect(page.locator(".msg-transition", has_text=closing).locator(".cause")).to_have_text(
        "(agent)"
    )
    _shot(page, "notice-1280")


def test_your_name_for_customers(stack, context):
    page = login(context, "ana")
    dialog = page.locator("#profile-dialog")
    page.locator("#profile-btn").click()
    expect(dialog).to_be_visible()
    name, picture = page.get_by_label("Public name"), page.get_by_label("Picture URL")
    expect(name).to_be_enabled(timeout=SETTLE)
    expect(name).to_have_attribute("placeholder", "The name customers see on your replies")
    name.fill("  Ana   from Support ")
    page.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden(timeout=SETTLE)
    assert _shell(stack, PROFILE).strip() == "[('Ana from Support', '')]"

    # An http:// picture: refused in words, inline; nothing changes; Cancel closes.
    page.locator("#profile-btn").click()
    expect(name).to_have_value("Ana from Support", timeout=SETTLE)
    picture.fill("http://cdn.example/ana.png")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#profile-error")).to_have_text(
        "Not saved: The picture must be a public https:// address of an image."
    )
    expect(dialog).to_be_visible()
    _shot(page, "profile-error-1280")
    assert _shell(stack, PROFILE).strip() == "[('Ana from Support', '')]"
    page.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert json.loads(_api(stack, "GET", "/me").text)["public_name"] == "Ana from Support"


def test_on_a_phone_the_owner_take_over_banner_and_dialog_fit(stack, chromium):
    clock, psid = Clock(), "3000000000000506"
    ticket = _handover(stack, clock, psid=psid, name="Fona")
    assert _api(stack, "POST", f"/tickets/{ticket}/claim").ok
    stack.post_webhook(payloads.take_control(ts=clock(), psid=psid))  # the bot takes it
    eventually(
        lambda: _api(stack, "GET", f"/tickets/{ticket}").json()["control_state"] == "taken",
        what="taken by the bot",
    )
    # The page takes, and cannot send (set as the outbox pause leaves it, without the
    # time the probe goes by: it stays paused while the test looks).
    _page_set(
        stack,
        control_mode="take",
        outbox_paused_reason="the Page is temporarily restricted from sending messages "
        "(code 10/1893063)",
    )
    context, errors = _context(chromium, stack, PHONE, is_mobile=True, has_touch=True)
    try:
        page = login(context, "ana")
        page.goto(f"/tickets/{ticket}/")
        expect(page.locator("#take-over-btn")).to_be_visible(timeout=SETTLE)
        expect(page.locator("#conv-paused")).to_be_visible()
        expect(page.locator("#conv-owner")).to_contain_text("The bot has this conversation")
        expect(page.locator("#conv-mode")).to_be_visible()
        _fits(page)
        assert _small_targets(page) == []
        assert page.locator(".topbar").bounding_box()["height"] <= TOUCH + 16
        _shot(page, "take-over-390")

        page.locator("#profile-btn").click()
        expect(page.locator("#profile-dialog")).to_be_visible()
        expect(page.get_by_label("Public name")).to_be_enabled(timeout=SETTLE)
        _fits(page)
        assert _small_targets(page) == []
        _shot(page, "profile-390")
    finally:
        context.close()
        _page_set(stack, control_mode="auto", outbox_paused_reason="")
    assert errors == [], errors
