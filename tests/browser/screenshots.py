"""Screenshots of the inbox for the README: `python -m tests.browser.screenshots [DIR]`.

Starts the real stack (as the browser tests do), plays a few customers through signed
webhooks, and photographs the inbox with Debian's Chromium into DIR (default
docs/screenshots/): inbox.png, conversation.png, conversation-locked.png, and on a phone
(390 by 844 px) inbox-phone.png (the list) and conversation-phone.png. Nothing leaves
loopback: the one customer photo is served to the page by Playwright itself.
"""

from __future__ import annotations

import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import requests
from playwright.sync_api import expect, sync_playwright

from tests.browser.support import fake_of, launch, login, new_context
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import ROOT, Stack, fake_graph_stack

PHOTO_URL = "https://cdn.example/messenger/parcel.png"
MINUTE = 60_000


def png(width: int, height: int, pixel) -> bytes:
    """A small RGB PNG, made without an imaging library."""
    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def parcel_photo() -> bytes:
    """A dented cardboard box on a doorstep, in very few pixels."""

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        if 60 <= x <= 180 and 55 <= y <= 150:
            dent = 18 if (x - 150) ** 2 + (y - 70) ** 2 < 300 else 0
            tape = 112 <= x <= 128
            base = (205, 170, 120) if not tape else (225, 210, 170)
            return tuple(max(0, c - dent - (y - 55) // 4) for c in base)
        if y > 140:
            return (150 - (y - 140), 150 - (y - 140), 145 - (y - 140))
        return (200 - y // 3, 214 - y // 4, 228 - y // 5)

    return png(240, 180, pixel)


def customer(stack: Stack, psid: str, first: str, last: str) -> None:
    fake_of(stack).profiles[psid] = {"first_name": first, "last_name": last, "profile_pic": ""}


def api(stack: Stack, token: str, method: str, path: str, body: dict | None = None) -> dict:
    response = requests.request(
        method,
        f"{stack.base_url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code < 300, response.text
    return response.json()


def ticket_of(stack: Stack, token: str, psid: str) -> dict:
    def find() -> dict | None:
        for ticket in api(stack, token, "GET", "/tickets?queue=all_open"):
            if ticket["contact"]["psid"] == psid:
                return ticket
        return None

    return eventually(find, what=f"the ticket of {psid}")


def seed(stack: Stack) -> dict[str, str]:
    """Five customers in different states; returns the agents' tokens."""
    stack.manage(
        "connect_page",
        "--page-id",
        payloads.PAGE_ID,
        "--access-token",
        "e2e-page-token",
        "--bot-app-id",
        payloads.BOT_APP_ID,
        "--name",
        "Acme Store",
        "--human-agent",
    )
    tokens = {name: stack.agent_token(name) for name in ("ana", "bo")}
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User;"
        "User.objects.filter(username='ana').update(first_name='Ana', last_name='Silva');"
        "User.objects.filter(username='bo').update(first_name='Bo', last_name='Jensen')",
    )
    now = int(time.time() * 1000)
    post = stack.post_webhook
    echo = payloads.echo
    say = payloads.user_message

    # Aiko: handed over 25 minutes ago, claimed by Ana, who answered; a photo came back.
    aiko = "3000000000000201"
    customer(stack, aiko, "Aiko", "Tanaka")
    post(
        say("Hi! My order #4417 arrived today", ts=now - 31 * MINUTE, psid=aiko), channel="standby"
    )
    post(
        echo("Great! How can I help with it?", ts=now - 31 * MINUTE + 900, psid=aiko),
        channel="standby",
    )
    post(
        say("the box is damaged and the mug inside is broken", ts=now - 30 * MINUTE, psid=aiko),
        channel="standby",
    )
    post(
        echo(
            "Sorry to hear that. I can start a return, or you can talk to a person.",
            ts=now - 30 * MINUTE + 800,
            psid=aiko,
        ),
        channel="standby",
    )
    post(payloads.postback("Talk to a human", ts=now - 26 * MINUTE, psid=aiko), channel="standby")
    post(payloads.pass_control(ts=now - 25 * MINUTE, psid=aiko, metadata="user asked for a human"))
    ticket = ticket_of(stack, tokens["ana"], aiko)
    api(stack, tokens["ana"], "POST", f"/tickets/{ticket['id']}/claim")
    api(
        stack,
        tokens["ana"],
        "POST",
        f"/tickets/{ticket['id']}/reply",
        {
            "text": "Hi Aiko, I'm Ana. I'm sorry about the mug! "
            "Could you send me a photo of the box?"
        },
    )
    # A receipt marks what was sent: wait for the worker to send the reply first.
    eventually(
        lambda: any(
            m["author_kind"] == "agent" and m["status"] == "sent"
            for m in api(stack, tokens["ana"], "GET", f"/tickets/{ticket['id']}/messages")
        ),
        what="Ana's reply sent",
    )
    later = int(time.time() * 1000)
    post(payloads.read(ts=later + 1500, watermark=later + 1500, psid=aiko))
    photo = say("", ts=later + 2000, psid=aiko)
    photo["message"] = {
        "mid": "m_photo",
        "attachments": [{"type": "image", "payload": {"url": PHOTO_URL}}],
    }
    post(photo)
    post(say("Here it is. The corner was crushed.", ts=later + 2500, psid=aiko))

    # Maria: waiting for 12 minutes.
    maria = "3000000000000202"
    customer(stack, maria, "Maria", "Garcia")
    post(
        say("Where is my refund? It's been two weeks", ts=now - 14 * MINUTE, psid=maria),
        channel="standby",
    )
    post(
        echo(
            "Refunds take 5 to 10 business days. Do you want to talk to someone?",
            ts=now - 14 * MINUTE + 700,
            psid=maria,
        ),
        channel="standby",
    )
    post(say("talk to a human", ts=now - 13 * MINUTE, psid=maria), channel="standby")
    post(payloads.pass_control(ts=now - 12 * MINUTE, psid=maria, metadata="keyword"))

    # Tom: waiting for 3 minutes.
    tom = "3000000000000203"
    customer(stack, tom, "Tom", "Becker")
    post(
        say(
            "Can I still change the size of my jacket? I ordered M, need L",
            ts=now - 4 * MINUTE,
            psid=tom,
        ),
        channel="standby",
    )
    post(payloads.pass_control(ts=now - 3 * MINUTE, psid=tom, metadata="bot: sizing question"))

    # Lukas: Bo's ticket, until the bot took the conversation back.
    lukas = "3000000000000204"
    customer(stack, lukas, "Lukas", "Meyer")
    post(
        say("I want to cancel my subscription", ts=now - 50 * MINUTE, psid=lukas), channel="standby"
    )
    post(payloads.pass_control(ts=now - 48 * MINUTE, psid=lukas))
    ticket = ticket_of(stack, tokens["bo"], lukas)
    api(stack, tokens["bo"], "POST", f"/tickets/{ticket['id']}/claim")
    post(payloads.take_control(ts=int(time.time() * 1000), psid=lukas))

    # Sofia: closed earlier today.
    sofia = "3000000000000205"
    customer(stack, sofia, "Sofia", "Rossi")
    post(say("Do you ship to Malta?", ts=now - 90 * MINUTE, psid=sofia), channel="standby")
    post(payloads.pass_control(ts=now - 88 * MINUTE, psid=sofia))
    ticket = ticket_of(stack, tokens["ana"], sofia)
    api(
        stack,
        tokens["ana"],
        "POST",
        f"/tickets/{ticket['id']}/close",
        {"closing_message": "Yes, we do! Shipping takes 4 to 6 days.", "outcome": "answered"},
    )
    eventually(
        lambda: (
            fake_of(stack).calls_to("/me/pass_thread_control")
            or [c for c in fake_of(stack).sends() if "thread_control" in c.body]
        ),
        what="Sofia handed back (by a pass, or in the closing message on a CR page)",
    )
    return tokens


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, fake_graph_stack(Path(tmp)) as stack:
        tokens = seed(stack)
        aiko = ticket_of(stack, tokens["ana"], "3000000000000201")
        maria = ticket_of(stack, tokens["ana"], "3000000000000202")
        lukas = ticket_of(stack, tokens["ana"], "3000000000000204")
        photo = parcel_photo()
        with sync_playwright() as playwright:
            browser = launch(playwright)
            context = new_context(browser, stack, viewport={"width": 1360, "height": 820})
            context.route(
                PHOTO_URL, lambda route: route.fulfill(body=photo, content_type="image/png")
            )
            page = login(context, "ana")

            page.goto(f"/tickets/{maria['id']}/?queue=all_open")
            expect(page.locator(".ticket-row")).to_have_count(4)
            expect(page.locator("#conv-name")).to_have_text("Maria Garcia")
            page.locator("#timeline details.context summary").first.click()
            page.screenshot(path=str(out / "inbox.png"))

            page.goto(f"/tickets/{aiko['id']}/?queue=mine")
            expect(page.locator(".msg-agent .msg-status").first).to_have_text("Read")
            expect(page.locator(".attachment-image")).to_be_visible()
            page.locator("#composer-text").fill("Thank you! I've started a replacement")
            page.screenshot(path=str(out / "conversation.png"))

            page.goto(f"/tickets/{lukas['id']}/?queue=all_open")
            expect(page.locator("#composer-lock")).to_be_visible()
            page.screenshot(path=str(out / "conversation-locked.png"))

            # On a phone: the list, then the conversation as a screen of its own.
            phone = new_context(
                browser,
                stack,
                viewport={"width": 390, "height": 844},
                is_mobile=True,
                has_touch=True,
            )
            phone.route(
                PHOTO_URL, lambda route: route.fulfill(body=photo, content_type="image/png")
            )
            page = login(phone, "ana")
            page.goto("/?queue=all_open")
            expect(page.locator(".ticket-row")).to_have_count(4)
            page.screenshot(path=str(out / "inbox-phone.png"))
            page.locator(".ticket-row", has_text="Aiko Tanaka").locator(".ticket-link").tap()
            expect(page.locator(".attachment-image")).to_be_visible()
            expect(page.locator(".sidebar")).to_be_hidden()
            page.locator("#timeline").evaluate("(node) => { node.scrollTop = node.scrollHeight; }")
            page.screenshot(path=str(out / "conversation-phone.png"))
            browser.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
