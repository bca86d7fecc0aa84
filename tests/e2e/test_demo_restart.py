"""`make run` again: the emulator keeps its world (var/emulator), so the helpdesk's demo
tickets stay those of users it has; when its world is lost (`make reset-demo`), the next
`demo_seed` removes the tickets of users that no longer exist. Real processes (Daphne,
Celery, Redis), the emulator in this process, started again on the same directory."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from helpdesk.localservices import free_port
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Stack
from webhooks.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.e2e


def demo_config(port: int) -> EmulatorConfig:
    """make run's emulator (the demo page, bot and token), signing as the tests' app."""
    return EmulatorConfig.demo(
        port=port,
        helpdesk_app_id=payloads.APP_ID,
        helpdesk_secret=payloads.APP_SECRET,
        helpdesk_callback_url=None,
    )


@contextmanager
def running(state_dir: Path, port: int, stack: Stack | None) -> Iterator[Emulator]:
    emulator = Emulator(demo_config(port), state_dir=state_dir)
    emulator.start()
    if stack is not None:
        emulator.set_callback_url(payloads.APP_ID, f"{stack.base_url}/webhooks/messenger/")
    try:
        yield emulator
    finally:
        emulator.stop()


def open_tickets(stack: Stack, token: str) -> list[dict]:
    response = requests.get(
        f"{stack.base_url}/api/v1/tickets",
        params={"queue": "all_open"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 200
    return response.json()


def assert_every_ticket_is_of_a_known_user(stack: Stack, token: str, emulator: Emulator):
    users = {u["psid"] for u in emulator.state()["users"]}
    assert {t["contact"]["psid"] for t in open_tickets(stack, token)} <= users


def test_the_demo_never_shows_tickets_of_users_the_emulator_does_not_have(tmp_path):
    state_dir, port = tmp_path / "emulator", free_port()
    with running(state_dir, port, None) as emulator:
        stack = Stack(tmp=tmp_path, graph_url=emulator.graph_url, page_name="Demo Page")
        try:
            stack.start()
            emulator.set_callback_url(payloads.APP_ID, f"{stack.base_url}/webhooks/messenger/")
            seeded = stack.manage("demo_seed", "--emulator-url", emulator.base_url)
            token = re.search(r"^API token: (\S+)$", seeded, re.M).group(1)
            auth = {"Authorization": f"Bearer {token}"}

            # Given Grace, who asked the bot for a human: a waiting ticket.
            grace = emulator.user_create("Grace", "Hopper").psid
            emulator.user_says(grace, "hello")
            greeting = eventually(
                lambda: [m for m in emulator.transcript(grace) if m["author"] == "bot"],
                what="the bot's greeting",
            )[-1]
            emulator.user_taps_button(grace, greeting["mid"], 0)
            [ticket] = eventually(lambda: open_tickets(stack, token), what="Grace's ticket")
            assert ticket["contact"]["psid"] == grace
            eventually(lambda: emulator.owner(grace) == payloads.APP_ID, what="control passed")
        except BaseException:
            print(stack.logs())
            stack.close()
            raise

    try:
        # When the emulator starts again (make run again, or its supervisor restarting it).
        with running(state_dir, port, stack) as emulator:
            # Then Grace is still there, with her thread ours: the ticket is hers.
            assert_every_ticket_is_of_a_known_user(stack, token, emulator)
            assert emulator.owner(grace) == payloads.APP_ID
            # And the demo goes on: the agent replies and Grace sees it.
            url = f"{stack.base_url}/api/v1/tickets/{ticket['id']}"
            assert requests.post(f"{url}/claim", headers=auth, timeout=5).status_code == 200
            reply = requests.post(
                f"{url}/reply", json={"text": "Hi Grace"}, headers=auth, timeout=5
            )
            assert reply.status_code == 201
            eventually(
                lambda: any(
                    m["author"] == "agent" and m["text"] == "Hi Grace"
                    for m in emulator.transcript(grace)
                ),
                what="the reply on Grace's side",
            )
            # make run seeds again: nothing to remove, the same token.
            again = stack.manage("demo_seed", "--emulator-url", emulator.base_url)
            assert "does not know" not in again
            assert f"API token: {token}\n" in again

        # When the emulator's world is lost (make reset-demo removes var/emulator).
        shutil.rmtree(state_dir)
        with running(state_dir, port, stack) as emulator:
            assert grace not in {u["psid"] for u in emulator.state()["users"]}
            seeded = stack.manage("demo_seed", "--emulator-url", emulator.base_url)

            # Then the next seed says so and takes Grace's ticket with her.
            assert (
                "The emulator does not know 1 contact(s) of Demo Page (its state was reset): "
                f"removed them with their conversations and tickets (PSIDs {grace})."
            ) in seeded
            assert open_tickets(stack, token) == []
            assert_every_ticket_is_of_a_known_user(stack, token, emulator)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()
