"""Shared by the browser tests and the screenshot script: a real stack (Redis, Daphne,
Celery worker and beat, the recording Graph fake) and Debian's Chromium via Playwright.

Nothing leaves loopback: every request the page makes elsewhere is aborted, and
Chromium resolves no host name but loopback's.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

from tests.fakegraph import FakeGraph
from tests.stack import BIN, Stack, fake_graph_stack

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
PASSWORD = "e2e-password-1"  # what Stack.agent_token gives every agent
NOT_LOOPBACK = re.compile(r"^(?!(https?|wss?)://(127\.0\.0\.1|localhost)[:/]).*")


class Clock:
    """Event timestamps as Meta stamps them: real time, strictly increasing."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._last = max(int(time.time() * 1000), self._last + 1)
            return self._last


running_stack = fake_graph_stack


def daphne_port(stack: Stack) -> int:
    return int(stack.base_url.rsplit(":", 1)[1])


def daphne_start(stack: Stack, name: str, port: int) -> None:
    from helpdesk.localservices import wait_for_port

    stack.spawn(
        name, str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "helpdesk.asgi:application"
    )
    wait_for_port(port, timeout=30)


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


def login(context: Any, username: str, password: str = PASSWORD) -> Any:
    """Log in through the login page; returns the inbox page."""
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/(\?.*)?$"))
    return page
