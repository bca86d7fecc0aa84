"""Django admin in Chromium, as the support lead uses it: the index in sections, closing
a ticket from the list (the conversation goes back to the bot), a refused add form.
At a desktop and a phone width; the screenshots are for people to look at."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from agents.services import doctor
from tests.browser.support import fake_of
from tests.support import payloads
from tests.support.fakegraph import Scripted
from tests.support.polling import eventually
from tests.support.stack import PASSWORD, Clock

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SETTLE = 10_000  # ms: a round trip through Celery on a loaded machine


@pytest.fixture(scope="module")
def lead(stack) -> str:
    stack.manage("create_agent", "lead", "--password", PASSWORD, "--admin")
    return "lead"


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where the screenshots go: ADMIN_SHOTS if set (to look at them), else tmp."""
    folder = Path(os.environ.get("ADMIN_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _admin(context, lead: str, width: str):
    page = context.new_page()
    page.set_viewport_size(WIDTHS[width])
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(lead)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    return page


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_index_shows_setup_apart_from_history(context, lead, width, shots):
    page = _admin(context, lead, width)

    main = page.locator("#content-main")
    captions = main.locator("caption")
    expect(captions).to_have_text(["Setup", "Conversations", "History"])
    setup = main.locator(".app-setup")
    expect(setup.get_by_role("link", name="Facebook pages")).to_be_visible()
    expect(setup.get_by_role("link", name="Agents", exact=True)).to_be_visible()
    history = main.locator(".app-history")
    expect(history.get_by_role("link", name="Handover history")).to_be_visible()
    expect(history.get_by_role("link", name="Meta API calls")).to_be_visible()
    expect(history.locator("a.addlink")).to_have_count(0)
    page.screenshot(path=str(shots / f"admin-index-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_closing_a_ticket_from_the_list_hands_it_back_to_the_bot(
    context, stack, lead, width, shots
):
    clock, fake = Clock(), fake_of(stack)
    psid = {"desktop": "3000000000000901", "phone": "3000000000000902"}[width]
    fake.profiles[psid] = {"first_name": "Hedy", "last_name": width, "profile_pic": ""}
    stack.post_webhook(payloads.user_message("help", ts=clock(), psid=psid), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="a human"))
    page = _admin(context, lead, width)

    page.goto("/admin/agents/ticket/")
    row = page.locator("#result_list tbody tr", has_text=f"Hedy {width}")
    expect(row).to_be_visible(timeout=SETTLE)
    expect(row).to_contain_text("helpdesk owns the thread")
    row.locator("input.action-select").check()
    page.locator("select[name=action]").select_option("close_and_hand_back")
    page.screenshot(path=str(shots / f"admin-tickets-{width}.png"), full_page=True)
    if width == "desktop":  # from the list
        page.get_by_role("button", name="Go").click()
    else:  # from the ticket's own page
        row.get_by_role("link").first.click()
        page.screenshot(path=str(shots / f"admin-ticket-open-{width}.png"), full_page=True)
        page.get_by_role("button", name="Close and hand back to the bot").click()

    expect(page.get_by_role("heading", name="Close and hand back to the bot")).to_be_visible()
    expect(page.locator(".ticket-action-tickets")).to_contain_text(f"Hedy {width} on E2E Page")
    page.get_by_label("Outcome").fill("resolved in admin")
    page.screenshot(path=str(shots / f"admin-close-form-{width}.png"), full_page=True)
    page.get_by_role("button", name="Close and hand back").click()

    expect(page.locator(".messagelist")).to_contain_text(
        "closed; the conversation is being handed back to the bot."
    )

    def passed() -> list:
        return [
            c
            for c in fake.calls_to("/me/pass_thread_control")
            if c.body["recipient"] == {"id": psid}
        ]

    eventually(passed, timeout=SETTLE / 1000, what="the hand-back to the bot")
    page.reload()
    expect(row).to_contain_text("bot owns the thread", timeout=SETTLE)
    expect(row).to_contain_text("Closed")
    assert [c.body["target_app_id"] for c in passed()] == [payloads.BOT_APP_ID]
    page.screenshot(path=str(shots / f"admin-closed-{width}.png"), full_page=True)

    # The ticket's own page shows what happened, and offers nothing to edit.
    row.get_by_role("link").first.click()
    expect(page.locator("#content h2", has_text="Ticket history")).to_be_visible()
    expect(page.locator(".field-closing_note")).to_contain_text("resolved in admin")
    expect(page.locator("#content-main").get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("link", name="Back to the tickets")).to_be_visible()
    expect(page.locator("#content-main select")).to_have_count(0)
    page.screenshot(path=str(shots / f"admin-ticket-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_a_page_with_a_bad_id_is_refused_in_the_form(context, lead, width, shots):
    page = _admin(context, lead, width)

    page.goto("/admin/webhooks/page/add/")
    page.get_by_label("Page id").fill(f"acme-{width}")
    page.get_by_label("Name").fill("Acme")
    page.get_by_label("Page access token").fill("secret-token")
    page.get_by_label("Bot app id").fill("42")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-page_id .errorlist")).to_have_text(
        f"The page id must be numeric, not 'acme-{width}'."
    )
    expect(page.get_by_label("Page access token")).to_have_value("")
    page.screenshot(path=str(shots / f"admin-page-refused-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_assigning_from_the_list_offers_the_agents_and_says_what_happened(
    context, stack, lead, width, shots
):
    clock, fake = Clock(), fake_of(stack)
    psid = {"desktop": "3000000000000911", "phone": "3000000000000912"}[width]
    fake.profiles[psid] = {"first_name": "Ida", "last_name": width, "profile_pic": ""}
    stack.post_webhook(payloads.user_message("help", ts=clock(), psid=psid), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="a human"))
    page = _admin(context, lead, width)

    page.goto("/admin/agents/ticket/")
    row = page.locator("#result_list tbody tr", has_text=f"Ida {width}")
    expect(row).to_be_visible(timeout=SETTLE)
    row.locator("input.action-select").check()
    page.locator("select[name=action]").select_option("assign")
    page.get_by_role("button", name="Go").click()

    agent = page.get_by_label("Assign to")
    expect(agent.locator("option")).to_contain_text(["---------", "ana", "bo", "lead"])
    agent.select_option(label="bo")
    page.screenshot(path=str(shots / f"admin-assign-form-{width}.png"), full_page=True)
    page.get_by_role("button", name="Assign", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("assigned to bo.")
    expect(row).to_contain_text("Open")
    expect(row).to_contain_text("bo")
    page.goto("/admin/agents/controltransition/")
    expect(
        page.get_by_role("heading", name="Select handover history entry to view")
    ).to_be_visible()
    page.screenshot(path=str(shots / f"admin-handover-history-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_doctor_page_says_what_is_wrong_and_fixes_the_subscription(
    context, stack, lead, width, shots
):
    fake = fake_of(stack)
    fields = list(doctor.NEEDED_FIELDS)
    fake.scripted["/debug_token"].append(
        Scripted(
            200,
            {
                "data": {
                    "app_id": payloads.APP_ID,
                    "type": "PAGE",
                    "expires_at": 0,
                    "is_valid": True,
                    "profile_id": payloads.PAGE_ID,
                    "scopes": ["pages_manage_metadata", "pages_messaging", "pages_show_list"],
                }
            },
        )
    )
    # The app was subscribed without standby: the helpdesk hears nothing while the bot talks.
    without_standby = [f for f in fields if f != "standby"]
    fake.scripted["/me/subscribed_apps"].extend(
        [
            Scripted(
                200,
                {"data": [{"id": payloads.APP_ID, "subscribed_fields": without_standby}]},
                when=lambda call: call.method == "GET",
            ),
            Scripted(200, {"success": True}, when=lambda call: call.method == "POST"),
        ]
    )
    page = _admin(context, lead, width)
    page.get_by_role("link", name="Doctor: is Meta still talking to us?").click()
    page.wait_for_url(re.compile(r"/admin/doctor/$"))

    token = page.locator('[data-check="Page token"]')
    expect(token).to_have_attribute("data-status", "ok")
    expect(token).to_contain_text("Valid for this Page and this app")
    subscription = page.locator('[data-check="Webhook subscription"]')
    expect(subscription).to_have_attribute("data-status", "failing")
    expect(subscription).to_contain_text("Subscribed without standby.")
    expect(page.locator('[data-check="Celery workers"]')).to_have_attribute("data-status", "ok")
    expect(page.locator('[data-check="Database"]')).to_have_attribute("data-status", "ok")
    # Nothing to scroll sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS[width]["width"]
    page.screenshot(path=str(shots / f"doctor-{width}.png"), full_page=True)

    def posts() -> list[Any]:
        return [c for c in fake.calls_to("/me/subscribed_apps") if c.method == "POST"]

    before = len(posts())
    button = subscription.get_by_role("button", name="Subscribe with every needed field")
    button.click()
    page.wait_for_url(re.compile(r"/admin/doctor/\?page=\d+"))
    expect(page.locator(".messagelist")).to_contain_text(
        "Subscribed to E2E Page with messages, standby"
    )
    [subscribe] = posts()[before:]
    assert subscribe.body == {"subscribed_fields": ",".join(fields)}
