"""Files an agent sends, against the Messenger Platform emulator with real processes
(Daphne, Celery worker and beat, Redis): uploaded with the Attachment Upload API, sent by
attachment_id after the text, confirmed by their echoes, and shown to the customer: the
picture inline on the customer page (Chromium), the PDF as a link with its name."""

from __future__ import annotations

import os

import pytest
import requests

from tests.browser.screenshots import parcel_photo
from tests.browser.support import CHROMIUM, launch
from tests.support.polling import eventually
from tests.support.stack import emulator_stack, helpdesk_calls

pytestmark = pytest.mark.e2e

PHOTO = parcel_photo()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def world(tmp_path):
    with emulator_stack(tmp_path) as world:
        yield world


def test_the_customer_sees_the_picture_and_the_file(world):
    emulator, stack = world
    auth = {"Authorization": f"Bearer {stack.agent_token('ana')}"}
    api = f"{stack.base_url}/api/v1"
    psid = emulator.user_create("Grace", "Hopper").psid
    emulator.user_says(psid, "hello")
    greeting = eventually(
        lambda: [m for m in emulator.transcript(psid) if m["author"] == "bot"],
        what="the bot's greeting",
    )[-1]
    emulator.user_taps_button(psid, greeting["mid"], 0)
    [ticket] = eventually(
        lambda: requests.get(
            f"{api}/tickets", params={"status": "waiting"}, headers=auth, timeout=5
        ).json(),
        what="a waiting ticket",
    )

    sent = requests.post(
        f"{api}/tickets/{ticket['id']}/attachments",
        data={"text": "The label and the invoice 📦"},
        files=[
            ("files", ("label.png", PHOTO, "image/png")),
            ("files", ("invoice.pdf", PDF, "application/pdf")),
        ],
        headers=auth,
        timeout=10,
    )
    assert sent.status_code == 201, sent.text
    ids = [m["id"] for m in sent.json()]

    agent = eventually(
        lambda: (
            found
            if len(found := [m for m in emulator.transcript(psid) if m["author"] == "agent"]) >= 3
            else None
        ),
        what="the three messages on the customer's side",
    )
    assert agent[0]["text"] == "The label and the invoice 📦"
    picture, pdf = agent[1]["attachments"], agent[2]["attachments"]
    assert [(a["type"], a["title"]) for a in picture] == [("image", "label.png")]
    assert [(a["type"], a["title"]) for a in pdf] == [("file", "invoice.pdf")]
    assert requests.get(picture[0]["url"], timeout=5).content == PHOTO
    assert requests.get(pdf[0]["url"], timeout=5).content == PDF
    # Each uploaded once, each sent once, in order, and all confirmed by their echoes.
    assert len(helpdesk_calls(emulator, "/me/message_attachments")) == 2
    eventually(
        lambda: all(
            m["status"] == "sent"
            for m in requests.get(
                f"{api}/tickets/{ticket['id']}/messages", headers=auth, timeout=5
            ).json()
            if m["id"] in ids
        ),
        what="the three messages confirmed",
    )
    messages = requests.get(f"{api}/tickets/{ticket['id']}/messages", headers=auth, timeout=5)
    mine = [m for m in messages.json() if m["author_kind"] == "agent"]
    assert [m["id"] for m in mine] == ids  # no second row from an echo
    assert [m["mid"] for m in mine] == [e["mid"] for e in agent[:3]]

    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415 -- browser part

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(f"{emulator.base_url}/?psid={psid}")
            image = page.locator('[data-author="agent"] img.attachment-image')
            expect(image).to_be_visible(timeout=15_000)
            page.wait_for_function(
                "() => document.querySelector('[data-author=\"agent\"] img.attachment-image')"
                ".naturalWidth > 0"
            )
            link = page.locator('[data-author="agent"] a.attachment-file')
            expect(link).to_have_text("invoice.pdf")
            if os.environ.get("SHOTS_DIR"):
                page.screenshot(path=f"{os.environ['SHOTS_DIR']}/files-customer-390.png")
        finally:
            browser.close()
