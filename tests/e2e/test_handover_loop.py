"""The whole handover loop with real Daphne, Celery worker and beat, and Redis processes.

standby context → trigger → request → pass → ticket → claim → reply sent → close →
control passed to the bot. The bot is played by the recording Graph fake: when asked
for the thread, it passes control with a signed webhook, as Meta would deliver it.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from tests.support import payloads
from tests.support.fakegraph import Call
from tests.support.polling import eventually
from tests.support.stack import Clock

pytestmark = pytest.mark.e2e


def test_the_whole_handover_loop(stack):
    fake, clock = stack.fake, Clock()

    def bot_passes_control(call: Call) -> None:
        # The bot answers a request by passing the thread, as its own app would.
        if call.path == "/me/request_thread_control":
            threading.Thread(
                target=stack.post_webhook,
                args=(payloads.pass_control(ts=clock(), metadata="bot: user asked for a human"),),
            ).start()

    fake.on_call.append(bot_passes_control)
    ana = {"Authorization": f"Bearer {stack.agent_token('ana')}"}
    bo = {"Authorization": f"Bearer {stack.agent_token('bo')}"}
    api = f"{stack.base_url}/api/v1"

    # standby context: the user talks to the bot
    stack.post_webhook(
        payloads.user_message("my parcel is late", ts=clock(), mid="m_ctx1"),
        payloads.echo("Sorry! Let me look.", ts=clock(), mid="m_ctx2"),
        channel="standby",
    )
    # the trigger: "Talk to a human" tapped on standby (no payload)
    stack.post_webhook(
        payloads.postback("Talk to a human", ts=clock(), mid="m_ctx3"), channel="standby"
    )

    [request] = fake.wait_for("/me/request_thread_control")
    assert request.body["recipient"] == {"id": payloads.PSID}
    assert json.loads(request.body["metadata"])["source"] == "helpdesk"

    tickets = eventually(
        lambda: requests.get(
            f"{api}/tickets", params={"status": "waiting"}, headers=ana, timeout=5
        ).json(),
        what="a waiting ticket",
    )
    [ticket] = tickets
    assert (ticket["control_state"], ticket["handover_metadata"], ticket["contact"]["psid"]) == (
        "agent",
        "bot: user asked for a human",
        payloads.PSID,
    )
    url = f"{api}/tickets/{ticket['id']}"
    history = requests.get(f"{url}/messages", headers=ana, timeout=5).json()
    assert [(m["mid"], m["author_kind"], m["context"]) for m in history] == [
        ("m_ctx1", "customer", True),
        ("m_ctx2", "bot", True),
        ("m_ctx3", "customer", True),
        (None, "system", False),
    ]

    # two agents claim at once: exactly one wins
    results: list[int] = []
    claims = [
        threading.Thread(
            target=lambda h=h: results.append(
                requests.post(f"{url}/claim", headers=h, timeout=10).status_code
            )
        )
        for h in (ana, bo)
    ]
    for thread in claims:
        thread.start()
    for thread in claims:
        thread.join()
    assert sorted(results) == [200, 409]
    winner = (
        ana
        if requests.get(url, headers=ana, timeout=5).json()["assignee"]["username"] == "ana"
        else bo
    )

    # the reply goes out through the Send API, once
    response = requests.post(
        f"{url}/reply", json={"text": "Hi, I'm on it."}, headers=winner, timeout=10
    )
    assert response.status_code == 201
    reply = response.json()
    [send] = fake.wait_for("/me/messages")
    assert send.body == {
        "recipient": {"id": payloads.PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hi, I'm on it.", "metadata": f"helpdesk:message={reply['id']}"},
        "persona_id": fake.calls_to("/me/personas")[0].answered["id"],  # the agent's
    }

    def reply_state():
        shown = [
            m
            for m in requests.get(f"{url}/messages", headers=winner, timeout=5).json()
            if m["id"] == reply["id"]
        ]
        return shown[0] if shown and shown[0]["status"] == "sent" else None

    sent = eventually(reply_state, what="the reply marked sent")
    # Meta echoes our message: matched, not stored twice
    stack.post_webhook(
        payloads.echo(
            "Hi, I'm on it.",
            ts=clock(),
            app_id=payloads.APP_ID,
            mid=sent["mid"],
            metadata=f"helpdesk:message={reply['id']}",
        )
    )
    stack.post_webhook(payloads.user_message("thanks!", ts=clock(), mid="m_t1"))
    eventually(
        lambda: any(
            m["mid"] == "m_t1"
            for m in requests.get(f"{url}/messages", headers=winner, timeout=5).json()
        ),
        what="the user's answer",
    )
    history = requests.get(f"{url}/messages", headers=winner, timeout=5).json()
    assert [m["author_kind"] for m in history if not m["context"]] == [
        "system",
        "agent",
        "customer",
    ]

    # close: control goes back to the bot
    closed = requests.post(f"{url}/close", json={"outcome": "resolved"}, headers=winner, timeout=10)
    assert closed.status_code == 200
    [passed] = fake.wait_for("/me/pass_thread_control")
    assert passed.body["target_app_id"] == payloads.BOT_APP_ID
    assert json.loads(passed.body["metadata"])["outcome"] == "resolved"
    final = eventually(
        lambda: (
            (t := requests.get(url, headers=winner, timeout=5).json())["control_state"] == "bot"
            and t
        ),
        what="control back with the bot",
    )
    assert final["status"] == "closed"

    time.sleep(2.5)  # beat re-drives every second: nothing may be sent twice
    assert len(fake.calls_to("/me/request_thread_control")) == 1
    assert len(fake.calls_to("/me/messages")) == 1
    assert len(fake.calls_to("/me/pass_thread_control")) == 1
    for call in fake.calls:
        assert "appsecret_proof" in call.query
        assert "e2e-page-token" not in json.dumps(call.query)


def test_deliveries_stored_while_redis_is_down_are_processed_by_beat(stack):
    fake, clock = stack.fake, Clock()
    token = stack.agent_token("ana")
    api = f"{stack.base_url}/api/v1"
    stack.stop_redis()

    # Redis is down: the webhook is still stored and acknowledged.
    stack.post_webhook(payloads.user_message("hello?", ts=clock()), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), metadata="while redis was down"))

    stack.start_redis()  # same port: the processes reconnect
    tickets = eventually(
        lambda: requests.get(
            f"{api}/tickets", timeout=5, headers={"Authorization": f"Bearer {token}"}
        ).json(),
        timeout=45,
        what="the re-driven ticket",
    )
    assert [t["handover_metadata"] for t in tickets] == ["while redis was down"]
    assert fake.calls_to("/me/request_thread_control") == []
