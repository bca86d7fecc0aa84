"""Shared by the browser tests and the screenshot scripts: Debian's Chromium via
Playwright, against a real stack (tests.support.stack).

Nothing leaves loopback: every request the page makes elsewhere is aborted, and
Chromium resolves no host name but loopback's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.support.fakegraph import FakeGraph
from tests.support.stack import PASSWORD, Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
NOT_LOOPBACK = re.compile(r"^(?!(https?|wss?)://(127\.0\.0\.1|localhost)[:/]).*")

# How long an `expect` waits before failing, unless a test says otherwise: generous, so
# that a busy machine does not fail the suite. Playwright's default (5 s) is a hidden
# wall-clock budget; tests assert that something happens, `make bench` how fast.
EXPECT_TIMEOUT_MS = 15_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def fake_of(stack: Stack) -> FakeGraph:
    return stack.fake  # type: ignore[attr-defined]


def sender_actions(stack: Stack, psid: str) -> list[Any]:
    return [
        c
        for c in fake_of(stack).calls_to("/me/messages")
        if "sender_action" in c.body and c.body["recipient"]["id"] == psid
    ]


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def new_context(browser: Any, stack: Stack, **options: Any) -> Any:
    context = browser.new_context(base_url=stack.base_url, **options)
    context.route(NOT_LOOPBACK, lambda route: route.abort())
    return context


def login(
    context: Any,
    username: str,
    password: str = PASSWORD,
    *,
    on_page: Callable[[Any], None] | None = None,
) -> Any:
    """Log in through the login page; returns the inbox page. `on_page` is given the
    page before it loads anything (to listen to its socket, say)."""
    page = context.new_page()
    if on_page is not None:
        on_page(page)
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/(\?.*)?$"))
    return page
