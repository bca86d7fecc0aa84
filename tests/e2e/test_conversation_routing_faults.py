"""Issue 10's hard cases against the Messenger emulator, with real Daphne, Celery worker
and beat, and Redis: a take that times out after taking effect is reconciled without a
second take; closing releases the thread (no webhook follows); a restricted page pauses
its outbox and resumes it with nothing lost or doubled."""

from __future__ import annotations

import pytest
import requests

from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import emulator_stack, helpdesk_calls

pytestmark = pytest.mark.e2e

ENV = {
    "GRAPH_API_TIMEOUT_SECONDS": "1",  # the take's answer is lost after 1 s
    "OUTBOX_PROBE_SECONDS": "1",  # a paused page is probed every second
}


@pytest.fixture
def world(tmp_path):
    with emulator_stack(tmp_path, cr_take=True, **ENV) as world:
        yield world


def test_unknown_take_release_and_a_restricted_page_against_the_emulator(world):
    emulator, stack = world
    auth = {"Authorization": f"Bearer {stack.agent_token('ana')}"}
    api = f"{stack.base_url}/api/v1"
    stack.manage(
        "shell",
        "-c",
        "from webhooks.models import Page; Page.objects.update(control_mode='take', "
        "handback='release')",
    )
    psid = emulator.user_create("Ada", "King").psid

    # The take goes through, its answer is lost: thread_owner says it is ours, the
    # ticket opens once, and no second take is made.
    emulator.fail_next_graph_calls(
        "timeout", seconds=3, applied=True, path="take_thread_control", app_id=payloads.APP_ID
    )
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
    # The emulator records the take as applied, then its answer as lost: one call.
    assert [c["fault"] for c in helpdesk_calls(emulator, "/me/take_thread_control")] == [
        None,
        "timeout (applied)",
    ]
    takes = stack.manage(
        "shell",
        "-c",
        "from webhooks.models import GraphCall; "
        "print(list(GraphCall.objects.filter(kind='take_thread_control')"
        ".values_list('status', 'attempts')))",
    )
    assert takes.strip().splitlines()[-1] == "[('uncertain', 1)]"
    assert [c["status"] for c in helpdesk_calls(emulator, "/me/thread_owner")] == [200]
    url = f"{api}/tickets/{ticket['id']}"
    detail = requests.get(url, headers=auth, timeout=5).json()
    assert detail["transitions"][-1]["cause"] == "reconcile"

    # The page is restricted: replies wait, once; lifted, they go out once each, in order.
    assert requests.post(f"{url}/claim", headers=auth, timeout=5).status_code == 200
    emulator.page_restrict(True)
    for text in ("one", "two"):
        sent = requests.post(f"{url}/reply", json={"text": text}, headers=auth, timeout=5)
        assert sent.status_code == 201
    eventually(
        lambda: requests.get(url, headers=auth, timeout=5).json()["outbox_paused_reason"],
        what="the page paused",
    )
    emulator.page_restrict(False)
    eventually(
        lambda: (
            [m["text"] for m in emulator.transcript(psid) if m["author"] == "agent"]
            == ["one", "two"]
        ),
        what="both replies on the customer's side",
    )
    eventually(
        lambda: requests.get(url, headers=auth, timeout=5).json()["outbox_paused_reason"] == "",
        what="the page resumed",
    )

    # Closing releases: the thread goes idle, no webhook tells anyone, the helpdesk knows.
    closed = requests.post(f"{url}/close", json={"outcome": "resolved"}, headers=auth, timeout=5)
    assert closed.status_code == 200
    eventually(lambda: emulator.owner(psid) is None, what="the thread idle")
    final = eventually(
        lambda: (
            (shown := requests.get(url, headers=auth, timeout=5).json())["control_state"] == "idle"
            and shown
        ),
        what="the helpdesk seeing it idle",
    )
    assert final["owner_text"] == "Nobody owns this conversation"
    assert [c["status"] for c in helpdesk_calls(emulator, "/me/release_thread_control")] == [200]
    assert helpdesk_calls(emulator, "/me/pass_thread_control") == []
    # The next message goes to the bot (the default app), which answers.
    emulator.user_says(psid, "what are your opening hours?")
    eventually(lambda: emulator.transcript(psid)[-1]["author"] == "bot", what="the bot answering")
    assert len(helpdesk_calls(emulator, "/me/take_thread_control")) == 2  # the one take, as above
