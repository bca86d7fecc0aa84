from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.support import CHROMIUM, launch, new_context
from tests.support.stack import Stack, fake_graph_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """One real stack per module (starting one takes seconds); tests use their own PSIDs."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with fake_graph_stack(tmp_path_factory.mktemp("browser-stack")) as stack:
        stack.tokens = {name: stack.agent_token(name) for name in ("ana", "bo")}  # type: ignore[attr-defined]
        yield stack


@pytest.fixture(scope="module")
def chromium(stack) -> Iterator[Any]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def context(chromium, stack) -> Iterator[Any]:
    """A fresh browser profile; fails the test if a page threw an uncaught error."""
    context = new_context(chromium, stack, viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    context.on("page", lambda page: page.on("pageerror", lambda error: errors.append(str(error))))
    yield context
    context.close()
    assert errors == [], errors
