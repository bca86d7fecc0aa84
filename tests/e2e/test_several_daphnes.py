"""Several Daphne processes share Redis: an agent's socket on one hears what happens
through another (production runs several behind a proxy)."""

from __future__ import annotations

import json

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from helpdesk.localservices import free_port
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import PASSWORD, Clock, daphne_port, daphne_start

pytestmark = pytest.mark.e2e


def _login(base_url: str, username: str) -> str:
    """Log in through the login form; returns the session cookie."""
    session = requests.Session()
    session.get(f"{base_url}/login/", timeout=5)
    response = session.post(
        f"{base_url}/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        allow_redirects=False,
        timeout=5,
    )
    assert (response.status_code, response.headers["Location"]) == (302, "/")
    return session.cookies["sessionid"]


def _socket(port: int, cookie: str | None = None):
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
    return connect(
        f"ws://127.0.0.1:{port}/ws/inbox/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers=headers,
        proxy=None,
        open_timeout=10,
    )


def _until(socket, match, *, timeout: float = 20.0) -> dict:
    """Read events until one matches; fail after `timeout` seconds."""
    seen: list[dict] = []

    def next_match() -> dict | None:
        try:
            frame = json.loads(socket.recv(timeout=0.5))
        except TimeoutError:
            return None
        for event in frame.get("events", [frame]):  # one event, or several
            seen.append(event)
            if match(event):
                return event
        return None

    return eventually(next_match, timeout=timeout, what=lambda: f"a matching event; got {seen}")


def test_an_agent_on_one_daphne_hears_what_happens_through_another(stack):
    clock = Clock()
    one, other = daphne_port(stack), free_port()
    daphne_start(stack, "daphne-other", other)
    stack.agent_token("ana")
    bo_token = stack.agent_token("bo")
    ana = _login(stack.base_url, "ana")
    api_other = f"http://127.0.0.1:{other}/api/v1"

    with _socket(one, ana) as socket:
        # a webhook POSTed to the other Daphne opens a ticket
        stack.base_url, base = f"http://127.0.0.1:{other}", stack.base_url
        try:
            stack.post_webhook(payloads.user_message("hello?", ts=clock()), channel="standby")
            stack.post_webhook(payloads.pass_control(ts=clock()))
        finally:
            stack.base_url = base
        opened = _until(socket, lambda e: e["event"] == "ticket.updated")
        ticket_id = opened["ticket_id"]

        # an agent replying through the other Daphne: its process broadcasts the message
        response = requests.post(
            f"{api_other}/tickets/{ticket_id}/reply",
            json={"text": "Hi, Bo here."},
            headers={"Authorization": f"Bearer {bo_token}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        message_id = response.json()["id"]
        created = _until(
            socket,
            lambda e: e["event"] == "message.created" and e.get("message_id") == message_id,
        )
        assert created == {
            "event": "message.created",
            "conversation_id": opened["conversation_id"],
            "message_id": message_id,
        }


def test_an_anonymous_socket_is_refused_by_daphne(stack):
    with pytest.raises(InvalidStatus) as refused:
        _socket(daphne_port(stack))
    assert refused.value.response.status_code == 403
