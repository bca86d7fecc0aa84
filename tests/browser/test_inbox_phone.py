"""The inbox on a phone (Chromium at 390 by 844 px, touch): the list and the conversation are
two screens, the conversation with a Back button; the page never scrolls sideways (long
names and unbroken words included), the top bar keeps to one row, and everything the
agent taps is at least 44 px high and wide."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import fake_of, login, new_context
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine
PHONE = {"width": 390, "height": 844}
TOUCH = 44  # px: the smallest touch target

LONG_NAME = "Maximiliana-Konstantinopoulou-Featherstonehaugh"
LONG_WORD = "https://tracking.example/parcel/" + "4417" * 40
# What the agent may tap: controls, the rows, the reply box. Not a link inside a
# message's text (inline, like any text); a radio counts by its label.
TARGETS = """(scope) => [...document.querySelectorAll(scope)]
    .filter((node) => node.getClientRects().length > 0 && !node.closest("[inert]"))
    .filter((node) => !node.closest(".bubble") && node.type !== "radio")
    .map((node) => {
        const box = node.getBoundingClientRect();
        const name = node.id || node.className || node.textContent.trim().slice(0, 30);
        const what = node.tagName.toLowerCase() + " " + name;
        return [what, Math.round(box.width), Math.round(box.height)];
    })"""
CONTROLS = "button, a[href], select, textarea, input, summary, label.choice"


def _fits(page) -> None:
    """No horizontal scroll: the page is no wider than the screen."""
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width} px wide on a {inner} px screen"


def _small_targets(page, scope: str) -> list:
    targets = page.evaluate(TARGETS, scope)
    assert targets, f"nothing to tap in {scope!r}"
    return [t for t in targets if t[1] < TOUCH or t[2] < TOUCH]


def _screen_ok(page, scope: str = f"#app :is({CONTROLS})") -> None:
    _fits(page)
    assert _small_targets(page, scope) == []
    # The top bar is one row: presence, mentions, the bell, the profile and Log out
    # side by side (the brand is for screen readers only there).
    assert page.locator(".topbar").bounding_box()["height"] <= TOUCH + 16


def test_on_a_phone_the_list_and_the_conversation_are_two_screens(stack, chromium):
    clock, psid = Clock(), "3000000000000301"
    fake_of(stack).profiles[psid] = {"first_name": LONG_NAME, "last_name": "", "profile_pic": ""}
    stack.post_webhook(
        payloads.user_message(f"where is it? {LONG_WORD}", ts=clock(), psid=psid),
        channel="standby",
    )
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="human"))
    stack.post_webhook(payloads.user_message(LONG_WORD, ts=clock(), psid=psid))

    context = new_context(chromium, stack, viewport=PHONE, is_mobile=True, has_touch=True)
    errors: list[str] = []
    context.on("page", lambda page: page.on("pageerror", lambda e: errors.append(str(e))))
    try:
        page = login(context, "ana")
        sidebar, conversation = page.locator(".sidebar"), page.locator("#conversation")
        back = page.locator("#back-btn")

        # The list: the whole screen.
        row = page.locator(".ticket-row", has_text=LONG_NAME)
        expect(row).to_be_visible(timeout=SETTLE)
        expect(row.locator(".ticket-preview")).to_have_text(LONG_WORD)
        expect(page.locator(".pane")).to_be_hidden()
        _screen_ok(page)

        # Tap a ticket: the conversation takes the screen, with a way back.
        row.locator(".ticket-link").tap()
        expect(page).to_have_url(re.compile(r"/tickets/\d+/\?queue=waiting$"))
        expect(conversation).to_be_visible()
        expect(sidebar).to_be_hidden()
        expect(back).to_be_visible()
        expect(back).to_have_accessible_name("Back to the tickets")
        expect(page.locator("#conv-name")).to_have_text(LONG_NAME)
        expect(page.locator("#timeline .msg-customer .text").last).to_have_text(LONG_WORD)
        expect(page.locator("#claim-btn")).to_be_focused()  # not the reply box: no keyboard
        _screen_ok(page)

        # Reply.
        composer = page.locator("#composer-text")
        composer.tap()
        composer.fill("Hello! Your parcel left our warehouse this morning.")
        page.locator("#send-btn").tap()
        expect(composer).to_have_value("")
        reply = page.locator("#timeline .msg-agent").last
        expect(reply.locator(".msg-status")).to_have_text("Sent", timeout=SETTLE)
        eventually(
            lambda: [
                c
                for c in fake_of(stack).calls_to("/me/messages")
                if c.body["recipient"] == {"id": psid} and "message" in c.body
            ],
            what="the reply sent",
        )
        expect(page.locator("#conv-status")).to_have_text("with you")
        _screen_ok(page)

        # The dialogs fit too, and so do their controls.
        page.locator("#transfer-btn").tap()
        expect(page.locator("#transfer-dialog")).to_be_visible()
        expect(page.locator("#transfer-targets .choice")).to_have_text(["bo \u2013 Offline"])
        page.locator("#transfer-targets .choice").tap()
        _screen_ok(page, f"#transfer-dialog :is({CONTROLS})")
        page.keyboard.press("Escape")
        page.locator("#close-btn").tap()
        expect(page.locator("#close-dialog")).to_be_visible()
        _screen_ok(page, f"#close-dialog :is({CONTROLS})")
        page.keyboard.press("Escape")
        expect(page.locator("#close-dialog")).to_be_hidden()

        # Back: the list again, where it was, on the row just left.
        back.tap()
        expect(page).to_have_url(re.compile(r"/(\?queue=waiting)?$"))
        expect(sidebar).to_be_visible()
        expect(conversation).to_be_hidden()
        page.get_by_role("button", name=re.compile("^Mine")).tap()
        mine = page.locator(".ticket-row", has_text=LONG_NAME)
        expect(mine.locator(".status-badge")).to_have_text("with you")
        _screen_ok(page)

        # The browser's own Back and Forward go between the two screens as well.
        mine.locator(".ticket-link").tap()
        expect(conversation).to_be_visible()
        expect(composer).to_be_enabled()
        page.go_back()
        expect(sidebar).to_be_visible()
        expect(conversation).to_be_hidden()
        page.go_forward()
        expect(conversation).to_be_visible()
        expect(sidebar).to_be_hidden()
        _screen_ok(page)

        # Wider, both show side by side, and there is no Back button.
        page.set_viewport_size({"width": 1280, "height": 800})
        expect(sidebar).to_be_visible()
        expect(conversation).to_be_visible()
        expect(back).to_be_hidden()
        _fits(page)
        expect(page.locator("#live-notice")).to_be_hidden()
    finally:
        context.close()
    assert errors == []


def test_a_link_to_a_ticket_that_is_not_there_leads_back_to_the_list(stack, chromium):
    context = new_context(chromium, stack, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = login(context, "ana")
        page.goto("/tickets/999999/?queue=waiting")
        placeholder = page.locator("#conversation-placeholder")
        expect(placeholder).to_contain_text("This ticket does not exist or is not yours to see.")
        _screen_ok(page)
        placeholder.get_by_role("button", name="Back to the tickets").tap()
        expect(page.locator(".sidebar")).to_be_visible()
        expect(placeholder).to_be_hidden()
        expect(page).to_have_url(re.compile(r"/\?queue=waiting$"))
    finally:
        context.close()
