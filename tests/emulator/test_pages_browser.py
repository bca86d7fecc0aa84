"""The customer and control pages in Debian's Chromium (Playwright), against a running
emulator. Nothing leaves loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, NOT_LOOPBACK
from tests.emulator.support import BOT, HELPDESK, HELPDESK_SECRET, HELPDESK_TOKEN, PAGE, PSID
from webhooks.emulator.platform import appsecret_proof

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, emulator) -> Iterator[Any]:
    context = browser.new_context(
        base_url=emulator.base_url, viewport={"width": 1000, "height": 800}
    )
    context.route(NOT_LOOPBACK, lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def helpdesk(emulator, body: dict[str, Any], edge: str = "messages") -> None:
    result = emulator.graph_call(
        "POST",
        f"/me/{edge}",
        {"recipient": {"id": PSID}, **body},
        access_token=HELPDESK_TOKEN,
        appsecret_proof=appsecret_proof(HELPDESK_SECRET, HELPDESK_TOKEN),
    )
    assert result.status == 200, result.body


def test_the_customer_chats_with_the_bot_taps_a_quick_reply_and_a_button(page, emulator):
    page.goto(f"/?psid={PSID}")
    page.locator("#composer").fill("hello")
    page.locator("#send").click()
    expect(page.locator(".message[data-author=user]").last).to_contain_text("hello")
    expect(page.locator(".message[data-author=bot]").last).to_contain_text(
        "Hi! I'm the Demo Page bot"
    )
    expect(page.locator("#thread-owner")).to_contain_text("Handled by Demo Bot")

    page.locator(".quick-reply", has_text="Opening hours").click()
    expect(page.locator(".message[data-author=bot]").last).to_contain_text("Monday to Friday")

    page.locator(".postback-button", has_text="Talk to a human").last.click()
    expect(page.locator(".message[data-author=bot]").last).to_contain_text("A person from our team")
    expect(page.locator(".message[data-author=user]").last).to_contain_text("Talk to a human")


def test_agent_messages_and_typing_arrive_live_and_text_is_never_html(page, emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    helpdesk(emulator, {"metadata": "agent"}, edge="request_thread_control")
    assert emulator.wait_idle()
    page.goto(f"/?psid={PSID}")
    expect(page.locator("#thread-owner")).to_contain_text("Handled by Helpdesk")
    helpdesk(emulator, {"sender_action": "typing_on"})
    expect(page.locator("#typing")).to_be_visible()
    expect(page.locator("#typing")).to_contain_text("Helpdesk is typing")
    evil = '<img src=x onerror="document.title=1">'
    helpdesk(emulator, {"messaging_type": "RESPONSE", "message": {"text": evil}})
    agent = page.locator(".message[data-author=agent]").last
    expect(agent.locator(".text")).to_have_text(evil)
    expect(page.locator("#typing")).to_be_hidden()
    assert page.locator("#messages img").count() == 0
    # The page read the agent's message: Messenger's receipts went out.
    emulator.wait_for(
        lambda: any(
            "read" in e
            for d in emulator.deliveries()
            for entry in d.payload["entry"]
            for e in entry.get("messaging", []) + entry.get("standby", [])
        ),
        what="a read receipt",
    )


def test_a_new_user_from_the_customer_page(page, emulator):
    page.goto("/")
    page.locator("#new-user-first").fill("Grace")
    page.locator("#new-user-last").fill("Hopper")
    page.locator("#new-user").click()
    expect(page.locator("#user-select")).to_contain_text("Grace Hopper")
    page.locator("#composer").fill("hi, I'm new")
    page.locator("#send").click()
    expect(page.locator(".message[data-author=bot]")).to_have_count(1)
    assert re.search(r"psid=\d+", page.url)


def test_the_control_page_shows_threads_and_the_bot_takes_control(page, emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    helpdesk(emulator, {}, edge="request_thread_control")
    assert emulator.wait_idle()
    page.goto("/control")
    row = page.locator(f"#threads-table tr[data-psid='{PSID}']")
    expect(row.locator(".owner")).to_contain_text("Helpdesk")
    row.locator(".take-control").click()
    expect(row.locator(".owner")).to_contain_text("Demo Bot")
    assert emulator.owner(PSID) == BOT
    expect(page.locator("#deliveries-table tbody tr").first).to_be_visible()
    page.locator(".advance-preset[data-hours='24']").click()
    expect(page.locator("#clock-offset")).to_contain_text("+24.0 h")
    expect(row.locator(".owner")).to_contain_text("idle")


SHOTS = Path("/tmp/shots-emu10")


def shoot(page, name: str) -> None:
    """Screenshots at a desktop and a phone width, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1000, "height": 800})


def test_the_control_page_shows_and_switches_the_pages_routing_and_faults(page, emulator):
    emulator.page_requests_refused_set(True)
    emulator.page_take_allowed_set(HELPDESK, True)
    emulator.token_expire(HELPDESK)
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    page.goto("/control")
    setup = page.locator(f".page-setup[data-page-id='{PAGE}']")
    expect(setup.locator(".page-summary")).to_have_text(
        "Routing: Conversation Routing with a default app (Demo Bot)"
        " · requests refused · may take: Helpdesk, Demo Bot",
        use_inner_text=True,
    )
    expect(setup.locator(".page-restricted-note")).to_be_hidden()
    expect(setup.locator(".requests-refused")).to_be_checked()
    helpdesk_row = setup.locator(f".app-fault-row[data-app-id='{HELPDESK}']")
    expect(helpdesk_row.locator(".token-expired")).to_be_checked()
    expect(helpdesk_row.locator(".permission-revoked")).not_to_be_checked()

    # A person restricts the page and revokes the helpdesk's permission...
    setup.locator(".page-restricted").check()
    expect(setup.locator(".page-restricted-note")).to_be_visible()
    expect(setup.locator(".page-summary")).to_contain_text("RESTRICTED from sending")
    helpdesk_row.locator(".permission-revoked").check()
    emulator.wait_for(
        lambda: emulator.state()["apps"][1]["subscriptions"][0]["permission_revoked"],
        what="the permission revoked",
    )
    assert emulator.state()["pages"][0]["restricted"] is True
    shoot(page, "control-cr-take")

    # ...forbids the helpdesk to take, reissues its token, and switches to zero-config.
    setup.locator(f".take-allowed-label[data-app-id='{HELPDESK}'] input").uncheck()
    expect(setup.locator(".page-summary")).to_contain_text("may take: Demo Bot")
    helpdesk_row.locator(".token-reissue").click()
    expect(helpdesk_row.locator(".reissued-token")).to_contain_text("new token: EAA")
    expect(helpdesk_row.locator(".token-expired")).not_to_be_checked()
    setup.locator(".page-mode").select_option("cr-zero-config")
    expect(setup.locator(".page-mode-text")).to_have_text(
        "Conversation Routing without a default app (zero-config)"
    )
    expect(setup.locator(".requests-refused")).to_be_disabled()
    [state] = emulator.state()["pages"]
    assert (state["mode"], state["primary_app_id"], state["take_control_app_ids"]) == (
        "cr-zero-config",
        None,
        [BOT],
    )
    shoot(page, "control-zero-config")


def test_the_customer_sees_the_agents_persona_and_its_typing(page, emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    helpdesk(emulator, {}, edge="request_thread_control")
    assert emulator.wait_idle()
    persona = emulator.graph_call(
        "POST",
        "/me/personas",
        {"name": "Grace (Support)"},
        access_token=HELPDESK_TOKEN,
        appsecret_proof=appsecret_proof(HELPDESK_SECRET, HELPDESK_TOKEN),
    ).body["id"]
    page.goto(f"/?psid={PSID}")
    helpdesk(emulator, {"sender_action": "typing_on", "persona_id": persona})
    expect(page.locator("#typing")).to_contain_text("Grace (Support) is typing…")
    shoot(page, "customer-persona-typing")
    helpdesk(
        emulator,
        {
            "messaging_type": "RESPONSE",
            "message": {"text": "Hi Ada, how can I help?"},
            "persona_id": persona,
        },
    )
    agent = page.locator(".message[data-author=agent]").last
    expect(agent.locator(".persona-name")).to_have_text("Grace (Support)")
    expect(agent.locator(".persona-picture")).to_have_text("G")
    expect(page.locator("#typing")).to_be_hidden()
    shoot(page, "customer-persona")
