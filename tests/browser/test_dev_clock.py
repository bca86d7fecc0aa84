"""The inbox's countdowns in Chromium follow the server's clock (X-Server-Time), which in
development follows the emulator's: moving the emulator 23 h forward leaves less than an
hour of the window on the agent's screen. A countdown never shows more than the window.

Its own stack, in development mode with DEV_CLOCK_FILE naming the clock file a real
emulator writes (as `make run` sets it up)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import CHROMIUM, fake_of, login
from tests.support import payloads
from tests.support.stack import Clock, Stack, fake_graph_stack
from webhooks.emulator import Emulator, EmulatorConfig

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

HOUR = 3600
SETTLE = 10_000
SHOTS = Path("/tmp/shots-demo")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Emulator:
    """make run's emulator; only its clock (and the file it writes) is used here."""
    return Emulator(
        EmulatorConfig.demo(port=0, helpdesk_callback_url=None),
        state_dir=tmp_path_factory.mktemp("emulator"),
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory, emulator) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    clock_file = emulator.state_dir.clock_file  # type: ignore[union-attr]
    with fake_graph_stack(
        tmp_path_factory.mktemp("dev-clock-stack"), DEBUG="1", DEV_CLOCK_FILE=str(clock_file)
    ) as stack:
        stack.tokens = {"ana": stack.agent_token("ana")}  # type: ignore[attr-defined]
        yield stack


def _handover(stack: Stack, *, psid: str, text: str, ts: int) -> None:
    fake_of(stack).profiles[psid] = {"first_name": text, "last_name": "Tester", "profile_pic": ""}
    stack.post_webhook(payloads.user_message(text, ts=ts, psid=psid), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=ts + 1, psid=psid))


def _open(page, text: str) -> None:
    page.goto("/?queue=all_open")
    row = page.locator(".ticket-row", has_text=text)
    expect(row).to_be_visible(timeout=SETTLE)
    row.click()
    expect(page.locator("#conversation")).to_be_visible()


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"))
    page.set_viewport_size({"width": 1280, "height": 800})


def test_moving_the_emulator_clock_moves_the_inbox_countdown(stack, context, emulator):
    now_ms = Clock()
    _handover(stack, psid="3000000000000701", text="Moved clock", ts=now_ms())
    page = login(context, "ana")
    _open(page, "Moved clock")
    windows = page.locator("#conv-windows")
    expect(windows).to_contain_text("24-hour window: 23 h")
    expect(windows).not_to_have_class(re.compile(r"\bclosing\b"))

    # The emulator's control page moves the clock 23 hours forward.
    emulator.advance_clock(23 * HOUR)
    _open(page, "Moved clock")

    expect(windows).to_contain_text(re.compile(r"24-hour window: \d{1,2} min left"))
    expect(windows).to_have_class(re.compile(r"\bclosing\b"))
    expect(page.locator(".ticket-row", has_text="Moved clock")).to_contain_text("waiting 23 h")
    _shoot(page, "countdown-after-23h")

    # Two more hours: the window is closed, and the composer says why.
    emulator.advance_clock(2 * HOUR)
    _open(page, "Moved clock")
    expect(windows).to_contain_text("24-hour window: closed")
    expect(page.locator("#composer-lock")).to_contain_text("24-hour messaging window is closed")
    _shoot(page, "countdown-closed")


def test_a_countdown_never_shows_more_than_the_window(stack, context, emulator):
    # Meta's clock 20 hours ahead of ours (the parser believes up to 24 h ahead).
    ahead = int((time.time() + emulator.clock.offset_seconds + 20 * HOUR) * 1000)
    _handover(stack, psid="3000000000000702", text="Clock ahead", ts=ahead)
    page = login(context, "ana")

    _open(page, "Clock ahead")

    expect(page.locator("#conv-windows")).to_contain_text(
        re.compile(r"24-hour window: (23 h 59 min|1 d 0 h) left")
    )
