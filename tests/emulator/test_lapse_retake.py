"""Issue 10, "a lapse reconciled and re-taken", against the Messenger emulator (not the
recording fake): the helpdesk in this process, its Graph API the emulator's over
loopback, its clock the emulator's (DEV_CLOCK_FILE, as `make run` wires them), and the
emulator's webhooks for it fed to its webhook endpoint by the test, in the order the
emulator sent them (tasks run eagerly).

The page is what most real Pages are now: Conversation Routing with the demo bot as
default app, requests refused, the helpdesk allowed to take control."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from agents.models import ControlState, Conversation, Ticket
from agents.services import reconcile
from helpdesk import clock as helpdesk_clock
from tests.emulator.support import Receiver
from tests.support import factories, payloads
from webhooks.emulator import Emulator, EmulatorConfig, UserConfig
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

PSID = payloads.PSID
HELPDESK, BOT = payloads.APP_ID, payloads.BOT_APP_ID
TOKEN = "emulator-page-token"
DAY = 24 * 3600
LAPSE_NOTE = "Messenger gives control back after 24 h without a customer message"


@dataclass
class World:
    """The emulator and the helpdesk, wired to each other inside the test."""

    emulator: Emulator
    receiver: Receiver
    client: Client
    capture: Any  # django_capture_on_commit_callbacks
    forwarded: int = 0
    calls_seen: int = 0
    statuses: list[int] = field(default_factory=list)

    def deliver(self) -> None:
        """Feed the helpdesk every webhook the emulator sent it, in order, until the
        emulator is quiet (what the helpdesk does may make it send more)."""
        while True:
            assert self.emulator.wait_idle()
            new = self.receiver.posts()[self.forwarded :]
            if not new:
                return
            for received in new:
                self.forwarded += 1
                with self.capture(execute=True):
                    response = self.client.post(
                        "/webhooks/messenger/",
                        received.body,
                        content_type="application/json",
                        headers={"X-Hub-Signature-256": received.headers["X-Hub-Signature-256"]},
                    )
                self.statuses.append(response.status_code)

    def new_calls(self) -> list[tuple[str, str, int]]:
        """The helpdesk's Graph calls since the last look, as the emulator answered them."""
        calls = [c for c in list(self.emulator.graph_calls) if c["app_id"] == HELPDESK]
        new, self.calls_seen = calls[self.calls_seen :], len(calls)
        return [(c["method"], c["path"], c["status"]) for c in new]

    def owner(self) -> str | None:
        return self.emulator.owner(PSID)


@pytest.fixture
def world(settings, tmp_path, client, django_capture_on_commit_callbacks) -> Iterator[World]:
    receiver = Receiver().start()
    config = EmulatorConfig.demo(
        port=0,
        helpdesk_app_id=HELPDESK,
        helpdesk_secret=payloads.APP_SECRET,
        helpdesk_token=TOKEN,
        helpdesk_callback_url=receiver.url,
        requests_refused=True,
        helpdesk_can_take=True,
        users=[UserConfig("Ada", "Lovelace", psid=PSID)],
    )
    emulator = Emulator(config, state_dir=tmp_path / "emulator")
    emulator.start()
    settings.GRAPH_API_URL = emulator.graph_url
    # The helpdesk's clock follows the emulator's, as under `make run`.
    settings.DEV_CLOCK_FILE = str(tmp_path / "emulator" / "clock.json")
    factories.page(access_token=TOKEN)
    try:
        yield World(emulator, receiver, client, django_capture_on_commit_callbacks)
    finally:
        emulator.stop()
        receiver.stop()


def _transitions(conversation: Conversation) -> list[tuple[str, str, str]]:
    return [(t.from_state, t.to_state, t.cause) for t in conversation.transitions.all()]


def _ask_for_a_person(world: World) -> None:
    """The customer greets the bot, then taps its "Talk to a human" button."""
    world.emulator.user_says(PSID, "hi")
    world.deliver()
    [greeting] = [m for m in world.emulator.transcript(PSID) if m["author"] == "bot"]
    world.emulator.user_taps_button(PSID, greeting["mid"], 0)
    world.deliver()


def test_a_lapse_is_reconciled_with_thread_owner_and_the_agent_takes_the_conversation_again(
    world, api, post
):
    # Given: the customer asks for a person. Meta refuses the request on this page, the
    # helpdesk takes control instead, and the ticket opens.
    _ask_for_a_person(world)
    assert world.owner() == HELPDESK
    assert world.new_calls() == [
        ("GET", f"/{PSID}", 200),  # the customer's profile
        ("POST", "/me/request_thread_control", 400),
        ("POST", "/me/take_thread_control", 200),
    ]
    conversation = Conversation.objects.get()
    ticket = Ticket.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.AGENT, "helpdesk")
    assert (ticket.status, ticket.flagged) == ("waiting", False)
    assert _transitions(conversation) == [
        ("bot", "requested", "webhook"),  # the customer's tap, a standby webhook
        ("requested", "agent", "api"),  # the take's answer
    ]
    last_customer_message = conversation.last_user_message_at
    assert last_customer_message is not None

    # When: a day and a minute pass without a word from the customer.
    posts = len(world.receiver.posts())
    world.emulator.advance_clock(DAY + 60)
    assert world.emulator.wait_idle()

    # Then Messenger gives control back silently: the thread is idle, no webhook says so,
    # and the helpdesk still thinks it has the conversation.
    assert world.owner() is None
    assert len(world.receiver.posts()) == posts
    assert helpdesk_clock.now() - last_customer_message > timedelta(hours=24)
    conversation.refresh_from_db()
    assert conversation.control_state == ControlState.AGENT

    # When the lapse reconciliation runs (Celery beat's task).
    with world.capture(execute=True):
        checked = reconcile.control_lapse_reconcile()

    # Then it asked Meta who owns the thread, once, and made nothing else.
    assert checked == [conversation.pk]
    assert world.new_calls() == [("GET", "/me/thread_owner", 200)]
    assert world.owner() is None
    # Nobody owns it, since the moment Messenger gave it back, and the agent is told why.
    conversation.refresh_from_db()
    lapsed_at = int((last_customer_message + timedelta(hours=24)).timestamp() * 1000)
    assert (
        conversation.control_state,
        conversation.owner_role,
        conversation.owner_note,
        conversation.owner_since,
    ) == (ControlState.IDLE, "nobody", LAPSE_NOTE, lapsed_at)
    [lapse] = [e for e in world.emulator.transcript(PSID) if e["text"].endswith("lapsed (idle)")]
    assert (lapse["text"], lapse["timestamp"]) == ("Control of Helpdesk lapsed (idle)", lapsed_at)
    assert _transitions(conversation)[2:] == [("agent", "idle", "reconcile")]
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert (shown["control_state"], shown["owner_text"], shown["owner_note"]) == (
        "idle",
        "Nobody owns this conversation",
        LAPSE_NOTE,
    )
    assert shown["lock_reason"] == (
        f"Nobody owns this conversation ({LAPSE_NOTE}); replies are locked."
    )
    # The window is closed too: taking it now would lapse at once, and is not offered.
    assert shown["can_take_over"] is False
    refused = post(api, f"/api/v1/tickets/{ticket.pk}/take-control")
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("The customer last wrote more than 24 hours ago")
    assert world.new_calls() == []
    assert _transitions(conversation)[3:] == []

    # When the customer writes again: on an idle thread it goes to the default app.
    world.emulator.user_says(PSID, "Hello? Is anyone there?")
    world.deliver()
    assert world.owner() == BOT
    # (The helpdesk gets it on standby; no webhook names an owner: its state stays.)
    assert world.new_calls() == []
    conversation.refresh_from_db()
    assert conversation.control_state == ControlState.IDLE
    assert _transitions(conversation)[3:] == []

    # Then the agent may take it again from the ticket ("Take over").
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["can_take_over"] is True
    taken = post(api, f"/api/v1/tickets/{ticket.pk}/take-control")
    world.deliver()

    assert taken.status_code == 202
    assert world.new_calls() == [("POST", "/me/take_thread_control", 200)]  # one take only
    assert world.owner() == HELPDESK
    conversation.refresh_from_db()
    assert (conversation.control_state, conversation.owner_role, conversation.owner_note) == (
        ControlState.AGENT,
        "helpdesk",
        "",
    )
    assert _transitions(conversation) == [
        ("bot", "requested", "webhook"),
        ("requested", "agent", "api"),
        ("agent", "idle", "reconcile"),
        ("idle", "requested", "agent"),  # the agent's "Take over"
        ("requested", "agent", "api"),  # the take's answer
    ]
    # The same ticket goes on, unlocked: the agent can reply.
    ticket.refresh_from_db()
    assert (Ticket.objects.count(), ticket.status, ticket.flagged) == (1, "waiting", False)
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert (shown["owner_text"], shown["lock_reason"]) == (
        "The helpdesk has this conversation",
        "",
    )
    # Every webhook the emulator sent was taken and applied.
    assert set(world.statuses) == {200}
    assert list(WebhookDelivery.objects.values_list("status", flat=True).distinct()) == [
        "processed"
    ]


def test_while_the_helpdesk_asks_for_the_thread_the_timeline_says_the_bot_still_has_it(world):
    _ask_for_a_person(world)

    conversation = Conversation.objects.get()
    # The bot held the thread until the take: the "requested" row names it as the owner
    # (the conversation was first seen on standby, so the bot's app id was never seen).
    assert [(t.to_state, t.owner_role) for t in conversation.transitions.all()] == [
        ("requested", "bot"),
        ("agent", "helpdesk"),
    ]
