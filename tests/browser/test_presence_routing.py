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
from tests.support.polling import eventually
from tests.support.stack import PASSWORD, Clock

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
User.objects.create_superuser("root", password="{password}")
"""


@pytest.fixture(scope="module", autouse=True)
def team(stack) -> None:
    stack.manage(
        "shell",
        "-c",
        TEAM.replace("{page_id}", payloads.PAGE_ID).replace("{password}", PASSWORD),
    )


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
        _shot(bo, "routing-away-phone.png")

        # Bo is away: the new ticket goes to Ana, live, into her Mine queue.
        _handover(stack, clock, psid="3000000000000701", name="Hedy")
        row = ana.locator(".ticket-row", has_text="Hedy Tester")
        expect(row).to_be_visible(timeout=SETTLE)
        expect(ana.locator('[data-count="mine"]')).to_have_text("1", timeout=SETTLE)
        bo.get_by_role("button", name=re.compile("^Mine")).click()
        expect(bo.locator("#ticket-list-empty")).to_be_visible()

        # Presence next to names: Bo is away, then online again, live in the dialog.
        expect(row.locator(".status-badge")).to_have_text("with you")
        row.click()
        expect(ana.locator("#conv-status")).to_have_text("with you")
        ana.locator("#transfer-btn").click()
        bo_choice = ana.locator("#transfer-targets .choice", has_text="Bo Jensen")
        expect(bo_choice).to_have_text("Bo Jensen \u2013 Away", timeout=SETTLE)
        _shot(ana, "routing-transfer.png")
        toggle.click()
        expect(toggle).to_have_text("Online")
        expect(bo_choice).to_have_text("Bo Jensen \u2013 Online", timeout=SETTLE)
        ana.keyboard.press("Escape")

        # Bo online with no ticket: the next one goes to him (fewer open tickets).
        _handover(stack, clock, psid="3000000000000702", name="Ida")
        expect(bo.locator(".ticket-row", has_text="Ida Tester")).to_be_visible(timeout=SETTLE)
        expect(ana.locator(".ticket-row", has_text="Ida Tester")).to_have_count(0)
        _shot(bo, "routing-mine-phone.png")
        _shot(ana, "routing-inbox.png")
    finally:
        bo_context.close()


HOURS = """
from datetime import time
from django.utils import timezone
from agents.models import Holiday, OfficeHours, PageRouting, Team, TeamRouting
from webhooks.models import Page

team = Team.objects.get(name="support")
routing = TeamRouting.objects.get(team=team)
routing.time_zone = "Europe/Paris"
routing.save()
for day in range(7):
    OfficeHours.objects.create(routing=routing, weekday=day, opens=time(9), closes=time(18))
today = timezone.now().astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")).date()
Holiday.objects.create(routing=routing, date=today, name="Company day")
PageRouting.objects.create(page=Page.objects.get(page_id="{page_id}"), team=team)
"""


def test_outside_hours_the_customer_is_told_when_the_team_is_back(stack, chromium, context):
    """Today is a holiday of the team: the customer who asks for a person is told when
    the team is back (tomorrow 9:00, Paris), in the agent's timeline too."""
    from datetime import datetime, timedelta  # noqa: PLC0415
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    stack.manage("shell", "-c", HOURS.replace("{page_id}", payloads.PAGE_ID))
    tomorrow = datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)
    expected = f"We're back at {tomorrow:%A} 9:00. The assistant can help meanwhile."
    clock = Clock()
    ana = login(context, "ana")
    ana.get_by_role("button", name=re.compile("^All open")).click()

    _handover(stack, clock, psid="3000000000000703", name="Joan")

    row = ana.locator(".ticket-row", has_text="Joan Tester")
    # Assigned to Ana (online; outside hours too): the row settles before it is opened.
    expect(row.locator(".status-badge")).to_have_text("with you", timeout=SETTLE)
    row.click()
    timeline = ana.locator("#timeline")
    expect(timeline).to_contain_text(expected, timeout=SETTLE)
    expect(timeline).to_contain_text(
        f"Nobody could answer yet (outside office hours; opens {tomorrow:%A} 9:00, "
        "Europe/Paris): the customer was told"
    )
    sends = [
        c.body
        for c in fake_of(stack).calls_to("/me/messages")
        if c.body.get("recipient") == {"id": "3000000000000703"} and "message" in c.body
    ]
    assert [(b["message"]["text"], b["messaging_type"], b.get("tag")) for b in sends] == [
        (expected, "RESPONSE", None)
    ]
    _shot(ana, "routing-honest.png")

    phone = new_context(chromium, stack, viewport={"width": 390, "height": 844})
    try:
        small = login(phone, "ana")
        small.goto(ana.url)
        expect(small.locator("#timeline")).to_contain_text(expected, timeout=SETTLE)
        _shot(small, "routing-honest-phone.png")
    finally:
        phone.close()

    # The admin's side: the team's routing, its office hours and holidays.
    admin_context = new_context(chromium, stack, viewport={"width": 1280, "height": 1400})
    try:
        admin = admin_context.new_page()
        admin.goto("/admin/login/?next=/admin/agents/teamrouting/")
        admin.get_by_label("Username").fill("root")
        admin.get_by_label("Password").fill(PASSWORD)
        admin.get_by_role("button", name="Log in").click()
        admin.locator("#result_list").get_by_role("link", name="support", exact=True).click()
        expect(admin.locator("#id_holidays-0-name")).to_have_value("Company day")
        _shot(admin, "routing-admin.png")
    finally:
        admin_context.close()

    # The bot passes a conversation whose customer never wrote to us: the 24-hour window
    # is shut, nothing is sent, and the timeline says so rather than "was told".
    psid = "3000000000000705"
    fake_of(stack).profiles[psid] = {"first_name": "Kim", "last_name": "Tester", "profile_pic": ""}
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="a human please"))
    row = ana.locator(".ticket-row", has_text="Kim Tester")
    expect(row.locator(".status-badge")).to_have_text("with you", timeout=SETTLE)
    row.click()
    expect(timeline).to_contain_text(
        f"Nobody could answer yet (outside office hours; opens {tomorrow:%A} 9:00, "
        "Europe/Paris). The customer was not told: The 24-hour messaging window is closed",
        timeout=SETTLE,
    )
    expect(timeline).not_to_contain_text("the customer was told")
    # (Opening it may send mark_seen, a sender action: no message.)
    sent = [c for c in fake_of(stack).calls_to("/me/messages") if _to(c, psid)]
    assert [c.body for c in sent if "message" in c.body] == []
    _shot(ana, "routing-untold.png")
    ana.set_viewport_size({"width": 390, "height": 844})
    _shot(ana, "routing-untold-phone.png")

    # Kim writes: the window opens and the message they were owed follows theirs, once.
    stack.post_webhook(payloads.user_message("hello?", ts=clock(), psid=psid))
    told = f"Nobody could answer yet (outside office hours; opens {tomorrow:%A} 9:00, "
    expect(timeline).to_contain_text(f"{told}Europe/Paris): the customer was told", timeout=SETTLE)
    expect(timeline).to_contain_text(expected)

    def texts_to_kim() -> list[str]:
        sent = [c for c in fake_of(stack).calls_to("/me/messages") if _to(c, psid)]
        return [c.body["message"]["text"] for c in sent if "message" in c.body]

    assert eventually(texts_to_kim, timeout=SETTLE / 1000, what="the owed notice") == [expected]
    _shot(ana, "routing-told-later-phone.png")
    ana.set_viewport_size({"width": 1280, "height": 800})
    _shot(ana, "routing-told-later.png")


XSS_AGENT = """
from django.contrib.auth.models import User
from agents.models import Team
from tests.support.xss import PAYLOADS

User.objects.filter(username="eve").update(first_name=PAYLOADS[2], last_name="")
Team.objects.get(name="support").members.add(User.objects.get(username="eve"))
"""


def test_an_agents_name_in_the_assigned_line_is_shown_as_text(stack, context):
    """The only agent online gets the ticket; their name (markup, as an admin could type
    it) is shown as text in "Assigned automatically", and nothing of it runs."""
    from tests.browser.test_xss import INJECTED  # noqa: PLC0415 -- the same checks
    from tests.support.xss import PAYLOADS  # noqa: PLC0415

    stack.agent_token("eve")
    stack.manage("shell", "-c", XSS_AGENT)
    eve = login(context, "eve")
    eve.get_by_role("button", name=re.compile("^Mine")).click()
    expect(eve.locator("#presence-toggle")).to_have_text("Online")

    _handover(stack, Clock(), psid="3000000000000704", name="Kit")

    row = eve.locator(".ticket-row", has_text="Kit Tester")
    expect(row.locator(".status-badge")).to_have_text("with you", timeout=SETTLE)
    row.click()
    expect(eve.locator("#timeline")).to_contain_text(
        f"Assigned automatically: fewest open tickets, to {PAYLOADS[2]}", timeout=SETTLE
    )
    assert eve.evaluate("typeof window.__xss") == "undefined"
    assert eve.evaluate(INJECTED) == []


def _to(call, psid: str) -> bool:
    return call.body.get("recipient") == {"id": psid}
