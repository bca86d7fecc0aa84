"""CSAT before hand-back against the Messenger Platform emulator, with real processes
(Daphne, Celery worker and beat, Redis): closing asks the customer for a rating, the
helpdesk keeps the conversation until the customer taps 4, thanks them, and the bot has
the conversation afterwards. A later tap on the old question reaches the helpdesk on
standby and changes nothing."""

from __future__ import annotations

import pytest
import requests

from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import emulator_stack, helpdesk_calls, waiting_ticket_claimed

pytestmark = pytest.mark.e2e

QUESTION = "How did we do? Tap a number: 1 is poor, 5 is great."
THANKS = "Thank you for your rating!"
CSAT_ON = (
    "from webhooks.models import Page; "
    f"Page.objects.filter(page_id='{payloads.PAGE_ID}').update(csat_enabled=True)"
)


@pytest.fixture
def cr_world(tmp_path):
    with emulator_stack(tmp_path, cr_take=True) as world:
        yield world


def test_the_customer_taps_4_and_the_bot_has_the_conversation_afterwards(cr_world):
    emulator, stack = cr_world
    stack.manage("shell", "-c", CSAT_ON)
    auth = {"Authorization": f"Bearer {stack.agent_token('ana')}"}
    api = f"{stack.base_url}/api/v1"
    psid = emulator.user_create("Grace", "Hopper").psid

    emulator.user_says(psid, "hello")
    greeting = eventually(
        lambda: [m for m in emulator.transcript(psid) if m["author"] == "bot"],
        what="the bot's greeting",
    )[-1]
    emulator.user_taps_button(psid, greeting["mid"], 0)
    ticket_id, url = waiting_ticket_claimed(api, auth)
    assert (
        requests.get(url, headers=auth, timeout=5)
        .json()["csat_on_close"]
        .startswith("The customer is asked for a rating")
    )
    closed = requests.post(
        f"{url}/close", json={"closing_message": "Bye!", "outcome": "ok"}, headers=auth, timeout=5
    )
    assert closed.status_code == 200

    # The closing message, then the question with 1 to 5; the helpdesk keeps the thread.
    question = eventually(
        lambda: [m for m in emulator.transcript(psid) if m.get("text") == QUESTION],
        what="the rating question on the customer's side",
    )[-1]
    assert [r["title"] for r in question["quick_replies"]] == ["1", "2", "3", "4", "5"]
    texts = [m.get("text") for m in emulator.transcript(psid) if m["author"] == "agent"]
    assert texts[-2:] == ["Bye!", QUESTION]
    assert emulator.owner(psid) == payloads.APP_ID
    waiting = requests.get(url, headers=auth, timeout=5).json()
    assert (waiting["status"], waiting["control_state"], waiting["csat_status"]) == (
        "closed",
        "returning",
        "waiting",
    )

    # The customer taps 4: recorded, thanked, and the bot has the conversation.
    emulator.user_taps_quick_reply(psid, question["mid"], 3)
    eventually(lambda: emulator.owner(psid) == payloads.BOT_APP_ID, what="control back to the bot")
    rated = eventually(
        lambda: (
            t
            if (t := requests.get(url, headers=auth, timeout=5).json())["control_state"] == "bot"
            else None
        ),
        what="the helpdesk seeing the bot has it",
    )
    assert (rated["csat_status"], rated["csat_score"], rated["csat_text"]) == (
        "answered",
        4,
        "Rated 4/5",
    )
    eventually(
        lambda: any(
            m["author"] == "bot" and m["text"].startswith("Welcome back")
            for m in emulator.transcript(psid)
        ),
        what="the bot welcoming the customer back",
    )
    agent_texts = [m.get("text") for m in emulator.transcript(psid) if m["author"] == "agent"]
    assert agent_texts[-3:] == ["Bye!", QUESTION, THANKS]
    # The thank-you carried the hand-back: no separate pass call; nothing refused.
    assert helpdesk_calls(emulator, "/me/pass_thread_control") == []
    sends = helpdesk_calls(emulator, "/me/messages")
    assert [c["status"] for c in sends] == [200, 200, 200]
    assert [
        c for c in emulator.graph_calls if c["status"] >= 400 and "request" not in c["path"]
    ] == []

    # A later tap on the old question reaches the helpdesk on standby: it changes nothing.
    emulator.user_taps_quick_reply(psid, question["mid"], 0)
    late = eventually(
        lambda: [
            m
            for m in requests.get(f"{url}/messages", headers=auth, timeout=5).json()
            if m["quick_reply_payload"] == f"CSAT:{ticket_id}:1"
        ],
        what="the late tap in the helpdesk",
    )
    assert late[0]["context"] is True  # the bot had the conversation: context
    final = requests.get(url, headers=auth, timeout=5).json()
    assert (final["csat_score"], final["control_state"]) == (4, "bot")
    assert len(helpdesk_calls(emulator, "/me/messages")) == 3
