"""The whole story against the Messenger Platform emulator, with real processes.

The customer talks to the emulator's demo bot, taps "Talk to a human"; the helpdesk
(Daphne, Celery worker and beat, Redis) sees it on standby, requests control, the bot
passes it, an agent claims and replies, closes, and the bot welcomes the user back.
Every Graph call the helpdesk makes goes through the emulator's rule checks.
"""

from __future__ import annotations

import pytest
import requests

from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import emulator_stack, helpdesk_calls

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(tmp_path):
    with emulator_stack(tmp_path) as world:
        yield world


def test_the_story_with_the_emulator(world):
    emulator, stack = world
    token = stack.agent_token("ana")
    auth = {"Authorization": f"Bearer {token}"}
    api = f"{stack.base_url}/api/v1"
    user = emulator.user_create("Grace", "Hopper")
    psid = user.psid

    # The customer chats with the bot.
    emulator.user_says(psid, "hello")
    greeting = eventually(
        lambda: [m for m in emulator.transcript(psid) if m["author"] == "bot"],
        what="the bot's greeting",
    )[-1]
    assert [b["title"] for b in greeting["buttons"]] == ["Talk to a human"]

    # "Talk to a human": the helpdesk asks, the bot passes, a ticket appears.
    emulator.user_taps_button(psid, greeting["mid"], 0)
    [ticket] = eventually(
        lambda: requests.get(
            f"{api}/tickets", params={"status": "waiting"}, headers=auth, timeout=5
        ).json(),
        what="a waiting ticket",
    )
    assert ticket["contact"]["psid"] == psid
    assert ticket["contact"]["name"] == "Grace Hopper"
    assert emulator.owner(psid) == payloads.APP_ID
    url = f"{api}/tickets/{ticket['id']}"
    history = requests.get(f"{url}/messages", headers=auth, timeout=5).json()
    context = [(m["author_kind"], m["text"]) for m in history if m["context"]]
    assert context[0] == ("customer", "hello")
    assert ("customer", "Talk to a human") in context
    assert any(kind == "bot" for kind, _ in context)

    # The agent claims and replies; the customer sees it.
    assert requests.post(f"{url}/claim", headers=auth, timeout=5).status_code == 200
    reply = requests.post(
        f"{url}/reply", json={"text": "Hi Grace, Ana here."}, headers=auth, timeout=5
    )
    assert reply.status_code == 201
    eventually(
        lambda: any(
            m["author"] == "agent" and m["text"] == "Hi Grace, Ana here."
            for m in emulator.transcript(psid)
        ),
        what="the reply on the customer's side",
    )
    eventually(
        lambda: [
            m
            for m in requests.get(f"{url}/messages", headers=auth, timeout=5).json()
            if m["id"] == reply.json()["id"] and m["status"] == "sent"
        ],
        what="the reply confirmed",
    )

    # The customer answers; the agent closes; the bot is back.
    emulator.user_says(psid, "thanks, that's all")
    eventually(
        lambda: any(
            m["text"] == "thanks, that's all" and not m["context"]
            for m in requests.get(f"{url}/messages", headers=auth, timeout=5).json()
        ),
        what="the customer's answer in the ticket",
    )
    closed = requests.post(f"{url}/close", json={"outcome": "resolved"}, headers=auth, timeout=5)
    assert closed.status_code == 200
    eventually(lambda: emulator.owner(psid) == payloads.BOT_APP_ID, what="control back to the bot")
    welcome = eventually(
        lambda: [
            m
            for m in emulator.transcript(psid)
            if m["author"] == "bot" and m["text"].startswith("Welcome back")
        ],
        what="the bot welcoming the user back",
    )
    assert welcome
    emulator.user_says(psid, "what are your opening hours?")
    eventually(
        lambda: emulator.transcript(psid)[-1]["author"] == "bot",
        what="the bot answering again",
    )
    final = requests.get(url, headers=auth, timeout=5).json()
    assert (final["status"], final["control_state"]) == ("closed", "bot")

    # Exactly one request, one send, one pass; none refused by the platform.
    assert [c["status"] for c in helpdesk_calls(emulator, "/me/request_thread_control")] == [200]
    assert [c["status"] for c in helpdesk_calls(emulator, "/me/messages")] == [200]
    assert [c["status"] for c in helpdesk_calls(emulator, "/me/pass_thread_control")] == [200]
    assert [c for c in emulator.graph_calls if c["status"] != 200] == []


@pytest.fixture
def cr_world(tmp_path):
    with emulator_stack(tmp_path, cr_take=True) as world:
        yield world


def test_the_story_on_a_conversation_routing_page_that_refuses_requests(cr_world):
    """The demo page of `make run`: Meta refuses the request, the helpdesk takes the
    conversation (the ticket opens once, with no webhook of its own), the agent's reply
    carries their persona, and closing passes control back in the last message."""
    emulator, stack = cr_world
    token = stack.agent_token("ana")
    auth = {"Authorization": f"Bearer {token}"}
    api = f"{stack.base_url}/api/v1"
    psid = emulator.user_create("Grace", "Hopper").psid

    emulator.user_says(psid, "hello")
    greeting = eventually(
        lambda: [m for m in emulator.transcript(psid) if m["author"] == "bot"],
        what="the bot's greeting",
    )[-1]
    emulator.user_taps_button(psid, greeting["mid"], 0)
    [ticket] = eventually(
        lambda: requests.get(
            f"{api}/tickets", params={"status": "waiting"}, headers=auth, timeout=5
        ).json(),
        what="a waiting ticket",
    )
    assert emulator.owner(psid) == payloads.APP_ID
    url = f"{api}/tickets/{ticket['id']}"
    assert ticket["owner_text"] == "The helpdesk has this conversation"
    # Refused once, taken once; the page remembers that taking works.
    assert [c["status"] for c in helpdesk_calls(emulator, "/me/request_thread_control")] == [400]
    assert [c["status"] for c in helpdesk_calls(emulator, "/me/take_thread_control")] == [200]

    assert requests.post(f"{url}/claim", headers=auth, timeout=5).status_code == 200
    reply = requests.post(f"{url}/reply", json={"text": "Hi Grace."}, headers=auth, timeout=5)
    assert reply.status_code == 201
    shown = eventually(
        lambda: [
            m
            for m in emulator.transcript(psid)
            if m["author"] == "agent" and m["text"] == "Hi Grace."
        ],
        what="the reply on the customer's side",
    )
    assert shown[0]["persona"]["name"] == "ana"

    closed = requests.post(
        f"{url}/close",
        json={"closing_message": "Bye!", "outcome": "resolved"},
        headers=auth,
        timeout=5,
    )
    assert closed.status_code == 200
    eventually(lambda: emulator.owner(psid) == payloads.BOT_APP_ID, what="control back to the bot")
    eventually(
        lambda: requests.get(url, headers=auth, timeout=5).json()["control_state"] == "bot",
        what="the helpdesk seeing the bot has it",
    )
    # The hand-back rode on the closing message: no separate pass call.
    assert helpdesk_calls(emulator, "/me/pass_thread_control") == []
    assert [c["status"] for c in helpdesk_calls(emulator, "/me/messages")] == [200, 200]
    tickets = requests.get(f"{api}/tickets", headers=auth, timeout=5).json()
    assert [t["id"] for t in tickets if t["contact"]["psid"] == psid] == [ticket["id"]]
