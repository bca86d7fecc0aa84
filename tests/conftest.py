from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from agents.auth import token_create
from tests.support import payloads
from tests.support.fakegraph import FakeGraph
from webhooks.models import Page
from webhooks.services import page_connect


@pytest.fixture
def fake_graph(settings) -> Iterator[FakeGraph]:
    fake = FakeGraph().start()
    settings.GRAPH_API_URL = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def page(db) -> Page:
    page, _ = page_connect(
        page_id=payloads.PAGE_ID,
        access_token="page-token-secret",
        bot_app_id=payloads.BOT_APP_ID,
        name="Acme",
    )
    return page


@pytest.fixture
def clock() -> Callable[[], int]:
    """Increasing event timestamps (ms) starting a minute ago, so windows are open."""
    counter = itertools.count(int(time.time() * 1000) - 60_000, 10)
    return lambda: next(counter)


def _agent(username: str, **extra: Any):
    user = get_user_model().objects.create_user(
        username=username, password="pw-12345678", is_staff=True, **extra
    )
    user.api_token = token_create(user=user)
    return user


@pytest.fixture
def agent(db):
    return _agent("ana")


@pytest.fixture
def agent2(db):
    return _agent("bo")


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
def run_on_commit(django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """Run a callable and then what it scheduled after commit (tasks run eagerly)."""

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run
