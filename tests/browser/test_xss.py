"""A conversation full of XSS payloads (tests/support/xss.py), in Chromium against the
real stack: as the page's name, the contact's name and picture, the texts of context
and ticket messages, a bot's echo, a postback title, and attachment URLs and titles.

No payload runs (`window.__xss` stays undefined, no dialog opens, the policy reports
nothing), none becomes markup (no element from them, no handler attribute, no
javascript: or data: link), and each is shown as the text it is.
"""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.support import fake_of, login
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock
from tests.support.xss import PAYLOADS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PAGE_ID = "1000000000000666"
PSID = "3000000000000666"
NAME = PAYLOADS[0]
HALF = len(PAYLOADS) // 2
# Elements, attributes and links the inbox never makes itself: only markup parsed from
# data would bring them.
INJECTED = """() => {
  const found = [];
  for (const node of document.querySelectorAll("*")) {
    if (["IFRAME", "OBJECT", "EMBED", "FRAME", "MARQUEE", "MATH", "BASE", "svg", "VIDEO"]
        .includes(node.tagName)) found.push(node.tagName);
    if (node.tagName === "SCRIPT" && !node.src) found.push("inline script");
    for (const attr of node.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.trim().toLowerCase();
      if (name.startsWith("on")) found.push(`${node.tagName} ${name}`);
      if (["href", "src", "action", "formaction", "data", "srcdoc"].includes(name)
          && /^(javascript|data|vbscript):/.test(value)) found.push(`${node.tagName} ${name}`);
    }
  }
  return found;
}"""


def _post(stack, *events, channel: str = "messaging") -> None:
    body = payloads.body_bytes(payloads.delivery(*events, channel=channel, page_id=PAGE_ID))
    response = requests.post(
        f"{stack.base_url}/webhooks/messenger/",
        data=body,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": payloads.signature(body),
        },
    )
    assert (response.status_code, response.text) == (200, "EVENT_RECEIVED")


def _message(text: str, ts: int, *, attachment: str | None = None) -> dict:
    event = payloads.user_message(text, ts=ts, psid=PSID, page_id=PAGE_ID)
    if attachment is not None:
        event["message"]["attachments"] = [
            {"type": "image", "payload": {"url": attachment}},
            {"type": "file", "title": attachment, "payload": {"url": attachment}},
        ]
    return event


def _api(stack, path: str):
    response = requests.get(
        f"{stack.base_url}/api/v1{path}",
        headers={"Authorization": f"Bearer {stack.tokens['ana']}"},
        timeout=10,
    )
    assert response.status_code == 200
    return response.json()


def _conversation_full_of_payloads(stack) -> int:
    """Through the whole pipeline; returns the ticket's id once every message is in."""
    clock = Clock()
    stack.manage(
        "connect_page",
        "--page-id",
        PAGE_ID,
        "--access-token",
        "xss-page-token",
        "--bot-app-id",
        payloads.BOT_APP_ID,
        "--name",
        PAYLOADS[1],
    )
    fake_of(stack).profiles[PSID] = {
        "first_name": NAME,
        "last_name": "",
        "profile_pic": "javascript:window.__xss=99",
    }
    # Context with the bot: the first half, then an echo and a postback.
    for text in PAYLOADS[:HALF]:
        _post(stack, _message(text, clock()), channel="standby")
    echo = payloads.echo(PAYLOADS[2], ts=clock(), psid=PSID)
    echo["sender"]["id"] = PAGE_ID
    postback = payloads.postback(PAYLOADS[3], ts=clock(), psid=PSID)
    postback["recipient"]["id"] = PAGE_ID
    _post(stack, echo, postback, channel="standby")
    handover = payloads.pass_control(ts=clock(), psid=PSID, metadata=PAYLOADS[4])
    handover["recipient"]["id"] = PAGE_ID
    _post(stack, handover)
    # The ticket: the second half, each with attachments whose URL and title are payloads.
    for text in PAYLOADS[HALF:]:
        _post(stack, _message(text, clock(), attachment=text))

    def ticket_with_everything() -> int | None:
        mine = [t for t in _api(stack, "/tickets") if t["contact"]["psid"] == PSID]
        if not mine or mine[0]["contact"]["name"] != NAME:
            return None
        messages = _api(stack, f"/tickets/{mine[0]['id']}/messages")
        kinds = [(m["author_kind"], bool(m["postback_title"])) for m in messages]
        complete = (kinds.count(("customer", False)), kinds.count(("customer", True))) == (
            len(PAYLOADS),
            1,
        ) and kinds.count(("bot", False)) == 1
        return mine[0]["id"] if complete else None

    def seen() -> str:
        mine = [t for t in _api(stack, "/tickets") if t["contact"]["psid"] == PSID]
        messages = [_api(stack, f"/tickets/{t['id']}/messages") for t in mine]
        return f"the ticket with every message; tickets {mine}, messages {messages}"

    return eventually(ticket_with_everything, what=seen)


def test_a_conversation_full_of_payloads_runs_none_of_them(stack, context):
    ticket_id = _conversation_full_of_payloads(stack)
    page = login(context, "ana")
    dialogs: list[str] = []
    console: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: console.append(message.text))

    page.goto(f"/tickets/{ticket_id}/")
    # Everything is on the page: the list, the header, the timeline with its context open.
    expect(page.locator(".ticket-row")).to_have_count(1)
    expect(page.locator("#conv-name")).to_have_text(NAME)
    context_block = page.locator("#timeline details.context")
    context_block.locator("summary").click()
    expect(context_block).to_have_attribute("open", "")

    # Run: nothing. Parsed as markup: nothing.
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate(INJECTED) == []
    assert dialogs == []
    assert [line for line in console if "Content Security Policy" in line] == []
    assert page.locator("#conv-avatar img").count() == 0  # javascript: is no picture

    # Shown, as the text it is.
    expect(page.locator(".ticket-row .ticket-name")).to_have_text(NAME)
    expect(page.locator(".ticket-row .ticket-page")).to_have_text(PAYLOADS[1])
    expect(page.locator("#conv-page")).to_have_text(PAYLOADS[1])
    customer_texts = page.locator("#timeline .msg-customer .text")
    expect(customer_texts).to_have_count(len(PAYLOADS))  # the whole timeline is drawn
    assert customer_texts.all_text_contents() == list(PAYLOADS)
    expect(page.locator("#timeline .msg-bot .text")).to_have_text(PAYLOADS[2])
    expect(page.locator("#timeline .postback")).to_have_text(f"Tapped “{PAYLOADS[3]}”")
    wanted = [label for text in PAYLOADS[HALF:] for label in ("[image attachment]", f"[{text}]")]
    expect(page.locator("#timeline .attachment")).to_have_count(len(wanted))
    assert page.locator("#timeline .attachment").all_text_contents() == wanted

    # Issue 11: the customer panel (the name, the page, a note) and search results (the
    # name and the snippets, marked with <mark>) show them as text too.
    note = requests.put(
        f"{stack.base_url}/api/v1/tickets/{ticket_id}/context/note",
        json={"text": PAYLOADS[5]},
        headers={"Authorization": f"Bearer {stack.tokens['bo']}"},
        timeout=10,
    )
    assert note.status_code == 200, note.text
    expect(page.locator("#customer-name")).to_have_text(NAME)
    expect(page.locator("#customer-page")).to_have_text(PAYLOADS[1])
    expect(page.get_by_label("Note on this customer")).to_have_value(PAYLOADS[5])
    page.get_by_role("searchbox", name="Search contacts and messages").fill("xss")
    hit = page.locator(f'.search-hit[data-ticket-id="{ticket_id}"]')
    expect(hit.locator(".ticket-name")).to_have_text(NAME)
    expect(hit.locator(".ticket-name mark")).to_have_text(["xss"])
    expect(hit.locator(".search-snippet").first).to_be_visible()
    for snippet in hit.locator(".search-snippet").all_text_contents():
        assert snippet in {" ".join(p.split()) for p in PAYLOADS}
    assert hit.locator(".search-snippet *:not(mark)").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate(INJECTED) == []
    assert dialogs == []
