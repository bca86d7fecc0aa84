"""What an idle inbox tab downloads for live events: `python -m tests.browser.idle_bytes`.

Starts the real stack (as the browser tests do) and seeds 40 waiting tickets, one of
them a long conversation (200 messages with the bot, then 300 with an agent). Opens the
inbox on that conversation in Debian's Chromium, lets it settle, then has customers
write 50 messages through signed webhooks, one every 300 ms, every fifth one in the open
conversation: each becomes two events on /ws/inbox/ (`message.created` and
`ticket.updated`), 100 in all. Prints the bytes (headers and bodies) of the HTTP
responses the tab received for them, by kind of request.

The same script runs against any revision of the inbox (it only reads what the tab
does), which is how the numbers before and after a change are compared.
"""

from __future__ import annotations

import collections
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

from tests.browser.support import launch, login, new_context
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack, fake_graph_stack

TICKETS = 40
LONG_CONTEXT, LONG_TICKET = 200, 300
MESSAGES = 50  # two events each
LONG_PSID = "3300000000000000"

SEED = """
from django.contrib.auth.models import User
from agents.models import Contact, Message, Ticket
from agents.services.state import now_ms
from tests.support import factories
from webhooks.models import Page

page = Page.objects.get()
ana = User.objects.get(username="ana")
User.objects.filter(username="ana").update(first_name="Ana", last_name="Silva")
now = now_ms()
for n in range({tickets}):
    psid = "33000000000000" + format(n, "02d")
    ticket = factories.ticket(page=page, psid=psid, handover_timestamp=now - 3_600_000 + n)
    Contact.objects.filter(psid=psid).update(first_name=f"Customer {{n:02d}}", last_name="Tester")
    factories.message(ticket=ticket, text=f"hello from customer {{n}}", timestamp=now - 60_000 + n)
ticket = Ticket.objects.get(conversation__contact__psid="{long_psid}")
Contact.objects.filter(psid="{long_psid}").update(first_name="Grace", last_name="Long")
start = ticket.handover_timestamp - {context} * 1000
rows = []
for n in range({context}):
    bot = n % 2 == 1
    rows.append(Message(
        conversation_id=ticket.conversation_id, direction="out" if bot else "in",
        author_kind="bot" if bot else "customer", status="sent" if bot else "received",
        text=("Bot: answer " if bot else "Question to the bot ") + str(n),
        timestamp=start + n * 1000,
    ))
rows.append(Message(
    conversation_id=ticket.conversation_id, ticket=ticket, direction="in", author_kind="system",
    text="Control passed to the helpdesk.", timestamp=ticket.handover_timestamp,
))
for n in range({ticket_messages}):
    agent = n % 2 == 1
    rows.append(Message(
        conversation_id=ticket.conversation_id, ticket=ticket, direction="out" if agent else "in",
        author_kind="agent" if agent else "customer", author=ana if agent else None,
        status="read" if agent else "received",
        text=(f"Agent reply number {{n}}: let me look into that for you." if agent
              else f"Customer message number {{n}} about the parcel"),
        timestamp=ticket.handover_timestamp + 1000 + n * 1000,
    ))
Message.objects.bulk_create(rows)
"""


def seed(stack: Stack) -> None:
    stack.agent_token("ana")
    stack.manage(
        "shell",
        "-c",
        SEED.format(
            tickets=TICKETS,
            long_psid=LONG_PSID,
            context=LONG_CONTEXT,
            ticket_messages=LONG_TICKET,
        ),
    )


# Counts the events the page's socket receives.
COUNT_EVENTS = """
window.__events = 0;
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (message) => {
      try {
        const frame = JSON.parse(message.data);  // one event, or {"events": [...]}
        window.__events += Array.isArray(frame.events) ? frame.events.length : frame.event ? 1 : 0;
      } catch {}
    });
  }
};
"""


def kind(url: str) -> str:
    path = re.sub(r"^https?://[^/]+", "", url).split("?")[0]
    return re.sub(r"/\d+", "/{id}", path)


def open_long_conversation(context: Any) -> Any:
    page = login(context, "ana")
    page.locator(".ticket-row", has_text="Grace Long").click()
    expect(page.locator("#conv-name")).to_have_text("Grace Long")
    expect(page.locator("#app[data-live=on]")).to_be_attached()
    return page


def measure(stack: Stack, chromium: Any) -> dict[str, list[int]]:
    context = new_context(chromium, stack, viewport={"width": 1280, "height": 800})
    context.add_init_script(COUNT_EVENTS)
    page = open_long_conversation(context)
    page.wait_for_load_state("networkidle")
    time.sleep(2)  # the first loads (page, socket open) are done

    sizes: dict[str, list[int]] = collections.defaultdict(list)
    in_flight = set()
    last_activity = [time.monotonic()]

    def started(request: Any) -> None:
        in_flight.add(request)
        last_activity[0] = time.monotonic()

    def finished(request: Any) -> None:
        in_flight.discard(request)
        last_activity[0] = time.monotonic()
        size = request.sizes()
        sizes[f"{request.method} {kind(request.url)}"].append(
            size["responseBodySize"] + size["responseHeadersSize"]
        )

    page.on("request", started)
    page.on("requestfinished", finished)
    page.on("requestfailed", lambda request: in_flight.discard(request))
    page.evaluate("window.__events = 0")

    clock = Clock()
    for n in range(MESSAGES):
        psid = LONG_PSID if n % 5 == 0 else f"33000000000000{1 + n % (TICKETS - 1):02d}"
        stack.post_webhook(payloads.user_message(f"live message {n}", ts=clock(), psid=psid))
        time.sleep(0.3)
    eventually(
        lambda: page.evaluate("window.__events") >= 2 * MESSAGES,
        what=lambda: f"{2 * MESSAGES} events (got {page.evaluate('window.__events')})",
    )
    eventually(
        lambda: not in_flight and time.monotonic() - last_activity[0] > 2,
        what="the tab to be quiet",
    )
    events = page.evaluate("window.__events")
    expect(page.locator("#timeline .msg-customer").last).to_contain_text("live message 45")
    context.close()
    sizes["events"] = [events]
    return sizes


def report(sizes: dict[str, list[int]]) -> str:
    events = sizes.pop("events")[0]
    total = sum(sum(v) for v in sizes.values())
    lines = [f"{events} events: {sum(len(v) for v in sizes.values())} requests, {total:,} bytes"]
    for name, values in sorted(sizes.items(), key=lambda item: -sum(item[1])):
        lines.append(f"  {name:45} {len(values):4} requests {sum(values):>12,} bytes")
    return "\n".join(lines)


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        fake_graph_stack(Path(tmp)) as stack,
        sync_playwright() as playwright,
    ):
        seed(stack)
        chromium = launch(playwright)
        try:
            print(report(measure(stack, chromium)))
        finally:
            chromium.close()


if __name__ == "__main__":
    sys.exit(main())
