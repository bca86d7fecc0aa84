"""Presence and routing in Chromium against the real stack (Daphne, Celery, beat, Redis):
an agent sets themselves Away in the top bar, a new ticket goes to the online agent and
shows in their Mine queue live, and presence is shown next to names in the transfer
dialog, changing live. Screenshots at 1280 and 390 px go to SHOTS_DIR (or a temp dir)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import fake_of, login, new_context
from tests.support import payloads
from tests.support.stack import Clock

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine
SHOTS = Path(os.environ.get("SHOTS_DIR") or tempfile.mkdtemp(prefix="shots-routing-"))

TEAM = """
from django.contrib.auth.models import User
from agents.models import Team, TeamRouting
from webhooks.models import Page

User.objects.filter(username="ana").update(first_name="Ana", last_name="Lima")
User.objects.filter(username="bo").update(first_name="Bo", last_name="Jensen")
team = Team.objects.create(name="support")
team.pages.add(Page.objects.get(page_id="{page_id}"))
team.members.add(User.objects.get(username="ana"), User.objects.get(username="bo"))
TeamRouting.objects.create(team=team, capacity=3)
"""


@pytest.fixture(scope="module", autouse=True)
def team(stack) -> None:
    stack.manage("shell", "-c", TEAM.replace("{page_id}", payloads.PAGE_ID))


def _handover(stack, clock, *, psid: str, name: str) -> None:
    fake_of(stack).profiles[psid] = {"first_name": name, "last_name": "Tester", "profile_pic": ""}
    stack.post_webhook(
        payloads.user_message("I need a person", ts=clock(), psid=psid), channel="standby"
    )
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="a human please"))


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def test_away_online_and_a_new_ticket_assigned_live(stack, chromium, context):
    clock = Clock()
    ana = login(context, "ana")
    ana.get_by_role("button", name=re.compile("^Mine")).click()
    expect(ana.locator("#presence-toggle")).to_have_text("Online")

    bo_context = new_context(chromium, stack, viewport={"width": 390, "height": 844})
    try:
        bo = login(bo_context, "bo")
        toggle = bo.locator("#presence-toggle")
        expect(toggle).to_have_text("Online")
        toggle.click()
        expect(toggle).to_have_text("Away")
        expect(toggle).to_have_attribute("data-presence", "away")
        _shot(bo, "presence-away-390.png")

        # Bo is away: the new ticket goes to Ana, live, into her Mine queue.
        _handover(stack, clock, psid="3000000000000701", name="Hedy")
        row = ana.locator(".ticket-row", has_text="Hedy Tester")
        expect(row).to_be_visible(timeout=SETTLE)
        expect(ana.locator('[data-count="mine"]')).to_have_text("1", timeout=SETTLE)
        bo.get_by_role("button", name=re.compile("^Mine")).click()
        expect(bo.locator("#ticket-list-empty")).to_be_visible()

        # Presence next to names: Bo is away, then online again, live in the dialog.
        row.click()
        expect(ana.locator("#conv-status")).to_have_text("with you")
        ana.locator("#transfer-btn").click()
        bo_choice = ana.locator("#transfer-targets .choice", has_text="Bo Jensen")
        expect(bo_choice.locator(".presence-badge")).to_have_text("Away", timeout=SETTLE)
        _shot(ana, "presence-transfer-1280.png")
        toggle.click()
        expect(toggle).to_have_text("Online")
        expect(bo_choice.locator(".presence-badge")).to_have_text("Online", timeout=SETTLE)
        ana.keyboard.press("Escape")

        # Bo online with no ticket: the next one goes to him (fewer open tickets).
        _handover(stack, clock, psid="3000000000000702", name="Ida")
        expect(bo.locator(".ticket-row", has_text="Ida Tester")).to_be_visible(timeout=SETTLE)
        expect(ana.locator(".ticket-row", has_text="Ida Tester")).to_have_count(0)
        _shot(bo, "presence-mine-390.png")
        _shot(ana, "presence-inbox-1280.png")
    finally:
        bo_context.close()
