"""The README's walk-through in two browsers, against the Messenger Platform emulator.

Real processes (Redis, Daphne, Celery worker and beat) and the emulator in-process, with
its demo bot. One browser context is the customer on the emulator's page, another the
agent logged in to the inbox. Everything the two people do goes through the pages' DOM:
the customer says hello, the bot answers, the customer taps "Talk to a human", the
ticket appears in the agent's inbox without a reload, the agent replies, the customer
sees it, the agent closes, and the bot is back.

`play_story` is also what `tests.browser.walkthrough_screenshots` photographs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from tests.browser.support import CHROMIUM, NOT_LOOPBACK, launch, login, new_context
from tests.support import payloads
from tests.support.stack import Stack, emulator_stack
from webhooks.emulator import Emulator
from webhooks.emulator.bot import ANSWERS, ASKING_FOR_HUMAN, GREETING, HUMAN_TITLE, WELCOME_BACK

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)",
    ),
]

# ms: a round trip through Celery and the emulator. Tests assert that things happen
# without a reload, never how fast: `make bench` measures the tap-to-inbox time.
SLOW = 30_000
PAGE_NAME = "Acme Store"
VIEWPORT = {"width": 1280, "height": 800}

Snap = Callable[[str, Any], None]


@contextmanager
def emulator_world(tmp: Path) -> Iterator[tuple[Emulator, Stack]]:
    """The emulator and the helpdesk's processes (tests.support.stack.emulator_stack);
    the agent `ana` (Ana Silva) exists."""
    with emulator_stack(tmp, page_name=PAGE_NAME) as (emulator, stack):
        stack.agent_token("ana")
        stack.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User;"
            "User.objects.filter(username='ana').update(first_name='Ana', last_name='Silva')",
        )
        yield emulator, stack


# --- reading the two pages --------------------------------------------------------------

# The customer page, one line per row: "<data-author> (<label>): <text> [<buttons>]" for a
# message, "— <text>" for a platform event.
CHAT = """() => [...document.querySelectorAll('#messages > *')].map((row) => {
  if (row.classList.contains('event')) return `— ${row.textContent}`;
  const text = row.querySelector('.bubble > .text');
  const buttons = [...row.querySelectorAll('.buttons > *')].map((b) => b.textContent);
  // An agent's persona: its name and the app (its picture is an initial, not words).
  const author = row.querySelector('.author');
  const persona = author.querySelector('.persona-name');
  const who = persona ? persona.textContent + author.querySelector('.via').textContent
    : author.textContent;
  return `${row.dataset.author} (${who}): `
    + (text ? text.textContent : '') + (buttons.length ? ` [${buttons.join(' | ')}]` : '');
})"""

# The agent's timeline, one line per item: "<author>: <bubble> · <status>" for a message,
# "— <text>" for system lines and ticket events, "== <day>" where the day changes; a
# folded group is its summary ("▸" closed, "▾" open) and its messages indented.
TIMELINE = """() => {
  const text = (li, selector) => li.querySelector(selector).textContent;
  const line = (li) => {
    if (li.classList.contains('day-separator')) return `== ${li.textContent}`;
    if (li.classList.contains('msg-system')) return `— ${text(li, '.system-text')}`;
    const body = [...li.querySelector('.bubble').children].map((n) => n.textContent);
    const status = li.querySelector('.msg-status');
    return `${text(li, '.author')}: ${body.join(' ')}`
      + (status ? ` · ${status.textContent}` : '');
  };
  return [...document.querySelectorAll('#timeline > li')].flatMap((li) => {
    const details = li.querySelector(':scope > details.context');
    if (!details) return [line(li)];
    const inside = [...details.querySelectorAll('.context-messages > li')];
    const head = `${details.open ? '▾' : '▸'} ${text(details, 'summary')}`;
    return [head, ...inside.map((m) => `  ${line(m)}`)];
  });
}"""


# Records in window.__firstSeen the time (Date.now()) at which the page first shows a CSS
# selector's match, or a text: for `make bench`, which reads it after the step.
FIRST_SEEN = """(what) => {
  window.__firstSeen = null;
  const shown = () => what.startsWith('.')
    ? document.querySelector(what) !== null
    : document.body.innerText.includes(what);
  const observer = new MutationObserver(() => {
    if (window.__firstSeen === null && shown()) {
      window.__firstSeen = Date.now();
      observer.disconnect();
    }
  });
  observer.observe(document.body, {childList: true, subtree: true, characterData: true});
  return shown();
}"""


def expect_lines(page: Any, script: str, expected: list[str], *, timeout: float = SLOW) -> None:
    """Wait until the page reads exactly `expected` (auto-waiting, polled in the page)."""
    with suppress(PlaywrightTimeout):  # the assertion below says what the page shows
        page.wait_for_function(
            f"""(expected) => JSON.stringify(({script})()) === JSON.stringify(expected)""",
            arg=expected,
            timeout=timeout,
            polling=50,
        )
    actual = page.evaluate(script)
    assert actual == expected, f"the page reads\n{actual}\ninstead of\n{expected}"


def chat(page: Any, expected: list, *, timeout: float = SLOW) -> None:
    expect_lines(page, CHAT, expected, timeout=timeout)


def timeline(page: Any, expected: list, *, timeout: float = SLOW) -> None:
    expect_lines(page, TIMELINE, expected, timeout=timeout)


def customer_page(browser: Any, emulator: Emulator, psid: str) -> Any:
    """The emulator's customer page as the Messenger user `psid`, in its own context."""
    context = browser.new_context(base_url=emulator.base_url, viewport=VIEWPORT)
    context.route(NOT_LOOPBACK, lambda route: route.abort())
    page = context.new_page()
    page.goto(f"/?psid={psid}")
    expect(page.locator("#user-select")).to_have_value(psid)
    return page


def customer_says(page: Any, text: str) -> None:
    composer = page.locator("#composer")
    composer.fill(text)
    page.locator("#send").click()
    expect(composer).to_have_value("")


# --- the story ------------------------------------------------------------------------

GREETED = GREETING.format(page=PAGE_NAME)
OFFER = f" [{HUMAN_TITLE}]"
REPLY = "Hi Grace, I'm Ana. How can I help?"
THANKS = "Found it in my spam folder, thanks!"
CLOSING = "Glad I could help, Grace!"
AGAIN = "what are your opening hours?"

BOT_SIDE = [
    "user (You): hello",
    "— Routed to Demo Bot (default app)",
    f"bot (Demo Bot): {GREETED}{OFFER}",
]
HANDED_OVER = [
    *BOT_SIDE,
    f"user (You): {HUMAN_TITLE}",
    f"bot (Demo Bot): {ASKING_FOR_HUMAN}",
    "— Helpdesk requested control from Demo Bot",
    "— Demo Bot passed control to Helpdesk",
]
CONTEXT = [
    "== Today",
    "▸ With the bot · 4 messages",
    "  Grace Hopper: hello",
    f"  Bot: {GREETED}",
    f"  Grace Hopper: Tapped “{HUMAN_TITLE}”",
    f"  Bot: {ASKING_FOR_HUMAN}",
    # every control change, with its cause (the inbox shows the cause beside it)
    f"— Requesting control: postback '{HUMAN_TITLE}'.",
    "— Control passed to the helpdesk.",
]


def play_story(browser: Any, emulator: Emulator, stack: Stack, snap: Snap | None = None) -> dict:
    """The walk-through, asserting both pages at every step; `snap(name, page)` is called
    where the README has a picture. Returns timings and what the browsers logged."""
    snap = snap or (lambda name, page: None)
    psid = emulator.user_create("Grace", "Hopper").psid
    found: dict[str, Any] = {"page_errors": [], "console_errors": [], "psid": psid}

    def watch(page: Any, who: str) -> Any:
        page.on("pageerror", lambda error: found["page_errors"].append(f"{who}: {error}"))
        page.on(
            "console",
            lambda message: (
                message.type == "error" and found["console_errors"].append(f"{who}: {message.text}")
            ),
        )
        return page

    agent_context = new_context(browser, stack, viewport=VIEWPORT)
    agent_context.on("page", lambda page: watch(page, "agent"))
    agent = login(agent_context, "ana")
    expect(agent.locator("#app[data-live=on]")).to_be_attached()
    expect(agent.locator("[data-count=waiting]")).to_have_text("0")
    expect(agent.locator("#ticket-list-empty")).to_be_visible()
    agent.evaluate("window.__marker = 1")  # gone if the page ever reloads

    customer = watch(customer_page(browser, emulator, psid), "customer")
    owner = customer.locator("#thread-owner")
    expect(owner).to_have_text("Idle (nobody owns the thread) · 24 h window closed")

    # 1. The customer says hello; the bot (the thread's owner) answers and offers a person.
    customer_says(customer, "hello")
    chat(customer, BOT_SIDE)
    expect(owner).to_have_text("Handled by Demo Bot · window open")
    expect(customer.locator(".quick-reply")).to_have_text(
        ["Opening hours", "Shipping", HUMAN_TITLE]
    )
    expect(customer.locator(".postback-button")).to_have_text([HUMAN_TITLE])
    # The helpdesk only listens on standby: no ticket for a chat with the bot.
    expect(agent.locator(".ticket-row")).to_have_count(0)
    snap("walkthrough-1-bot", customer)

    # 2. "Talk to a human": the helpdesk asks for the thread, the bot passes it, and the
    # ticket shows up in the open inbox by itself (the page is never reloaded: the marker
    # set above is checked at the end). How long it took is recorded for `make bench`.
    # Both pages note (in the machine's clock) when what they wait for first shows.
    assert agent.evaluate(FIRST_SEEN, ".ticket-row") is False
    assert customer.evaluate(FIRST_SEEN, ASKING_FOR_HUMAN) is False
    tapped = customer.evaluate("Date.now()")
    customer.locator(".postback-button", has_text=HUMAN_TITLE).click()
    row = agent.locator(".ticket-row")
    expect(row).to_be_visible(timeout=SLOW)
    expect(customer.get_by_text(ASKING_FOR_HUMAN)).to_be_visible(timeout=SLOW)
    found["ticket_visible_after_tap_s"] = (agent.evaluate("window.__firstSeen") - tapped) / 1000
    found["bot_answer_after_tap_s"] = (customer.evaluate("window.__firstSeen") - tapped) / 1000
    expect(row).to_have_count(1)
    expect(row.locator(".ticket-name")).to_have_text("Grace Hopper")
    expect(row.locator(".ticket-preview")).to_have_text(f"Bot: {ASKING_FOR_HUMAN}")
    expect(row.locator(".ticket-page")).to_have_text(PAGE_NAME)
    expect(row.locator(".status-badge")).to_have_text("waiting")
    expect(row.locator(".control-badge")).to_have_count(0)
    expect(row.locator(".ticket-wait")).to_have_text("waiting less than a minute")
    expect(agent.locator("[data-count=waiting]")).to_have_text("1")
    chat(customer, HANDED_OVER)
    expect(owner).to_have_text("Handled by Helpdesk · window open")
    expect(customer.locator(".quick-reply")).to_have_count(0)
    snap("walkthrough-2-ticket", agent)

    # 3. The agent opens the ticket (the bot-side history folded above the handover)
    # and replies with Enter.
    row.click()
    expect(agent.locator("#conv-name")).to_have_text("Grace Hopper")
    expect(agent.locator("#conv-page")).to_have_text(PAGE_NAME)
    expect(agent.locator("#conv-status")).to_have_text("waiting")
    expect(agent.locator("#conv-control")).to_be_hidden()  # the helpdesk has the thread
    timeline(agent, CONTEXT)
    composer = agent.locator("#composer-text")
    expect(composer).to_be_enabled()
    composer.press_sequentially(REPLY, delay=10)
    composer.press("Enter")
    expect(composer).to_have_value("")
    # "Read": the customer's page sends read receipts once it shows the reply. The
    # claim and the reply are stored in one transaction, often in the same millisecond:
    # the claim still comes first.
    replied = [
        *CONTEXT,
        "— You claimed the ticket (by replying)",
        f"Ana Silva (you): {REPLY} · Read",
    ]
    timeline(agent, replied)
    expect(agent.locator("#conv-status")).to_have_text("with you")
    # Claimed, it left the Waiting queue; it is in the agent's own.
    expect(agent.locator(".ticket-row")).to_have_count(0)
    agent.get_by_role("button", name="Mine").click()
    mine = agent.locator(".ticket-row.selected")
    expect(mine.locator(".ticket-name")).to_have_text("Grace Hopper")
    expect(mine.locator(".ticket-preview")).to_have_text(f"Agent: {REPLY}")
    expect(mine.locator(".status-badge")).to_have_text("with you")
    expect(agent.locator("[data-count=mine]")).to_have_text("1")
    snap("walkthrough-3-reply", agent)

    # 4. The customer sees the reply, under the helpdesk's name; the bot stays quiet.
    chat(customer, [*HANDED_OVER, f"agent (Ana · via Helpdesk): {REPLY}"])
    snap("walkthrough-4-customer", customer)

    # The customer answers; it shows in the open conversation, without a reload.
    customer_says(customer, THANKS)
    timeline(agent, [*replied, f"Grace Hopper: {THANKS}"])

    # 5. The agent closes with a closing message: it goes out first, then the thread goes
    # back to the bot, which welcomes the customer back and answers again.
    agent.get_by_role("button", name="Close…").click()
    agent.get_by_label("Closing message").fill(CLOSING)
    agent.get_by_role("button", name="Close ticket").click()
    expect(agent.locator("#conv-status")).to_have_text("closed")
    expect(agent.locator("#closed-control")).to_have_text(
        "The conversation is back with the bot.", timeout=SLOW
    )
    expect(composer).to_be_hidden()
    handed_back = [
        *HANDED_OVER,
        f"agent (Ana · via Helpdesk): {REPLY}",
        f"user (You): {THANKS}",
        f"agent (Ana · via Helpdesk): {CLOSING}",
        "— Helpdesk passed control to Demo Bot",
        f"bot (Demo Bot): {WELCOME_BACK}{OFFER}",
    ]
    chat(customer, handed_back)
    expect(owner).to_have_text("Handled by Demo Bot · window open")
    customer_says(customer, AGAIN)
    chat(
        customer,
        [*handed_back, f"user (You): {AGAIN}", f"bot (Demo Bot): {ANSWERS['HOURS']}{OFFER}"],
    )
    expect(customer.locator(".quick-reply")).to_have_text(
        ["Opening hours", "Shipping", HUMAN_TITLE]
    )
    snap("walkthrough-5-back-to-bot", customer)

    # The agent's view followed all of it live: the closing message, the handback and
    # the bot's side of the conversation since.
    timeline(
        agent,
        [
            *replied,
            f"Grace Hopper: {THANKS}",
            f"Ana Silva (you): {CLOSING} · Read",
            "— You closed the ticket (resolved)",
            "— Ticket 1 closed by ana; passing control to the bot.",
            "— The conversation went back to the bot.",
            "▸ With the bot · 3 messages",
            f"  Bot: {WELCOME_BACK}",
            f"  Grace Hopper: {AGAIN}",
            f"  Bot: {ANSWERS['HOURS']}",
        ],
    )
    expect(agent.locator(".ticket-row")).to_have_count(0)  # no longer in Mine
    expect(agent.locator("[data-count=waiting]")).to_have_text("0")
    expect(agent.locator("[data-count=mine]")).to_have_text("0")
    expect(agent.locator("[data-count=closed]")).to_have_text("1")
    assert agent.evaluate("window.__marker") == 1, "the agent's page reloaded"
    assert agent.evaluate("performance.getEntriesByType('navigation').length") == 1

    customer.context.close()
    agent_context.close()
    return found


# --- the test -------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path) -> Iterator[tuple[Emulator, Stack]]:
    with emulator_world(tmp_path) as world:
        yield world


@pytest.fixture
def browser(world) -> Iterator[Any]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def test_the_walkthrough_in_two_browsers(world, browser):
    emulator, stack = world
    try:
        found = play_story(browser, emulator, stack)
    except BaseException:
        print(stack.logs())
        raise
    print(f"ticket visible in the inbox {found['ticket_visible_after_tap_s']:.3f} s after the tap")
    for error in sorted(set(found["console_errors"])):
        print(f"console error ({found['console_errors'].count(error)}x): {error}")
    assert found["page_errors"] == []
    # Nothing may go wrong in either console (the emulator's avatars, served over http
    # from the Graph API's origin, are allowed by the inbox's Content-Security-Policy).
    assert found["console_errors"] == []
    # The helpdesk asked once and handed back once, in its last message (Conversation
    # Routing: no separate pass); the platform refused no call.
    calls = [c for c in list(emulator.graph_calls) if c["app_id"] == payloads.APP_ID]
    assert [c["path"] for c in calls if "thread_control" in c["path"]] == [
        "/me/request_thread_control",
    ]
    assert emulator.owner(found["psid"]) == payloads.BOT_APP_ID
    assert [c for c in list(emulator.graph_calls) if c["status"] != 200] == []
