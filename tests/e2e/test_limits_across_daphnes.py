"""What several Daphne processes share through Redis for this branch: the API rate
limit (the cache), and the per-agent socket group (a logout through one process
closes that session's socket on another)."""

from __future__ import annotations

import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from helpdesk.localservices import free_port
from tests.support.stack import PASSWORD, daphne_start

pytestmark = pytest.mark.e2e


def _two_more_daphnes(stack, **env: str) -> tuple[str, str]:
    stack.env.update(env)
    ports = free_port(), free_port()
    for n, port in enumerate(ports):
        daphne_start(stack, f"daphne-{n}", port)
    return tuple(f"http://127.0.0.1:{port}" for port in ports)  # type: ignore[return-value]


def test_the_api_rate_limit_is_one_count_across_processes(stack):
    one, other = _two_more_daphnes(stack, API_RATE_LIMIT_PER_MINUTE="4")
    headers = {"Authorization": f"Bearer {stack.agent_token('ana')}"}
    if time.time() % 60 > 50:  # keep the five requests inside one minute's count
        time.sleep(61 - time.time() % 60)

    statuses = [
        requests.get(f"{base}/api/v1/queues", headers=headers, timeout=10).status_code
        for base in (one, other, one, other)
    ]
    refused = requests.get(f"{other}/api/v1/queues", headers=headers, timeout=10)

    assert statuses == [200, 200, 200, 200]
    assert (refused.status_code, refused.json()) == (429, {"detail": "Too many requests."})
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_logging_out_through_one_process_closes_the_socket_on_another(stack):
    one, other = _two_more_daphnes(stack)
    stack.agent_token("ana")
    session = requests.Session()
    session.get(f"{one}/login/", timeout=5)
    login = session.post(
        f"{one}/login/",
        data={
            "username": "ana",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        allow_redirects=False,
        timeout=5,
    )
    assert login.status_code == 302
    socket = connect(
        f"ws://{other.removeprefix('http://')}/ws/inbox/",
        origin=other,
        additional_headers={"Cookie": f"sessionid={session.cookies['sessionid']}"},
        proxy=None,
        open_timeout=10,
    )

    with socket:
        logout = session.post(
            f"{one}/logout/",
            data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
            allow_redirects=False,
            timeout=5,
        )
        assert logout.status_code == 302
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=10)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
