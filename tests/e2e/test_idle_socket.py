"""An agent's socket that stays idle is kept up by Daphne and the Redis channel layer.

redis-py 8 reads with a 5-second socket timeout by default, while channels-redis blocks
in BZPOPMIN for about as long: every idle socket was torn down with a TimeoutError
traceback in the Daphne log, and the inbox flashed "reconnecting" every few seconds.
"""

from __future__ import annotations

import json
import time

import pytest
from websockets.sync.client import connect

from tests.e2e.test_several_daphnes import _login, _until
from tests.support import payloads
from tests.support.stack import Clock, daphne_port

pytestmark = pytest.mark.e2e

IDLE_SECONDS = 15


def test_an_idle_agent_socket_stays_open_and_hears_the_next_event(stack):
    clock = Clock()
    port = daphne_port(stack)
    stack.agent_token("ana")
    cookie = _login(stack.base_url, "ana")

    with connect(
        f"ws://127.0.0.1:{port}/ws/inbox/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": f"sessionid={cookie}"},
        proxy=None,
        open_timeout=10,
        # No client pings: the socket is as idle as an agent's background tab.
        ping_interval=None,
    ) as socket:
        # Nothing is sent for the whole idle time; the socket must not be closed under us.
        deadline = time.monotonic() + IDLE_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            try:
                unexpected = socket.recv(timeout=left)
            except TimeoutError:
                break
            pytest.fail(f"an idle socket received {unexpected!r}")

        stack.post_webhook(payloads.user_message("still there?", ts=clock()), channel="standby")
        stack.post_webhook(payloads.pass_control(ts=clock()))
        opened = _until(socket, lambda e: e["event"] == "ticket.updated")
        assert opened["event"] == "ticket.updated"
        socket.send(json.dumps({"type": "ping"}))  # both ways, still
        assert _until(socket, lambda e: e.get("type") == "pong") == {"type": "pong"}

    daphne_log = (stack.tmp / "daphne.log").read_text()
    assert "Traceback" not in daphne_log
    assert "TimeoutError" not in daphne_log
