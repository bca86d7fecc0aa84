"""Tags and the list's filters, in Chromium against the real stack: an agent tags a
ticket from the conversation with the keyboard, another agent's list shows it live;
filtering by tag and by "needs reply" (rows leave and come as the conversation goes
on); the filters in the URL survive a reload and Back/Forward; on a phone, the filters
open from a "Filters" button. Screenshots at 1280 and 390 px go to
$SHOTS_DIR (default /tmp/shots-tags)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import fake_of, login, new_context
from tests.browser.test_xss import INJECTED
from tests.support import payloads
from tests.support.stack import Clock
from tests.support.xss import PAYLOADS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine
SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots-tags"))

TAGS = """
from django.contrib.auth.models import User
from agents.models import Tag

User.objects.filter(username="ana").update(first_name="Ana", last_name="Lima")
User.objects.filter(username="bo").update(first_name="Bo", last_name="Jensen")
Tag.objects.create(name="refund", colour="red", description="The customer wants money back")
Tag.objects.create(name="VIP", colour="purple", description="A customer to look after")
Tag.objects.create(name="shipping", colour="blue", description="Where is my parcel")
Tag.objects.create(name="legacy", colour="grey", active=False)
"""


@pytest.fixture(scope="module", autouse=True)
def tags(stack) -> None:
    stack.manage("shell", "-c", TAGS)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=False)


def _handover(stack, clock, *, psid: str, text: str, name: str) -> None:
    fake_of(stack).profiles[psid] = {"first_name": name, "last_name": "Tester", "profile_pic": ""}
    stack.post_webhook(payloads.user_message(text, ts=clock(), psid=psid), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="a human please"))


def _rows(page) -> list[str]:
    return page.locator(".ticket-row .ticket-name").all_inner_texts()


def test_a_tag_applied_from_the_conversation_reaches_another_agents_list_live(
    stack, chromium, context
):
    clock = Clock()
    _handover(stack, clock, psid="3000000000000801", text="I want my money back", name="Rosa")
    _handover(stack, clock, psid="3000000000000802", text="where is my parcel", name="Sam")
    ana = login(context, "ana")
    ana.get_by_role("button", name=re.compile("^All open")).click()
    other = new_context(chromium, stack, viewport={"width": 1280, "height": 800})
    try:
        bo = login(other, "bo")
        bo.get_by_role("button", name=re.compile("^All open")).click()
        rosa_for_bo = bo.locator(".ticket-row", has_text="Rosa Tester")
        expect(rosa_for_bo).to_be_visible(timeout=SETTLE)
        expect(rosa_for_bo.locator(".tag-chip")).to_have_count(0)

        # Ana opens Rosa's ticket and tags it with the keyboard only.
        ana.locator(".ticket-row", has_text="Rosa Tester").click()
        expect(ana.locator("#conv-name")).to_have_text("Rosa Tester")
        button = ana.get_by_role("button", name="Add a tag")
        button.focus()
        ana.keyboard.press("Enter")
        dialog = ana.get_by_role("dialog", name="Tags")
        expect(dialog).to_be_visible()
        expect(ana.locator("#tags-filter")).to_be_focused()
        # Only the tags that can be applied: not the inactive one.
        expect(dialog.locator(".tag-choice")).to_have_count(3)
        expect(dialog.locator(".tag-choice", has_text="legacy")).to_have_count(0)
        ana.keyboard.type("ref")
        expect(dialog.locator(".tag-choice:visible")).to_have_count(1)
        ana.keyboard.press("Enter")  # ticks the first match, the dialog stays open
        expect(dialog.get_by_role("checkbox", name=re.compile("refund"))).to_be_checked()
        ana.keyboard.press("Control+a")
        ana.keyboard.press("Backspace")
        ana.keyboard.press("ArrowDown")
        ana.keyboard.press("ArrowDown")
        ana.keyboard.press("ArrowDown")  # refund, shipping, VIP
        expect(dialog.get_by_role("checkbox", name=re.compile("VIP"))).to_be_focused()
        ana.keyboard.press("Space")
        expect(dialog.get_by_role("checkbox", name=re.compile("VIP"))).to_be_checked()
        expect(dialog.get_by_role("checkbox", name=re.compile("VIP"))).to_be_focused()
        expect(ana.locator("#conv-tags-list .tag-chip")).to_have_text(["refund", "VIP"])
        expect(ana.locator("#tags-error")).to_be_hidden()
        _shot(ana, "tags-picker-1280.png")
        ana.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(ana.get_by_role("button", name="Edit tags")).to_be_focused()
        expect(
            ana.locator(".ticket-row", has_text="Rosa Tester").locator(".tag-chip")
        ).to_have_text(["refund", "VIP"])
        # The history says who did it.
        expect(ana.locator("#timeline")).to_contain_text("You tagged the ticket “VIP”")

        # Bo sees the chips appear without reloading.
        expect(rosa_for_bo.locator(".tag-chip")).to_have_text(["refund", "VIP"], timeout=SETTLE)
        _shot(bo, "tags-list-1280.png")

        # Bo filters by the tag: only Rosa; Ana removes it: Rosa leaves Bo's list live.
        bo.get_by_label("Tag", exact=True).select_option("refund")
        expect(bo).to_have_url(re.compile(r"\?queue=all_open&tag=refund$"))
        expect(rosa_for_bo).to_be_visible()
        expect(bo.locator(".ticket-row", has_text="Sam Tester")).to_have_count(0)
        expect(bo.locator("#filter-count")).to_have_text("1 ticket matches")
        ana.get_by_role("button", name="Edit tags").click()
        dialog.get_by_role("checkbox", name=re.compile("refund")).uncheck()
        expect(ana.locator("#conv-tags-list .tag-chip")).to_have_text(["VIP"])
        expect(rosa_for_bo).to_have_count(0, timeout=SETTLE)
        expect(bo.locator("#filter-count")).to_have_text("0 tickets match", timeout=SETTLE)
        # ...and comes back when it is tagged again.
        dialog.get_by_role("checkbox", name=re.compile("refund")).check()
        expect(rosa_for_bo).to_be_visible(timeout=SETTLE)
        bo.get_by_role("button", name="Clear filters").click()
        expect(bo).to_have_url(re.compile(r"\?queue=all_open$"))
        expect(bo.locator(".ticket-row", has_text="Sam Tester")).to_be_visible()
    finally:
        other.close()


def test_needs_reply_and_the_filters_in_the_url_reload_and_back(stack, context):
    clock = Clock()
    _handover(stack, clock, psid="3000000000000811", text="hello?", name="Uma")
    _handover(stack, clock, psid="3000000000000812", text="anyone there?", name="Vic")
    page = login(context, "ana")
    page.get_by_role("button", name=re.compile("^All open")).click()
    expect(page.locator(".ticket-row", has_text="Vic Tester")).to_be_visible(timeout=SETTLE)

    # Ana answers Uma: Uma no longer needs a reply.
    page.locator(".ticket-row", has_text="Uma Tester").click()
    page.get_by_role("button", name="Claim").click()
    page.locator("#composer-text").fill("Hi Uma, I am here.")
    page.keyboard.press("Enter")
    expect(page.locator("#timeline .msg-agent").last.locator(".msg-status")).to_have_text(
        "Sent", timeout=SETTLE
    )
    page.get_by_label("Needs reply").check()
    expect(page).to_have_url(re.compile(r"\?queue=all_open&needs_reply=1$"))
    uma, vic = (page.locator(".ticket-row", has_text=n) for n in ("Uma Tester", "Vic Tester"))
    expect(vic).to_be_visible()
    expect(uma).to_have_count(0)

    # Uma writes again: she comes back into the filtered list, live.
    stack.post_webhook(
        payloads.user_message("thanks, one more thing", ts=clock(), psid="3000000000000811")
    )
    expect(uma).to_be_visible(timeout=SETTLE)

    # The assignee filter too; then a reload keeps both.
    page.get_by_label("Assignee").select_option("me")
    expect(page).to_have_url(re.compile(r"\?queue=all_open&assignee=me&needs_reply=1$"))
    expect(uma).to_be_visible()
    expect(vic).to_have_count(0)
    page.reload()
    expect(page.get_by_label("Needs reply")).to_be_checked()
    expect(page.get_by_label("Assignee")).to_have_value("me")
    expect(uma).to_be_visible(timeout=SETTLE)
    expect(vic).to_have_count(0)
    _shot(page, "filters-1280.png")

    # Back: the filter before (needs reply only); Forward: both again.
    page.go_back()
    expect(page.get_by_label("Assignee")).to_have_value("")
    expect(page.get_by_label("Needs reply")).to_be_checked()
    expect(vic).to_be_visible(timeout=SETTLE)
    page.go_forward()
    expect(page.get_by_label("Assignee")).to_have_value("me")
    expect(vic).to_have_count(0, timeout=SETTLE)

    # Opening a ticket keeps the filters in its URL; Back to the list as it was.
    uma.click()
    expect(page).to_have_url(
        re.compile(r"/tickets/\d+/\?queue=all_open&assignee=me&needs_reply=1$")
    )
    page.reload()
    expect(page.get_by_label("Assignee")).to_have_value("me")
    expect(page.locator("#conv-name")).to_have_text("Uma Tester", timeout=SETTLE)

    # A link with a tag that does not exist says so, and can be cleared.
    page.goto("/?queue=all_open&tag=nonesuch")
    expect(page.locator("#ticket-list-error")).to_have_text(
        "These tickets cannot be listed: `tag`: there is no tag named 'nonesuch'."
    )
    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator("#ticket-list-error")).to_be_hidden()
    expect(vic).to_be_visible(timeout=SETTLE)


def test_on_a_phone_the_filters_open_from_a_button(stack, chromium):
    clock = Clock()
    _handover(stack, clock, psid="3000000000000821", text="is it refundable?", name="Wes")
    phone = new_context(
        chromium, stack, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = login(phone, "bo")
        page.get_by_role("button", name=re.compile("^All open")).click()
        row = page.locator(".ticket-row", has_text="Wes Tester")
        expect(row).to_be_visible(timeout=SETTLE)
        # Tag it on the phone, from the conversation.
        row.click()
        page.get_by_role("button", name="Add a tag").click()
        page.get_by_role("dialog", name="Tags").get_by_role(
            "checkbox", name=re.compile("refund")
        ).check()
        expect(page.locator("#conv-tags-list .tag-chip")).to_have_text(["refund"])
        expect(page.locator("#tags-error")).to_be_hidden()
        _shot(page, "tags-picker-390.png")
        page.get_by_role("button", name="Done").click()
        _shot(page, "tags-conversation-390.png")
        page.get_by_role("button", name="Back to the tickets").first.click()

        toggle = page.get_by_role("button", name=re.compile("^Filters"))
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.get_by_label("Tag", exact=True)).to_be_hidden()
        _shot(page, "filters-closed-390.png")
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        page.get_by_label("Tag", exact=True).select_option("refund")
        expect(toggle).to_contain_text("1")
        expect(row).to_be_visible()
        expect(row.locator(".tag-chip")).to_have_text(["refund"])
        _shot(page, "filters-390.png")
        # Nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for control in (toggle, page.get_by_role("button", name="Clear filters")):
            assert control.bounding_box()["height"] >= 44
    finally:
        phone.close()


XSS_TAGS = """
from agents.models import Tag
from tests.support.xss import PAYLOADS

seen = set()
for n, payload in enumerate(PAYLOADS):
    name = payload[:40]  # the column's length
    if name.lower() in seen:
        continue
    seen.add(name.lower())
    Tag.objects.create(name=name, colour="orange", description=PAYLOADS[-1 - n][:200])
"""


def test_tag_names_and_descriptions_full_of_payloads_run_none_of_them(stack, context):
    """Tags are an admin's words, shown to every agent: chips on the list and in the
    header, the picker, the filter's choices. As text, never as markup."""
    stack.manage("shell", "-c", XSS_TAGS)
    clock = Clock()
    _handover(stack, clock, psid="3000000000000831", text="hi", name="Xena")
    page = login(context, "ana")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name=re.compile("^All open")).click()
    page.locator(".ticket-row", has_text="Xena Tester").click()
    page.get_by_role("button", name="Add a tag").click()
    dialog = page.get_by_role("dialog", name="Tags")
    names = sorted({p[:40].lower(): p[:40] for p in PAYLOADS}.values(), key=str.lower)
    for name in names[:6]:
        dialog.locator(".tag-choice", has=page.locator(f'[data-tag="{_css(name)}"]')).locator(
            "input"
        ).check()
    expect(page.locator("#conv-tags-list .tag-chip")).to_have_count(6)
    expect(page.locator("#tags-error")).to_be_hidden()
    descriptions = dialog.locator(".tag-description").all_text_contents()
    page.keyboard.press("Escape")
    row = page.locator(".ticket-row", has_text="Xena Tester")
    expect(row.locator(".tag-chip")).to_have_count(6)
    options = page.locator("#filter-tag option").all_text_contents()

    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate(INJECTED) == []
    assert dialogs == []
    chips = page.locator("#conv-tags-list .tag-chip").all_text_contents()
    assert set(chips) <= set(names) and len(set(chips)) == 6
    assert row.locator(".tag-chip").all_text_contents() == chips
    assert set(names) <= set(options)
    # Each description shown as the text it is (the module's other tags have their own).
    earlier = {"The customer wants money back", "Where is my parcel", "A customer to look after"}
    made, seen = set(), set()
    for n, payload in enumerate(PAYLOADS):
        if payload[:40].lower() not in seen:
            seen.add(payload[:40].lower())
            made.add(PAYLOADS[-1 - n][:200])
    assert set(descriptions) - earlier == made


def _css(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
