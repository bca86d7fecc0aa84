"""CSAT before hand-back in Chromium against the real stack: an agent closes a ticket on a
page that asks for a rating; the close dialog says so, the closed panel says the
helpdesk waits for the customer's rating until when, and the rating appears live (the
panel and the closed list) when the customer taps 4. Screenshots at 1280 and 390 px go
to /tmp/shots-csat/ (and docs/screenshots/ with CSAT_DOC_SHOTS=1)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import fake_of, login, new_context
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock
from tests.support.xss import PAYLOADS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine
SHOTS = Path("/tmp/shots-csat")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
QUESTION = "How did we do? Tap a number: 1 is poor, 5 is great."
THANKS = "Thank you for your rating!"
# Elements and attributes the inbox never makes itself (as tests/browser/test_xss.py).
INJECTED = """() => [...document.querySelectorAll("*")].flatMap((node) => [
  ...[...node.attributes].filter((a) => a.name.toLowerCase().startsWith("on")).map((a) => a.name),
  ...(["IFRAME", "OBJECT", "EMBED", "svg"].includes(node.tagName) ? [node.tagName] : []),
  ...(node.tagName === "SCRIPT" && !node.src ? ["inline script"] : []),
])"""
CSAT_ON = (
    "from webhooks.models import Page; "
    f"Page.objects.filter(page_id='{payloads.PAGE_ID}').update(csat_enabled=True, "
    'handback_notice="You\'re now chatting with our assistant again.")'
)


@pytest.fixture(scope="module", autouse=True)
def csat_on(stack) -> None:
    stack.manage("shell", "-c", CSAT_ON)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    if os.environ.get("CSAT_DOC_SHOTS"):
        page.screenshot(path=str(DOCS / f"csat-{name}.png"))


def _sends(stack, psid: str) -> list:
    return [
        c
        for c in fake_of(stack).calls_to("/me/messages")
        if c.body["recipient"] == {"id": psid} and "message" in c.body
    ]


def _sends_at_least(stack, psid: str, count: int) -> list:
    def enough() -> list | None:
        sends = _sends(stack, psid)
        return sends if len(sends) >= count else None

    return eventually(enough, what=f"{count} messages sent to {psid}")


def _handover(stack, clock, *, psid: str, name: str) -> None:
    fake_of(stack).profiles[psid] = {"first_name": name, "last_name": "Rater", "profile_pic": ""}
    stack.post_webhook(
        payloads.user_message("where is my parcel?", ts=clock(), psid=psid), channel="standby"
    )
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="a human please"))


def test_close_with_a_rating_the_waiting_line_and_the_rating_live(stack, context):
    clock, psid = Clock(), "3000000000000901"
    _handover(stack, clock, psid=psid, name="Ada")
    page = login(context, "ana")
    page.get_by_role("button", name=re.compile("^All open")).click()
    row = page.locator(".ticket-row", has_text="Ada Rater")
    row.click()
    page.locator("#claim-btn").click()
    expect(page.locator("#conv-status")).to_have_text("with you", timeout=SETTLE)
    ticket_id = page.locator("#conversation").get_attribute("data-ticket-id")

    # The close dialog says that a rating question follows the closing message.
    page.get_by_role("button", name="Close…").click()
    expect(page.locator("#close-csat")).to_have_text(
        "The customer is asked for a rating (1 to 5) after your closing message. The bot "
        "gets the conversation back after their answer, or after 10 minutes."
    )
    page.get_by_label("Closing message").fill("Your parcel is on its way!")
    _shot(page, "close-dialog")
    page.get_by_label("Outcome").press("Enter")

    # The question goes out after the closing message; nothing is handed back yet.
    sends = _sends_at_least(stack, psid, 2)
    assert [s.body["message"]["text"] for s in sends] == ["Your parcel is on its way!", QUESTION]
    assert [r["title"] for r in sends[1].body["message"]["quick_replies"]] == list("12345")
    assert all("thread_control" not in s.body for s in sends)
    csat = page.locator("#closed-csat")
    expect(csat).to_have_text(
        re.compile(r"^Waiting for the customer's rating until \d{1,2}:\d{2}( [AP]M)?$"),
        timeout=SETTLE,
    )
    expect(page.locator("#closed-control")).to_have_text(
        "The helpdesk keeps the conversation until the customer rates it or the wait ends; "
        "then it goes back to the bot."
    )
    question = page.locator("#timeline .msg-automatic", has_text=QUESTION)
    expect(question.locator(".quick-replies-sent .chip")).to_have_text(list("12345"))
    assert fake_of(stack).calls_to("/me/pass_thread_control") == []
    expect(question.locator(".msg-status")).to_have_text("Sent", timeout=SETTLE)
    _shot(page, "waiting")

    # The customer taps 4: the rating appears live, the thank-you then the notice go out.
    stack.post_webhook(
        payloads.user_message("4", ts=clock(), psid=psid, quick_reply=f"CSAT:{ticket_id}:4")
    )
    expect(csat).to_have_text("★★★★☆Rated 4/5", timeout=SETTLE)
    expect(page.locator("#closed-control")).to_have_text(
        "The conversation is back with the bot.", timeout=SETTLE
    )
    sends = _sends_at_least(stack, psid, 4)
    assert [s.body["message"]["text"] for s in sends[2:]] == [
        "Thank you for your rating!",
        "You're now chatting with our assistant again.",
    ]
    assert sends[3].body["thread_control"]["control_type"] == "pass"
    expect(
        page.locator("#timeline .msg-system", has_text="The customer rated 4/5.")
    ).to_be_visible()

    notice = page.locator("#timeline .msg-automatic").last
    expect(notice.locator(".msg-status")).to_have_text("Sent", timeout=SETTLE)

    # In the list of closed tickets too.
    page.get_by_role("button", name=re.compile("^Closed")).click()
    expect(row.locator(".csat-badge")).to_have_text("Rated 4/5", timeout=SETTLE)
    _shot(page, "rated")


def test_on_a_phone_the_waiting_line_and_the_rating_fit(stack, chromium):
    clock, psid = Clock(), "3000000000000902"
    _handover(stack, clock, psid=psid, name="Bea")
    context = new_context(
        chromium, stack, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = login(context, "ana")
        page.get_by_role("button", name=re.compile("^All open")).click()
        page.locator(".ticket-row", has_text="Bea Rater").click()
        page.locator("#claim-btn").click()
        expect(page.locator("#conv-status")).to_have_text("with you", timeout=SETTLE)
        ticket_id = page.locator("#conversation").get_attribute("data-ticket-id")
        page.get_by_role("button", name="Close…").click()
        expect(page.locator("#close-csat")).to_be_visible()
        _shot(page, "phone-close-dialog")
        page.get_by_label("Outcome").press("Enter")
        csat = page.locator("#closed-csat")
        expect(csat).to_have_text(
            re.compile("^Waiting for the customer's rating until "), timeout=SETTLE
        )
        width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner
        _shot(page, "phone-waiting")
        stack.post_webhook(
            payloads.user_message("5", ts=clock(), psid=psid, quick_reply=f"CSAT:{ticket_id}:5")
        )
        expect(csat).to_have_text("★★★★★Rated 5/5", timeout=SETTLE)
        back = page.locator("#timeline .msg-system", has_text="The conversation went back")
        expect(back).to_be_visible(timeout=SETTLE)
        notice = page.locator("#timeline .msg-automatic").last
        expect(notice.locator(".msg-status")).to_have_text("Sent", timeout=SETTLE)
        width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner
        _shot(page, "phone-rated")
    finally:
        context.close()


XSS_TEXTS = """
from webhooks.models import Page
Page.objects.filter(page_id="{page_id}").update(csat_question={question!r}, csat_thanks={thanks!r})
"""


def test_the_rating_texts_an_admin_sets_are_shown_as_text(stack, context):
    question, thanks = PAYLOADS[2], PAYLOADS[14]
    stack.manage(
        "shell",
        "-c",
        XSS_TEXTS.format(page_id=payloads.PAGE_ID, question=question, thanks=thanks),
    )
    try:
        clock, psid = Clock(), "3000000000000903"
        _handover(stack, clock, psid=psid, name="Cy")
        page = login(context, "ana")
        page.get_by_role("button", name=re.compile("^All open")).click()
        page.locator(".ticket-row", has_text="Cy Rater").click()
        page.locator("#claim-btn").click()
        expect(page.locator("#conv-status")).to_have_text("with you", timeout=SETTLE)
        ticket_id = page.locator("#conversation").get_attribute("data-ticket-id")
        page.get_by_role("button", name="Close…").click()
        page.get_by_label("Outcome").press("Enter")
        shown = page.locator("#timeline .msg-automatic .text")
        expect(shown.first).to_have_text(question, timeout=SETTLE)
        stack.post_webhook(
            payloads.user_message("3", ts=clock(), psid=psid, quick_reply=f"CSAT:{ticket_id}:3")
        )
        expect(page.locator("#closed-csat")).to_have_text("★★★☆☆Rated 3/5", timeout=SETTLE)
        expect(shown.nth(1)).to_have_text(thanks, timeout=SETTLE)
        assert page.evaluate("window.__xss") is None
        assert page.evaluate(INJECTED) == []
    finally:
        stack.manage(
            "shell",
            "-c",
            XSS_TEXTS.format(page_id=payloads.PAGE_ID, question=QUESTION, thanks=THANKS),
        )
