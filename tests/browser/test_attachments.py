"""Files and images an agent sends, in Chromium against the real stack (issue 11, point
7): the paper-clip picker, dropping files on the conversation, pasting a picture, the
chip before sending (name, size, a remove button), refusals in words before anything
is uploaded (and the server's when only it can tell), and the sent picture in the
timeline, at 1280 and 390 px. With SHOTS_DIR set, the screenshots are saved there."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.screenshots import parcel_photo
from tests.browser.support import fake_of, login, new_context
from tests.support import payloads
from tests.support.stack import Clock

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SETTLE = 10_000  # ms: a round trip through Celery and back, on a loaded machine
PHOTO = parcel_photo()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
XSS_NAME = "<img src=x onerror=alert(1)>.pdf"


def _shot(page, name: str) -> None:
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


def _handover(stack, clock, *, psid: str, name: str) -> None:
    fake_of(stack).profiles[psid] = {"first_name": name, "last_name": "Tester", "profile_pic": ""}
    stack.post_webhook(
        payloads.user_message("the parcel came dented", ts=clock(), psid=psid), channel="standby"
    )
    stack.post_webhook(payloads.pass_control(ts=clock(), psid=psid, metadata="a human please"))


def _open(page, name: str) -> None:
    page.get_by_role("button", name=re.compile("^Waiting")).click()
    page.locator(".ticket-row", has_text=f"{name} Tester").click()
    expect(page.locator("#conv-name")).to_have_text(f"{name} Tester")
    page.get_by_role("button", name="Claim").click()
    expect(page.locator("#composer-text")).to_be_enabled()


def _uploads(stack) -> list:
    return fake_of(stack).calls_to("/me/message_attachments")


def _drop(page, files_js: str, target: str = "#timeline") -> None:
    """Drop files (a JS array expression of File objects) on an element, as a person
    dragging them from their desktop would."""
    page.evaluate(
        """([target, make]) => {
            const files = (new Function(`return ${make}`))();
            const data = new DataTransfer();
            for (const file of files) data.items.add(file);
            const node = document.querySelector(target);
            for (const type of ["dragenter", "dragover", "drop"]) {
                const init = { dataTransfer: data, bubbles: true, cancelable: true };
                node.dispatchEvent(new DragEvent(type, init));
            }
        }""",
        [target, files_js],
    )


def test_a_picture_chosen_with_the_paper_clip_goes_out_with_its_caption(stack, context):
    clock, psid = Clock(), "3000000000000701"
    _handover(stack, clock, psid=psid, name="Noor")
    page = login(context, "ana")
    _open(page, "Noor")

    page.locator("#file-input").set_input_files(
        [
            {"name": "dented-box.png", "mimeType": "image/png", "buffer": PHOTO},
            {"name": XSS_NAME, "mimeType": "application/pdf", "buffer": PDF},
        ]
    )
    chips = page.locator("#composer-files .file-chip")
    expect(chips).to_have_count(2)
    expect(chips.nth(0).locator(".file-name")).to_have_text("dented-box.png")
    expect(chips.nth(0).locator(".file-size")).to_have_text(re.compile(r"^\d+ (KB|bytes)$"))
    expect(chips.nth(0).locator("img.file-thumb")).to_be_visible()
    # The preview is the picture itself (a blob: URL the page's policy allows).
    page.wait_for_function("() => document.querySelector('img.file-thumb').naturalWidth > 0")
    # A file's name is text, never markup.
    expect(chips.nth(1).locator(".file-name")).to_have_text(XSS_NAME)
    assert page.locator('#composer-files img[src="x"]').count() == 0
    page.locator("#composer-text").fill("Here is the photo of the box 📦")
    _shot(page, "files-chip-1280.png")

    page.locator("#composer-text").press("Enter")
    expect(chips).to_have_count(0)
    expect(page.locator("#composer-text")).to_have_value("")
    timeline = page.locator("#timeline")
    picture = timeline.locator(".msg-agent a.sent-image img.attachment-image")
    expect(picture).to_have_attribute("src", re.compile(r"^/api/v1/attachments/\d+/file$"))
    expect(picture).to_have_attribute("alt", "dented-box.png")
    page.wait_for_function(
        "() => document.querySelector('#timeline a.sent-image img').naturalWidth > 0"
    )
    pdf = timeline.locator(".msg-agent a.sent-file.attachment-file")
    expect(pdf.locator(".file-name")).to_have_text(XSS_NAME)
    expect(pdf).to_have_attribute("download", XSS_NAME)
    assert page.locator('#timeline img[src="x"]').count() == 0
    # Text first, then each file, each its own message, all sent.
    agent = timeline.locator(".msg-agent")
    expect(agent).to_have_count(3)
    expect(agent.nth(0).locator(".text")).to_have_text("Here is the photo of the box 📦")
    for index in range(3):
        expect(agent.nth(index)).to_have_attribute("data-status", "sent", timeout=SETTLE)
    uploads = [c for c in _uploads(stack) if c.files["filedata"][0] == "dented-box.png"]
    assert [u.files["filedata"] for u in uploads] == [("dented-box.png", "image/png", PHOTO)]
    _shot(page, "files-timeline-1280.png")

    # Clicking the picture opens it: the same file, for this agent.
    with page.expect_popup() as popup:
        picture.click()
    opened = popup.value
    opened.wait_for_load_state()
    assert re.search(r"/api/v1/attachments/\d+/file$", opened.url)
    opened.close()


def test_dropping_files_on_the_conversation_and_removing_one(stack, context):
    clock, psid = Clock(), "3000000000000702"
    _handover(stack, clock, psid=psid, name="Omar")
    page = login(context, "ana")
    _open(page, "Omar")
    _drop(
        page,
        "[new File([new Uint8Array([37,80,68,70,45])], 'receipt.pdf', {type: 'application/pdf'}),"
        " new File([new Uint8Array([37,80,68,70,45])], 'terms.pdf', {type: 'application/pdf'})]",
    )
    chips = page.locator("#composer-files .file-chip")
    expect(chips).to_have_count(2)
    expect(page.locator("#drop-zone")).to_be_hidden()
    page.get_by_role("button", name="Remove receipt.pdf").click()
    expect(chips).to_have_count(1)
    expect(chips.locator(".file-name")).to_have_text("terms.pdf")
    page.get_by_role("button", name="Send").click()
    sent = page.locator("#timeline .msg-agent a.sent-file")
    expect(sent.locator(".file-name")).to_have_text("terms.pdf")
    expect(page.locator("#timeline .msg-agent")).to_have_attribute(
        "data-status", "sent", timeout=SETTLE
    )
    names = [c.files["filedata"][0] for c in _uploads(stack)]
    assert "terms.pdf" in names and "receipt.pdf" not in names


def test_a_pasted_screenshot_becomes_a_chip(stack, context):
    clock, psid = Clock(), "3000000000000703"
    _handover(stack, clock, psid=psid, name="Pia")
    page = login(context, "ana")
    _open(page, "Pia")
    page.locator("#composer-text").fill("see this")
    page.evaluate(
        """(bytes) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], 'image.png', { type: 'image/png' }));
            const box = document.getElementById('composer-text');
            box.focus();
            const init = { clipboardData: data, bubbles: true, cancelable: true };
            box.dispatchEvent(new ClipboardEvent('paste', init));
        }""",
        list(PHOTO),
    )
    chip = page.locator("#composer-files .file-chip")
    expect(chip.locator(".file-name")).to_have_text("image.png")
    expect(page.locator("#composer-text")).to_have_value("see this")  # nothing pasted as text
    page.locator("#composer-text").press("Enter")
    expect(page.locator("#timeline .msg-agent img.attachment-image")).to_be_visible()


def test_refusals_are_said_in_words_and_nothing_is_uploaded(stack, context):
    clock, psid = Clock(), "3000000000000704"
    _handover(stack, clock, psid=psid, name="Quinn")
    page = login(context, "ana")
    _open(page, "Quinn")
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if "/attachments" in r.url and r.method == "POST" else None,
    )
    before = len(_uploads(stack))

    _drop(
        page,
        "[new File([new Uint8Array(25 * 1024 * 1024 + 1)], 'scan.pdf', {type: 'application/pdf'})]",
    )
    error = page.locator("#composer-files-error")
    expect(error).to_have_text("“scan.pdf” is 25.1 MB: Messenger takes files up to 25 MB.")
    page.locator("#file-input").set_input_files(
        [{"name": "setup.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ\x90\x00"}]
    )
    expect(error).to_have_text(
        "“setup.exe” is a program: the helpdesk does not send programs through Messenger."
    )
    page.locator("#file-input").set_input_files(
        [{"name": "empty.txt", "mimeType": "text/plain", "buffer": b""}]
    )
    expect(error).to_have_text("“empty.txt” is empty: there is nothing to send.")
    expect(page.locator("#composer-files .file-chip")).to_have_count(0)
    _shot(page, "files-refused-1280.png")
    assert posts == []

    # What only the server can tell (a picture that is not one): its words, files kept.
    page.locator("#file-input").set_input_files(
        [{"name": "photo.png", "mimeType": "image/png", "buffer": b"GIF89a not a png"}]
    )
    expect(error).to_be_hidden()
    page.locator("#composer-text").fill("the photo")
    page.locator("#composer-text").press("Enter")
    expect(error).to_have_text("“photo.png” is not the PNG picture its name says.")
    expect(page.locator("#composer-files .file-chip")).to_have_count(1)
    expect(page.locator("#composer-text")).to_have_value("the photo")
    expect(page.locator("#timeline .msg-agent")).to_have_count(0)
    assert len(_uploads(stack)) == before


def test_on_a_phone_the_chip_and_the_picture_fit(stack, chromium):
    clock, psid = Clock(), "3000000000000705"
    _handover(stack, clock, psid=psid, name="Rui")
    context = new_context(
        chromium, stack, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = login(context, "ana")
        page.get_by_role("button", name=re.compile("^Waiting")).click()
        page.locator(".ticket-row", has_text="Rui Tester").click()
        page.get_by_role("button", name="Claim").click()
        expect(page.locator("#composer-text")).to_be_enabled()
        page.locator("#file-input").set_input_files(
            [
                {
                    "name": "a-rather-long-name-for-the-dented-box-photo.png",
                    "mimeType": "image/png",
                    "buffer": PHOTO,
                }
            ]
        )
        chip = page.locator("#composer-files .file-chip")
        expect(chip).to_be_visible()
        box = chip.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        attach = page.locator("#attach-btn").bounding_box()
        assert attach is not None and attach["height"] >= 44
        _shot(page, "files-chip-390.png")
        page.locator("#send-btn").click()
        picture = page.locator("#timeline .msg-agent img.attachment-image")
        expect(picture).to_be_visible()
        page.wait_for_function(
            "() => document.querySelector('#timeline a.sent-image img').naturalWidth > 0"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        expect(page.locator("#timeline .msg-agent")).to_have_attribute(
            "data-status", "sent", timeout=SETTLE
        )
        _shot(page, "files-timeline-390.png")
    finally:
        context.close()
