"""What an agent does to a ticket, in Chromium against the real stack: opening it (where
the focus goes), the words for where it stands (the same in the list and the header),
closing it with Enter, how a closed ticket says it ended and asks for the conversation
again, and transferring it to someone who may see its page, with a confirmation.

Agents here have full names (Ana Lima, Bo Jensen) and teams: billing (ana, bo, and old,
who left) handles the page; shipping (cy) another one."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import fake_of, login, new_context
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine

STAFF = """
from django.contrib.auth.models import User
from agents.models import Team
from tests.support import factories
from webhooks.models import Page

User.objects.filter(username="ana").update(first_name="Ana", last_name="Lima")
User.objects.filter(username="bo").update(first_name="Bo", last_name="Jensen")
old = User.objects.create_user(
    "old", password="unused-1", is_staff=True, is_active=False, first_name="Old", last_name="Timer"
)
cy = User.objects.create_user(
    "cy", password="unused-1", is_staff=True, first_name="Cy", last_name="Shipping"
)
billing = Team.objects.create(name="billing")
billing.pages.add(Page.objects.get(page_id="{page_id}"))
billing.members.add(User.objects.get(username="ana"), User.objects.get(username="bo"), old)
shipping = Team.objects.create(name="shipping")
shipping.pages.add(factories.page(page_id="1000000000000077", name="Shipping"))
shipping.members.add(cy)
"""


@pytest.fixture(scope="module", autouse=True)
def staff(stack) -> None:
    stack.manage("shell", "-c", STAFF.replace("{page_id}", payloads.PAGE_ID))


def _handover(stack, clock, *, psid: str, text: str, name: str) -> None:
    fake_of(stack).profiles[psid] = {"first_name": name, "last_name": "Tester", "profile_pic": ""}
    stack.post_webhook(payloads.user_message(text, ts=clock(), psid=psid), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="a human please"))


def _calls(stack, path: str, psid: str) -> list:
    return [c for c in fake_of(stack).calls_to(path) if c.body["recipient"] == {"id": psid}]


def _focused(page) -> str:
    return page.evaluate("document.activeElement.id")


def _badges(page, name: str, status: str) -> None:
    """The list's row and the header say the same about where the ticket stands."""
    row = page.locator(".ticket-row", has_text=name)
    expect(row.locator(".status-badge")).to_have_text(status, timeout=SETTLE)
    expect(page.locator("#conv-status")).to_have_text(status)


def test_closing_with_enter_and_what_a_closed_ticket_says(stack, context):
    clock, psid = Clock(), "3000000000000401"
    _handover(stack, clock, psid=psid, text="my order never came", name="Grace")
    page = login(context, "ana")
    page.get_by_role("button", name=re.compile("^All open")).click()
    row = page.locator(".ticket-row", has_text="Grace Tester")
    expect(row).to_be_visible(timeout=SETTLE)
    expect(row.locator(".control-badge")).to_have_count(0)  # the helpdesk has the thread

    # Opened while it waits: Claim has the focus. Claimed: the reply box.
    row.click()
    expect(page.locator("#claim-btn")).to_be_focused()
    _badges(page, "Grace Tester", "waiting")
    page.keyboard.press("Enter")
    _badges(page, "Grace Tester", "with you")
    expect(page.locator("#composer-text")).to_be_focused()
    page.keyboard.type("Let me look into it.")
    page.keyboard.press("Enter")
    reply = page.locator("#timeline .msg-agent").last
    expect(reply.locator(".author")).to_have_text("Ana Lima (you)")
    expect(reply.locator(".msg-status")).to_have_text("Sent", timeout=SETTLE)

    # Enter in the Outcome field closes the ticket (it used to cancel, silently).
    page.get_by_role("button", name="Close…").click()
    page.get_by_label("Outcome").fill("refunded")
    page.get_by_label("Outcome").press("Enter")
    [passed] = eventually(
        lambda: _calls(stack, "/me/pass_thread_control", psid), what="control passed back"
    )
    assert json.loads(passed.body["metadata"])["outcome"] == "refunded"
    expect(page.locator("#conv-status")).to_have_text("closed", timeout=SETTLE)

    # Closed: how it ended, instead of a countdown and a reply box.
    panel = page.locator("#closed-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#closed-summary")).to_have_text(
        re.compile(r"^Closed by you · refunded · \d{1,2}:\d{2}( [AP]M)?$")
    )
    expect(page.locator("#closed-control")).to_have_text(
        "The conversation is back with the bot.", timeout=SETTLE
    )
    expect(page.locator("#composer")).to_be_hidden()
    expect(page.locator("#conv-windows")).to_be_hidden()
    page.get_by_role("button", name=re.compile("^Closed")).click()
    _badges(page, "Grace Tester", "closed")

    # The window is open and Grace has no other ticket: ask for the conversation again.
    ask = page.get_by_role("button", name="Ask for the conversation again")
    ask.click()
    eventually(lambda: _calls(stack, "/me/request_thread_control", psid), what="the request")
    expect(page.locator("#closed-control")).to_have_text(
        "The bot was asked for the conversation again; waiting for it to pass it."
    )
    expect(page.locator("#conv-control")).to_have_text("control requested")
    expect(row.locator(".control-badge")).to_have_text("control requested", timeout=SETTLE)
    expect(ask).to_be_hidden()
    assert len(_calls(stack, "/me/request_thread_control", psid)) == 1

    # The bot passes it: the ticket waits again, with its reply box.
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="here you go"))
    expect(page.locator("#conv-status")).to_have_text("waiting", timeout=SETTLE)
    expect(panel).to_be_hidden()
    expect(page.locator("#composer")).to_be_visible()
    expect(page.locator("#conv-control")).to_be_hidden()

    # Esc cancels a close, even after a close went through in this page before.
    page.get_by_role("button", name="Close…").click()
    expect(page.locator("#close-dialog")).to_be_visible()
    expect(page.get_by_label("Outcome")).to_have_value("resolved")  # not the last one's
    page.keyboard.press("Escape")
    expect(page.locator("#close-dialog")).to_be_hidden()
    page.get_by_role("button", name="Claim").click()  # any action: the state is read again
    expect(page.locator("#conv-status")).to_have_text("with you")
    assert len(_calls(stack, "/me/pass_thread_control", psid)) == 1


def test_a_transfer_lists_who_may_see_the_page_asks_and_says_what_happened(
    stack, chromium, context
):
    clock, psid = Clock(), "3000000000000402"
    _handover(stack, clock, psid=psid, text="please pass me to billing", name="Kim")
    ana = login(context, "ana")
    ana.get_by_role("button", name=re.compile("^All open")).click()
    row = ana.locator(".ticket-row", has_text="Kim Tester")
    expect(row).to_be_visible(timeout=SETTLE)
    row.click()
    dialog, choices = ana.locator("#transfer-dialog"), ana.locator("#transfer-targets .choice")
    next_button = ana.locator("#transfer-next")

    # Waiting: whoever may see the page, the agent too. Not cy (shipping), not old (left).
    # Each with their presence (issue 11): Ana has the inbox open, Bo has none.
    ana.get_by_role("button", name="Transfer…").click()
    expect(choices).to_have_text(["Ana Lima (you) \u2013 Online", "Bo Jensen \u2013 Offline"])
    expect(next_button).to_be_disabled()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    # Claimed: not its assignee. Nobody chosen, nothing to confirm.
    ana.get_by_role("button", name="Claim").click()
    _badges(ana, "Kim Tester", "with you")
    ana.get_by_role("button", name="Transfer…").click()
    expect(choices).to_have_text(["Bo Jensen \u2013 Offline"])
    expect(next_button).to_be_disabled()
    choices.filter(has_text="Bo Jensen").click()
    expect(next_button).to_be_enabled()
    next_button.click()
    expect(ana.locator("#transfer-question")).to_have_text("Transfer to Bo Jensen?")
    expect(ana.locator("#conv-status")).to_have_text("with you")  # not yet
    dialog.get_by_role("button", name="Transfer", exact=True).click()

    expect(dialog).to_be_hidden()
    expect(ana.locator("#conv-notice")).to_have_text("Transferred to Bo Jensen.")
    _badges(ana, "Kim Tester", "with Bo Jensen")
    expect(ana.get_by_role("button", name="Transfer…")).to_be_hidden()
    expect(ana.locator("#composer-lock-reason")).to_have_text(
        "This ticket is assigned to Bo Jensen."
    )

    bo_context = new_context(chromium, stack, viewport={"width": 1280, "height": 800})
    try:
        bo = login(bo_context, "bo")
        bo.get_by_role("button", name=re.compile("^Mine")).click()
        mine = bo.locator(".ticket-row", has_text="please pass me to billing")
        expect(mine.locator(".status-badge")).to_have_text("with you", timeout=SETTLE)
        mine.click()
        _badges(bo, "Kim Tester", "with you")
        expect(bo.locator("#composer-text")).to_be_focused()
        expect(bo.locator("#timeline .msg-event .system-text").last).to_contain_text(
            "from Ana Lima to Bo Jensen"
        )
    finally:
        bo_context.close()
