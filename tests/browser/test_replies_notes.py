"""Saved replies and private notes, in Chromium against the real stack: an agent types
`/ref`, moves with the arrows and inserts the reply filled for the customer with Enter,
then sends it; Esc closes the picker and keeps the text; a placeholder without a value
is selected and never sent; the agent manages their replies in a dialog. A note is a
yellow card that only agents see, never sent to Messenger, shown live to another agent;
an @mention lights up the mentioned agent's Mentions, which leads to the ticket.

Screenshots (1280 and 390 px wide) go to $SHOTS_DIR (default /tmp/shots-replies)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.support import fake_of, login, new_context, sender_actions
from tests.browser.test_inbox import FAKE_NOTIFICATIONS  # records notifications and sound
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock
from tests.support.xss import PAYLOADS as XSS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine
SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots-replies"))
PHONE = {"width": 390, "height": 844}

STAFF = """
from django.contrib.auth.models import User
from agents.models import SavedReply, Team
from webhooks.models import Page

User.objects.filter(username="ana").update(first_name="Ana", last_name="Lima")
User.objects.filter(username="bo").update(first_name="Bo", last_name="Jensen")
cy = User.objects.create_user("cy", password="unused-1", is_staff=True)
billing = Team.objects.create(name="billing")
billing.pages.add(Page.objects.get(page_id="{page_id}"))
billing.members.add(User.objects.get(username="ana"), User.objects.get(username="bo"))
Team.objects.create(name="shipping").members.add(cy)
ana = User.objects.get(username="ana")
SavedReply.objects.create(
    title="Refund policy", shortcut="refund", owner=ana,
    body="Hi {first_name}, refunds reach your card within 5 days. {agent_name}, {page_name}",
)
SavedReply.objects.create(
    title="Ask for the order number", shortcut="order", team=billing,
    body="Could you send me your order number?",
)
SavedReply.objects.create(title="Greeting", shortcut="hi", body="Hello {first_name}!")
"""


@pytest.fixture(scope="module", autouse=True)
def staff(stack) -> None:
    stack.manage("shell", "-c", STAFF.replace("{page_id}", payloads.PAGE_ID))


def _handover(stack, clock, *, psid: str, text: str, first: str, last: str = "Tester") -> None:
    fake_of(stack).profiles[psid] = {"first_name": first, "last_name": last, "profile_pic": ""}
    stack.post_webhook(payloads.user_message(text, ts=clock(), psid=psid), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="a human please"))


def _sends(stack, psid: str) -> list:
    return [
        c
        for c in fake_of(stack).calls_to("/me/messages")
        if c.body["recipient"] == {"id": psid} and "message" in c.body
    ]


def _open(page, name: str) -> None:
    page.get_by_role("button", name=re.compile("^All open")).click()
    row = page.locator(".ticket-row", has_text=name)
    expect(row).to_be_visible(timeout=SETTLE)
    row.click()
    expect(page.locator("#conv-name")).to_have_text(name, timeout=SETTLE)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def test_slash_opens_the_picker_arrows_move_enter_inserts_and_sends(stack, context):
    clock, psid = Clock(), "3000000000000701"
    _handover(stack, clock, psid=psid, text="where is my refund?", first="Grace")
    page = login(context, "ana")
    _open(page, "Grace Tester")
    page.locator("#claim-btn").click()
    box = page.locator("#composer-text")
    expect(box).to_be_focused()

    box.press_sequentially("/ref")
    picker = page.get_by_role("listbox", name="Saved replies")
    expect(picker).to_be_visible()
    options = picker.get_by_role("option")
    # Refund policy first (its shortcut starts so); nothing else says "ref".
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Refund policy")
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", options.first.get_attribute("id"))
    _shot(page, "picker-1280.png")

    # Back to every reply: the arrows move (and wrap), the textarea names the active one.
    for _ in range(3):
        box.press("Backspace")
    expect(options).to_have_count(3)
    expect(options.nth(0)).to_contain_text("Greeting")  # by shortcut: hi, order, refund
    _shot(page, "picker-all-1280.png")
    box.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    box.press("ArrowUp")
    box.press("ArrowUp")
    expect(options.nth(2)).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", options.nth(2).get_attribute("id"))

    box.press("Enter")  # inserts: not sent
    expect(picker).to_be_hidden()
    filled = "Hi Grace, refunds reach your card within 5 days. Ana, E2E Page"
    expect(box).to_have_value(filled)
    assert _sends(stack, psid) == []

    box.press("Enter")  # sends
    expect(page.locator("#timeline .msg-agent .text").last).to_have_text(filled)
    [send] = eventually(lambda: _sends(stack, psid) or None, what="the reply sent")
    assert send.body["message"]["text"] == filled

    # Esc closes the picker and leaves the text as it is.
    box.press_sequentially("thanks /ord")
    expect(options).to_have_count(1)
    box.press("Escape")
    expect(picker).to_be_hidden()
    expect(box).to_have_value("thanks /ord")
    expect(box).to_be_focused()
    # The mouse works too: a click inserts.
    box.fill("")
    box.press_sequentially("/")
    picker.get_by_role("option", name=re.compile("Ask for the order number")).click()
    expect(box).to_have_value("Could you send me your order number?")


def test_a_placeholder_without_a_value_is_selected_and_never_sent(stack, context):
    clock, psid = Clock(), "3000000000000702"
    _handover(stack, clock, psid=psid, text="hello?", first="", last="Nameless")
    page = login(context, "ana")
    _open(page, "Nameless")
    page.locator("#claim-btn").click()
    box = page.locator("#composer-text")
    box.press_sequentially("/hi")
    box.press("Enter")
    expect(box).to_have_value("Hello {first_name}!")
    # The placeholder is selected: the agent types over it.
    assert (
        page.evaluate(
            "(() => { const t = document.getElementById('composer-text');"
            " return t.value.slice(t.selectionStart, t.selectionEnd); })()"
        )
        == "{first_name}"
    )
    expect(page.locator("#composer-hint")).to_have_text(
        "Replace {first_name} before sending: this ticket has no value for it."
    )
    box.press("End")
    box.press("Enter")  # refused here: nothing leaves, the text stays
    expect(page.locator("#composer-hint")).to_have_text(
        "Replace {first_name} before sending: the customer would read it as it is."
    )
    expect(box).to_have_value("Hello {first_name}!")
    expect(page.locator("#timeline .msg-agent")).to_have_count(0)
    assert _sends(stack, psid) == []
    page.keyboard.type("Sam")  # over the selection
    expect(box).to_have_value("Hello Sam!")
    box.press("Enter")
    [send] = eventually(lambda: _sends(stack, psid) or None, what="the reply sent")
    assert send.body["message"]["text"] == "Hello Sam!"


def test_an_agent_manages_their_saved_replies(stack, context):
    page = login(context, "ana")
    clock, psid = Clock(), "3000000000000703"
    _handover(stack, clock, psid=psid, text="hi", first="Ivy")
    _open(page, "Ivy Tester")
    page.get_by_role("button", name="Saved replies").click()
    dialog = page.get_by_role("dialog", name="Saved replies")
    expect(dialog).to_be_visible()
    rows = dialog.locator(".replies-row")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="Greeting")).to_contain_text("set by an admin")

    # A bad shortcut is refused in words and nothing is saved.
    dialog.get_by_label("Title").fill("Shipping times")
    dialog.get_by_label("Shortcut (one word, typed after /)").fill("ship times")
    dialog.get_by_label("Text").fill("Parcels take 2 days, {first_name}.")
    dialog.get_by_label("Who can use it").select_option(label="Team billing")
    dialog.get_by_role("button", name="Save reply").click()
    expect(dialog.locator("#reply-error")).to_contain_text("Not saved: The shortcut is one word")
    expect(rows).to_have_count(3)
    dialog.get_by_label("Shortcut (one word, typed after /)").fill("ship")
    dialog.get_by_role("button", name="Save reply").click()
    expect(rows).to_have_count(4)
    expect(rows.filter(has_text="/ship")).to_contain_text("Team billing")
    _shot(page, "manager-1280.png")

    rows.filter(has_text="/ship").get_by_role("button", name="Edit Shipping times").click()
    dialog.get_by_label("Title").fill("Delivery times")
    dialog.get_by_role("button", name="Save changes").click()
    expect(rows.filter(has_text="/ship")).to_contain_text("Delivery times")
    ship = rows.filter(has_text="/ship")
    ship.get_by_role("button", name="Delete Delivery times").click()
    ship.get_by_role("button", name="Delete Delivery times for good?").click()
    expect(rows).to_have_count(3)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # A new reply is in the picker at once.
    page.get_by_role("button", name="Saved replies").click()
    dialog.get_by_label("Title").fill("Thanks")
    dialog.get_by_label("Shortcut (one word, typed after /)").fill("thx")
    dialog.get_by_label("Text").fill("Thank you, {first_name}!")
    dialog.get_by_role("button", name="Save reply").click()
    expect(rows).to_have_count(4)
    page.keyboard.press("Escape")
    page.locator("#claim-btn").click()
    box = page.locator("#composer-text")
    box.press_sequentially("/thx")
    box.press("Enter")
    expect(box).to_have_value("Thank you, Ivy!")


def test_the_replies_dialog_never_takes_the_focus_from_the_field_the_agent_is_in(stack, context):
    """The manager's list loads after the dialog opens: an agent already typing in
    another field keeps typing there (CI saw a shortcut typed into the title)."""
    clock, psid = Clock(), "3000000000000707"
    _handover(stack, clock, psid=psid, text="hi there", first="Jude")
    page = login(context, "ana")
    _open(page, "Jude Tester")
    held: list = []

    def hold(route) -> None:
        held.append(route)

    page.route(re.compile(r".*/api/v1/saved-replies$"), hold)
    page.get_by_role("button", name="Saved replies").click()
    dialog = page.get_by_role("dialog", name="Saved replies")
    title = dialog.get_by_label("Title")
    shortcut = dialog.get_by_label("Shortcut (one word, typed after /)")
    expect(title).to_be_focused()  # at once, not once the list is in
    # (page.evaluate lets Playwright hand the route over: a plain sleep would not.)
    eventually(lambda: page.evaluate("true") and held, what="the list's request to be held")
    assert len(held) == 1
    shortcut.click()
    held[0].continue_()  # the list arrives while the agent is in the shortcut field
    expect(dialog.locator(".replies-row", has_text="Greeting")).to_be_visible()  # the list is in
    page.keyboard.type("thx")
    expect(shortcut).to_have_value("thx")
    expect(shortcut).to_be_focused()
    expect(title).to_have_value("")
    page.unroute(re.compile(r".*/api/v1/saved-replies$"))


def test_a_note_is_styled_live_never_sent_and_mentions_notify(stack, chromium, context):
    clock, psid = Clock(), "3000000000000704"
    _handover(stack, clock, psid=psid, text="my parcel is broken", first="Nora")
    context.add_init_script(FAKE_NOTIFICATIONS)
    ana = login(context, "ana")
    _open(ana, "Nora Tester")
    ana.locator("#claim-btn").click()
    # bo: one page on the same ticket, and one on the list (where mentions show).
    bo_context = new_context(chromium, stack, viewport={"width": 1280, "height": 800})
    # Desktop notifications and the sound, recorded (bo is in another window).
    bo_context.add_init_script(FAKE_NOTIFICATIONS)
    bo = login(bo_context, "bo")
    _open(bo, "Nora Tester")
    bo_list = bo_context.new_page()  # logged in already
    bo_list.goto("/")
    expect(bo_list.locator("#mentions-count")).to_be_hidden()
    bo_list.get_by_role("button", name="Notifications: off").click()
    expect(bo_list.get_by_role("button", name="Notifications: on")).to_be_visible()
    beeps = bo_list.evaluate("window.__beeps")

    ana.get_by_role("tab", name="Note").click()
    expect(ana.locator("#composer")).to_have_attribute("data-mode", "note")
    expect(ana.locator("#note-label")).to_have_text("Note · only agents see this")
    box = ana.locator("#composer-text")
    box.press_sequentially("Customer is upset, offer a refund. @B")
    # @ completion: the agents who may see the ticket; Tab completes.
    mention_picker = ana.get_by_role("listbox", name="Agents to mention")
    expect(mention_picker.get_by_role("option")).to_have_count(1)
    expect(mention_picker.get_by_role("option")).to_contain_text("Bo Jensen")
    box.press("Tab")
    expect(box).to_have_value("Customer is upset, offer a refund. @bo ")
    box.press_sequentially("can you check?")
    box.press("Enter")
    note = ana.locator("#timeline .note")
    expect(note).to_have_count(1)
    expect(note.locator(".note-label")).to_have_text("Note · only agents see this")
    expect(note.locator(".author")).to_have_text("You")
    expect(note.locator(".note-mention")).to_have_text("@bo")
    expect(box).to_have_value("")
    # A yellow card, not a bubble.
    expect(note).to_have_css("background-color", "rgb(255, 244, 194)")
    _shot(ana, "note-1280.png")

    # Live on bo's page, with who wrote it.
    bo_note = bo.locator("#timeline .note")
    expect(bo_note).to_have_count(1, timeout=SETTLE)
    expect(bo_note.locator(".author")).to_have_text("Ana Lima")
    expect(bo_note.locator(".note-text")).to_have_text(
        "Customer is upset, offer a refund. @bo can you check?"
    )
    # bo's other page: one unread mention, a desktop notification and the sound, and
    # the list leads to the ticket.
    expect(bo_list.locator("#mentions-count")).to_have_text("1", timeout=SETTLE)
    expect(bo_list.locator("html[data-notes='1']")).to_be_attached(timeout=SETTLE)
    assert bo_list.evaluate("window.__notes") == [
        ["Ana Lima mentioned you", f"Nora Tester: {bo_note.locator('.note-text').inner_text()}"]
    ]
    assert bo_list.evaluate("window.__beeps") == beeps + 1
    bo_list.get_by_role("button", name=re.compile("^Mentions")).click()
    row = bo_list.locator(".mention-row.unread")
    expect(row).to_contain_text("Ana Lima · Nora Tester")
    row.get_by_role("link").click()
    expect(bo_list.locator("#conv-name")).to_have_text("Nora Tester")
    expect(bo_list.locator("#mentions-count")).to_be_hidden(timeout=SETTLE)

    # The author is not notified of her own note.
    assert ana.evaluate("window.__notes") == []
    # Never sent: the customer got nothing of it, not even a typing indicator.
    assert not [c for c in _sends(stack, psid) if "upset" in str(c.body)]
    typing = [c for c in sender_actions(stack, psid) if c.body["sender_action"] == "typing_on"]
    assert typing == []

    # A mention of someone who may not see the ticket: refused, the text kept.
    box.press_sequentially("ask @cy")
    box.press("Escape")  # no completion for cy
    box.press("Enter")
    expect(ana.locator("#composer-hint")).to_contain_text(
        "Note not added: @cy names no agent who can see this ticket."
    )
    expect(box).to_have_value("ask @cy")
    expect(note).to_have_count(1)
    bo_context.close()


def test_phone_screenshots_picker_and_note(stack, chromium):
    clock, psid = Clock(), "3000000000000705"
    _handover(stack, clock, psid=psid, text="can I get a refund?", first="Pia")
    context = new_context(chromium, stack, viewport=PHONE, is_mobile=True, has_touch=True)
    page = login(context, "ana")
    _open(page, "Pia Tester")
    page.locator("#claim-btn").click()
    page.get_by_role("tab", name="Note").click()
    box = page.locator("#composer-text")
    box.fill("Asked twice already, be quick.")
    page.locator("#send-btn").click()
    expect(page.locator("#timeline .note")).to_have_count(1)
    page.get_by_role("tab", name="Reply").click()
    box.press_sequentially("/")
    options = page.get_by_role("listbox", name="Saved replies").get_by_role("option")
    refund = options.filter(has_text="Refund policy")
    expect(refund).to_be_visible()
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner
    _shot(page, "picker-390.png")
    refund.tap()
    expect(box).to_have_value("Hi Pia, refunds reach your card within 5 days. Ana, E2E Page")
    _shot(page, "note-390.png")
    page.get_by_role("button", name="Saved replies").tap()
    dialog = page.get_by_role("dialog", name="Saved replies")
    expect(dialog.locator(".replies-row").first).to_be_visible()
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner
    _shot(page, "manager-390.png")
    context.close()


INJECTED = """() => {
  const found = [];
  for (const node of document.querySelectorAll("*")) {
    if (["IFRAME", "OBJECT", "EMBED", "svg", "MATH", "VIDEO"].includes(node.tagName))
      found.push(node.tagName);
    if (node.tagName === "SCRIPT" && !node.src) found.push("inline script");
    for (const attr of node.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on")) found.push(`${node.tagName} ${name}`);
      if (["href", "src"].includes(name) && /^(javascript|data):/i.test(attr.value.trim()))
        found.push(`${node.tagName} ${name}`);
    }
  }
  return found;
}"""


def test_saved_replies_notes_and_mentions_show_payloads_as_text(stack, chromium, context):
    clock, psid = Clock(), "3000000000000706"
    _handover(stack, clock, psid=psid, text="hi", first="Xena")
    chosen = [p for p in XSS if "@" not in p and len(p) <= 100 and "  " not in p][:6]
    ana_api = _client(stack, "ana")
    ticket = eventually(
        lambda: next((t for t in ana_api("GET", "/tickets") if t["contact"]["psid"] == psid), None),
        what="Xena's ticket",
    )
    for index, payload in enumerate(chosen):
        ana_api("POST", "/saved-replies", title=payload, shortcut=f"x{index}", body=payload)
        ana_api("POST", f"/tickets/{ticket['id']}/notes", text=payload)
    ana_api("POST", f"/tickets/{ticket['id']}/notes", text=f"@bo {chosen[0]}")

    page = login(context, "ana")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _open(page, "Xena Tester")
    expect(page.locator("#timeline .note-text")).to_have_count(len(chosen) + 1)
    texts = page.locator("#timeline .note-text").all_text_contents()
    assert texts == [*chosen, f"@bo {chosen[0]}"]
    page.locator("#claim-btn").click()
    page.locator("#composer-text").press_sequentially("/x")
    # Their shortcuts (x0…) start so: first, in order (another test's /thx may follow).
    titles = page.locator("#reply-picker .reply-option-title")
    expect(titles.nth(len(chosen) - 1)).to_be_visible()
    assert titles.all_text_contents()[: len(chosen)] == chosen
    page.locator("#composer-text").press("Escape")
    page.get_by_role("button", name="Saved replies").click()
    managed = page.locator("#replies-list .reply-option-title")
    expect(managed.first).to_be_visible()
    assert set(chosen) <= set(managed.all_text_contents())

    bo_context = new_context(chromium, stack, viewport={"width": 1280, "height": 800})
    bo = login(bo_context, "bo")
    bo.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    bo.get_by_role("button", name=re.compile("^Mentions")).click()
    expect(bo.locator(".mention-text").first).to_have_text(f"@bo {chosen[0]}")

    for shown in (page, bo):
        assert shown.evaluate("typeof window.__xss") == "undefined"
        assert shown.evaluate(INJECTED) == []
    assert dialogs == []
    bo_context.close()


def _client(stack, username: str):
    token = stack.tokens[username]

    def call(method: str, path: str, **body):
        response = requests.request(
            method,
            f"{stack.base_url}/api/v1{path}",
            json=body or None,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code in (200, 201), response.text
        return response.json()

    return call
