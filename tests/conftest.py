from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from agents.models import Agent
from tests.support import factories, payloads
from tests.support.fakegraph import FakeGraph
from webhooks.models import Page


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """The cache (marks of queued work, rate windows, the API's rate and bad-token
    counters) outlives a test's database: each test starts without the counts of the
    tests before it."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def fake_graph(settings) -> Iterator[FakeGraph]:
    fake = FakeGraph().start()
    settings.GRAPH_API_URL = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def page(db) -> Page:
    """The page Acme (payloads.PAGE_ID), its token "page-token-secret", its bot
    payloads.BOT_APP_ID, and the default triggers."""
    return factories.page()


@pytest.fixture
def clock() -> Callable[[], int]:
    """Event timestamps (ms) as Meta stamps them: now, and each at least 10 ms after the
    one before. What the helpdesk did itself (a pass back, a take) is older than the
    webhooks a test sends afterwards, as it is in production."""
    last = 0

    def stamp() -> int:
        nonlocal last
        last = max(last + 10, int(time.time() * 1000))
        return last

    return stamp


@pytest.fixture
def agent(db) -> Agent:
    return factories.agent("ana")


@pytest.fixture
def agent2(db) -> Agent:
    return factories.agent("bo")


@pytest.fixture
def api(agent) -> Client:
    return Client(headers={"Authorization": f"Bearer {agent.api_token}"})


@pytest.fixture
def api2(agent2) -> Client:
    return Client(headers={"Authorization": f"Bearer {agent2.api_token}"})


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """POST a signed delivery and run what it enqueues (tasks run eagerly)."""

    def post(*events: dict[str, Any], channel: str = "messaging", expect: int = 200) -> Any:
        body = payloads.body_bytes(payloads.delivery(*events, channel=channel))
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/webhooks/messenger/",
                body,
                content_type="application/json",
                headers={"X-Hub-Signature-256": payloads.signature(body)},
            )
        assert response.status_code == expect, response.content
        return response

    return post


@pytest.fixture
def post(django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """POST JSON with a client and run what the request enqueued (tasks run eagerly)."""

    def post(client: Client, url: str, data: dict[str, Any] | None = None) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, json.dumps(data or {}), content_type="application/json")

    return post


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """Run a callable and then what it scheduled after commit (tasks run eagerly)."""

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run
