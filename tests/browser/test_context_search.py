"""The customer panel and search, in Chromium against the real stack (issue 11): the panel
beside a conversation shows the customer and their earlier tickets and opens one; it
hides and shows with the Customer button, remembered across reloads; the note an agent
saves is seen live by another agent; on a phone the panel is a screen of its own; search
marks the match and opens the ticket at the message; a customer's HTML found by search
is shown as text.

With SHOTS_DIR set, screenshots at 1280 and 390 px go there (the README's are copied
from them)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import login, new_context
from tests.support import payloads

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Daphne and Redis, on a loaded machine
PHONE = {"width": 390, "height": 844}
XSS = '<img src=x onerror="window.__xss=1">parcel tracking'

STAFF = """
from django.contrib.auth.models import User
User.objects.filter(username="ana").update(first_name="Ana", last_name="Lima")
User.objects.filter(username="bo").update(first_name="Bo", last_name="Jensen")
"""

# A customer with an earlier ticket (Ana closed it as refunded, three days ago) and a
# waiting one now; `texts` are the customer's messages in the waiting ticket, after a
# message to the bot before it (context).
CUSTOMER = """
import json
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from agents.models import Contact, Message, Ticket, TicketEvent
from agents.services.state import now_ms
from tests.support import factories
from webhooks.models import Page

page = Page.objects.get(page_id="{page_id}")
ana = User.objects.get(username="ana")
now = now_ms()
earlier = factories.ticket(page=page, psid="{psid}", status="closed", assignee=ana,
                           closing_note="refunded")
conversation = earlier.conversation
Contact.objects.filter(pk=conversation.contact_id).update(first_name="{first}", last_name="{last}")
three_days = timezone.now() - timedelta(days=3)
Ticket.objects.filter(pk=earlier.pk).update(
    opened_at=three_days, closed_at=three_days + timedelta(hours=2),
    handover_timestamp=now - 3 * 86_400_000,
)
TicketEvent.objects.create(ticket=earlier, kind="closed", actor=ana, detail="refunded")
then = now - 3 * 86_400_000
factories.message(ticket=earlier, text="My card was charged twice", timestamp=then + 1000)
factories.message(ticket=earlier, text="Refunded, sorry about that!", author_kind="agent",
                  author=ana, timestamp=then + 2000)
conversation.control_state, conversation.owner_role = "agent", "helpdesk"
conversation.save()
factories.message(conversation=conversation, text="hello bot", timestamp=now - 120_000)
current = factories.ticket(conversation=conversation, handover_timestamp=now - 60_000)
from agents.models import Tag, TicketTag
vip, _ = Tag.objects.get_or_create(name="vip", defaults={{"colour": "purple"}})
TicketTag.objects.create(ticket=current, tag=vip)
ids = []
for n, text in enumerate({texts!r}):
    ids.append(factories.message(ticket=current, text=text, timestamp=now - 50_000 + n * 1000).pk)
print(json.dumps({{"earlier": earlier.pk, "current": current.pk, "messages": ids}}))
"""


@pytest.fixture(scope="module", autouse=True)
def staff(stack) -> None:
    stack.manage("shell", "-c", STAFF)


def _customer(stack, psid: str, first: str, last: str, texts: list[str]) -> dict:
    code = CUSTOMER.format(page_id=payloads.PAGE_ID, psid=psid, first=first, last=last, texts=texts)
    return json.loads(stack.manage("shell", "-c", code).strip().splitlines()[-1])


def _shot(page, name: str) -> None:
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def _open(page, ticket_id: int) -> None:
    page.goto(f"/tickets/{ticket_id}/?queue=all_open")
    expect(page.locator("#conversation")).to_be_visible(timeout=SETTLE)


def test_the_panel_shows_the_customer_and_opens_an_earlier_ticket(stack, context):
    ids = _customer(
        stack, "3000000000000801", "Grace", "Hopper", ["The parcel never came", "Any news?"]
    )
    page = login(context, "ana")
    _open(page, ids["current"])

    panel = page.locator("#customer-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    expect(page.locator("#customer-page")).to_have_text("E2E Page")
    expect(page.locator("#customer-psid")).to_have_text("3000000000000801")
    expect(page.locator("#customer-first-seen time")).to_have_count(1)
    earlier = page.locator("#customer-earlier li")
    expect(earlier).to_have_count(1)
    expect(earlier.locator(".customer-earlier-id")).to_have_text(f"#{ids['earlier']}")
    expect(earlier.locator(".customer-earlier-outcome")).to_have_text("refunded")
    expect(earlier.locator(".customer-earlier-agent")).to_have_text("Agent: you")
    expect(page.locator("#customer-tags li")).to_have_text(["vip"])  # the ticket's tags
    expect(page.locator("#customer-note-status")).to_have_text("No note yet")
    # The PSID is copied with one click.
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#customer-psid-copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "3000000000000801"
    _shot(page, "context-panel-earlier")

    # One click opens the earlier ticket: its own view, closed, no reply box.
    earlier.locator("a").click()
    expect(page).to_have_url(re.compile(rf"/tickets/{ids['earlier']}/"))
    expect(page.locator("#closed-summary")).to_have_text(re.compile(r"^Closed by you · refunded"))
    expect(page.locator("#composer")).to_be_hidden()
    expect(page.locator("#timeline")).to_contain_text("My card was charged twice")
    # Its panel: the same customer, and nothing before that ticket.
    expect(page.locator("#customer-earlier-empty")).to_be_visible()
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")


def test_hiding_the_panel_is_remembered(stack, context):
    ids = _customer(stack, "3000000000000802", "Alan", "Turing", ["hello"])
    page = login(context, "ana")
    _open(page, ids["current"])
    panel = page.locator("#customer-panel")
    button = page.locator("#customer-btn")
    expect(panel).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    width = page.locator("#conversation").bounding_box()["width"]

    page.get_by_role("button", name="Hide the customer panel").click()
    expect(panel).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    assert page.locator("#conversation").bounding_box()["width"] > width + 250

    page.reload()
    expect(page.locator("#conversation")).to_be_visible(timeout=SETTLE)
    expect(page.locator("#conv-name")).to_have_text("Alan Turing")
    expect(panel).to_be_hidden()
    button.click()
    expect(panel).to_be_visible()
    expect(page.locator("#customer-name")).to_have_text("Alan Turing")
    page.reload()
    expect(page.locator("#customer-panel")).to_be_visible(timeout=SETTLE)


def test_a_saved_note_is_seen_live_by_another_agent(stack, chromium, context):
    ids = _customer(
        stack,
        "3000000000000803",
        "Ada",
        "Byron",
        ["Hi, my order #88 arrived damaged", "Can I get a replacement this time?"],
    )
    ana = login(context, "ana")
    _open(ana, ids["current"])
    other = new_context(chromium, stack, viewport={"width": 1280, "height": 800})
    try:
        bo = login(other, "bo")
        _open(bo, ids["current"])
        expect(bo.locator("#customer-note-status")).to_have_text("No note yet")

        note = ana.get_by_label("Note on this customer")
        note.fill("Prefers email. Order #88 was refunded once already.")
        expect(ana.locator("#customer-note-status")).to_have_text("Not saved yet")
        ana.get_by_role("button", name="Save note").click()
        expect(ana.locator("#customer-note-status")).to_have_text(re.compile(r"^Saved · by you, "))
        expect(ana.get_by_role("button", name="Save note")).to_be_disabled()

        # Bo sees it without reloading, with who saved it.
        expect(bo.get_by_label("Note on this customer")).to_have_value(
            "Prefers email. Order #88 was refunded once already.", timeout=SETTLE
        )
        expect(bo.locator("#customer-note-status")).to_have_text(
            re.compile(r"^Saved · by Ana Lima, ")
        )
        _shot(bo, "context-panel")

        # Bo is writing when Ana saves again: his text stays, and he is told.
        bo.get_by_label("Note on this customer").fill("Bo's draft")
        note.fill("Prefers email.")
        ana.get_by_role("button", name="Save note").click()
        expect(bo.locator("#customer-note-status")).to_have_text(
            "Ana Lima changed the note meanwhile; saving yours replaces it.", timeout=SETTLE
        )
        expect(bo.get_by_label("Note on this customer")).to_have_value("Bo's draft")

        # The field holds at most what the server keeps (which refuses more in words:
        # tests/agents/api/test_context.py); near the limit it counts.
        note.fill("x" * 2100)
        assert len(note.input_value()) == 2000
        expect(ana.locator("#customer-note-status")).to_have_text(
            re.compile(r"^Not saved yet · 2,000 / 2,000$")
        )
    finally:
        other.close()


def test_on_a_phone_the_customer_is_a_screen_of_its_own(stack, chromium):
    ids = _customer(stack, "3000000000000804", "Katherine", "Johnson", ["parcel is late"])
    phone = new_context(chromium, stack, viewport=PHONE, has_touch=True, is_mobile=True)
    try:
        page = login(phone, "ana")
        _open(page, ids["current"])
        panel = page.locator("#customer-panel")
        expect(panel).to_be_hidden()
        _shot(page, "context-conversation-phone")
        page.get_by_role("button", name="Customer", exact=True).click()
        expect(panel).to_be_visible()
        expect(page.locator("#conversation")).to_be_hidden()
        expect(page.locator("#customer-name")).to_have_text("Katherine Johnson")
        expect(page.get_by_role("button", name="Hide the customer panel")).to_be_hidden()
        width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner
        _shot(page, "context-panel-phone")
        page.get_by_role("button", name="Back to the conversation").click()
        expect(page.locator("#conversation")).to_be_visible()
        expect(panel).to_be_hidden()
    finally:
        phone.close()


def test_search_marks_the_match_and_opens_the_ticket_at_the_message(stack, context):
    ids = _customer(
        stack,
        "3000000000000805",
        "Margaret",
        "Hamilton",
        ["Where is my parcel?", *[f"filler {n}" for n in range(60)]],
    )
    page = login(context, "ana")
    search = page.get_by_role("searchbox", name="Search contacts and messages")

    search.fill("a")
    expect(page.locator("#search-status")).to_have_text(
        "Type at least 2 letters or digits to search."
    )
    search.fill("where parc")
    hit = page.locator(f'.search-hit[data-ticket-id="{ids["current"]}"]')
    expect(hit).to_be_visible(timeout=SETTLE)
    expect(hit.locator(".ticket-name")).to_have_text("Margaret Hamilton")
    snippet = hit.locator(".search-snippet")
    expect(snippet).to_have_text("Where is my parcel?")
    expect(snippet.locator("mark")).to_have_text(["Where", "parc"])
    _shot(page, "context-search")

    # The message is older than the newest page of the conversation: it is fetched.
    hit.locator(".search-message").click()
    expect(page).to_have_url(re.compile(rf"/tickets/{ids['current']}/"))
    target = page.locator(f'#timeline [data-message-id="{ids["messages"][0]}"]')
    expect(target).to_be_in_viewport(timeout=SETTLE)
    expect(target).to_have_class(re.compile(r"\bsearch-target\b"))

    # Esc: back to the queue.
    search.press("Escape")
    expect(page.locator("#search-results")).to_be_hidden()
    expect(page.locator("#ticket-list")).to_be_visible()


def test_search_on_a_phone(stack, chromium):
    _customer(stack, "3000000000000806", "Dorothy", "Vaughan", ["The parcel box was damaged"])
    phone = new_context(chromium, stack, viewport=PHONE, has_touch=True, is_mobile=True)
    try:
        page = login(phone, "ana")
        page.get_by_role("searchbox", name="Search contacts and messages").fill("damaged box")
        hit = page.locator(".search-hit", has_text="Dorothy Vaughan")
        expect(hit).to_be_visible(timeout=SETTLE)
        expect(hit.locator("mark")).to_have_text(["box", "damaged"])
        width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner
        _shot(page, "context-search-phone")
        hit.locator(".search-hit-head").click()
        expect(page.locator("#conversation")).to_be_visible()
        expect(page.locator("#conv-name")).to_have_text("Dorothy Vaughan")
    finally:
        phone.close()


def test_a_customers_html_found_by_search_is_shown_as_text(stack, context):
    ids = _customer(stack, "3000000000000807", "Mallory", "Html", [XSS])
    page = login(context, "ana")
    page.get_by_role("searchbox", name="Search contacts and messages").fill("tracking")
    hit = page.locator(f'.search-hit[data-ticket-id="{ids["current"]}"]')
    expect(hit.locator(".search-snippet")).to_have_text(XSS, timeout=SETTLE)
    expect(hit.locator(".search-snippet mark")).to_have_text(["tracking"])
    assert hit.locator("img").count() == 0  # no picture: none from the text either
    assert hit.locator(".search-snippet *:not(mark)").count() == 0
    assert page.evaluate("window.__xss") is None
