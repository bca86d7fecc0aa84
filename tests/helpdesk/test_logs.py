"""Log lines: JSON in production with the ids of what they are about, never a secret."""

from __future__ import annotations

import json
import logging

import pytest

from helpdesk import logs

TOKEN = "EAAB" + "x7Yq" * 10


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"boom with {TOKEN}")
        except RuntimeError:
            import sys  # noqa: PLC0415

            exc_info = sys.exc_info()
    return logging.LogRecord(
        "webhooks.graph", logging.WARNING, __file__, 1, message, args, exc_info
    )


def test_a_json_line_carries_the_bound_ids():
    with logs.bind(request_id="r-123456789", ticket_id=7), logs.bind(conversation_id=3):
        line = json.loads(logs.JsonFormatter().format(_record("sent %s", "ok")))
    assert line.pop("time").endswith("+00:00")
    assert line == {
        "level": "WARNING",
        "logger": "webhooks.graph",
        "message": "sent ok",
        "request_id": "r-123456789",
        "ticket_id": 7,
        "conversation_id": 3,
    }
    # outside the block, nothing is bound
    assert set(json.loads(logs.JsonFormatter().format(_record("x")))) == {
        "time",
        "level",
        "logger",
        "message",
    }


@pytest.mark.parametrize(
    "text",
    [
        f"token {TOKEN} refused",
        f"GET /v23.0/debug_token?input_token={TOKEN[:10]}abc&appsecret_proof=deadbeef01",
        "url https://graph.facebook.com/me?access_token=secret-value-1&fields=id",
        "header Authorization: Bearer abcdefgh12345678",
    ],
)
def test_secrets_are_masked_in_both_formats(text):
    for formatter in (logs.JsonFormatter(), logs.PlainFormatter()):
        out = formatter.format(_record("%s", text))
        for secret in (TOKEN, "deadbeef01", "secret-value-1", "abcdefgh12345678", "abc&"):
            assert secret not in out, (formatter, out)
        assert logs.MASK in out


def test_a_traceback_is_one_field_and_masked():
    line = json.loads(logs.JsonFormatter().format(_record("failed", exc=True)))
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: boom with [secret]" in line["exception"]
    assert TOKEN not in json.dumps(line)


def test_task_ids_from_the_arguments():
    assert logs.task_ids("t-1", "webhooks.tasks.deliveries_process", {"delivery_ids": (4, 5)}) == {
        "task_id": "t-1",
        "task": "webhooks.tasks.deliveries_process",
        "delivery_id": [4, 5],
    }
    assert logs.task_ids("t-2", "agents.tasks.x", {"ticket_id": 9, "text": "hello"}) == {
        "task_id": "t-2",
        "task": "agents.tasks.x",
        "ticket_id": 9,
    }


def test_the_request_id_is_sent_back(client, db):
    response = client.get("/login/", HTTP_X_REQUEST_ID="proxy-id-12345")
    assert response["X-Request-ID"] == "proxy-id-12345"
    made_up = client.get("/login/", HTTP_X_REQUEST_ID="bad id\\n").headers["X-Request-ID"]
    assert len(made_up) == 32 and made_up != "bad id\\n"
