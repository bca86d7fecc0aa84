"""Production's logs from real processes: one JSON object per line from Daphne and the
Celery worker, each line with the ids of what it is about, no secret in any."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack, fake_graph_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    with fake_graph_stack(tmp_path, LOG_FORMAT="json") as stack:
        yield stack


def _lines(stack: Stack, name: str) -> list[dict]:
    """The process's log lines that are JSON (Celery prints its banner before logging)."""
    text = (stack.tmp / f"{name}.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_every_process_logs_json_with_ids_and_no_secret(stack):
    clock = Clock()
    stack.post_webhook(payloads.user_message("hello", ts=clock()), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), metadata="a human"))
    answer = requests.get(
        f"{stack.base_url}/login/", headers={"X-Request-ID": "probe-req-0001"}, timeout=10
    )
    assert answer.headers["X-Request-ID"] == "probe-req-0001"

    def task_lines() -> list[dict]:
        return [
            line
            for line in _lines(stack, "worker")
            if line.get("task") == "webhooks.tasks.deliveries_process"
        ]

    lines = eventually(task_lines, timeout=60, what="a processing task's lines")
    assert {"time", "level", "logger", "message", "task_id", "delivery_id"} <= set(lines[0])
    assert isinstance(lines[0]["delivery_id"], list) and lines[0]["delivery_id"]
    # every line of the worker and of Daphne that is a log line is JSON; none has a secret
    for name in ("worker", "daphne", "beat"):
        text = (stack.tmp / f"{name}.log").read_text()
        logged = [line for line in text.splitlines() if line.startswith("{")]
        assert logged, name
        for secret in ("e2e-page-token", payloads.APP_SECRET, "e2e-secret-key"):
            assert secret not in text, (name, secret)
    assert any(line["logger"].startswith("celery") for line in _lines(stack, "worker"))
