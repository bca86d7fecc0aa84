"""Error reporting to Sentry when SENTRY_DSN is set: an error logged by a process of the
helpdesk reaches a Sentry-protocol server (a recording fake on loopback) with its
traceback, and without a secret."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.loopback import LoopbackServer, QuietHandler

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "EAAB" + "k3Zp" * 10
FAIL = (
    "import logging\n"
    "try:\n"
    f"    raise RuntimeError('Graph refused the token {TOKEN}')\n"
    "except RuntimeError:\n"
    "    logging.getLogger('webhooks.graph').exception('the send failed')\n"
)


def _sentry() -> tuple[LoopbackServer, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.body()
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            received.append({"path": self.path, "items": lines})
            self.reply(200, b"{}", "application/json")

    return LoopbackServer(Handler).start(), received


def _run(dsn: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")},
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "HELPDESK_ENV_FILE": "",
        "DEBUG": "1",
        "SENTRY_DSN": dsn,
        "SENTRY_RELEASE": "test-release",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", FAIL],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_an_error_reaches_sentry_with_its_traceback_and_no_secret():
    server, received = _sentry()
    try:
        _run(f"http://publickey@127.0.0.1:{server.port}/42")
    finally:
        server.stop()
    events = [
        item
        for envelope in received
        for item in envelope["items"]
        if isinstance(item, dict) and item.get("level") == "error"
    ]
    assert [e["path"] for e in received] == ["/api/42/envelope/"] * len(received)
    [event] = events
    assert (event["environment"], event["release"]) == ("development", "test-release")
    assert event["logentry"]["message"] == "the send failed"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "Graph refused the token [secret]"
    assert TOKEN not in json.dumps(received)
    assert "user" not in event and "request" not in event
