"""The agents' WebSocket: only logged-in agents, small events sent after commit, and
only about the pages the agent's teams may see."""

from __future__ import annotations

import asyncio
import os
import threading
from unittest import mock

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from agents import realtime
from agents.consumers import InboxConsumer
from agents.models import AgentSocket, Team
from agents.realtime import INBOX_GROUP, broadcast
from agents.services.state import now_ms
from tests.support import factories, payloads
from webhooks.services import delivery_process, delivery_receive

BILLING_PAGE = "1000000000000011"


async def _connect(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


# --- the socket -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_anonymous_sockets_are_refused():
    async_to_sync(_anonymous_sockets_are_refused)()


async def _anonymous_sockets_are_refused():
    communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    communicator.scope["user"] = AnonymousUser()
    connected, code = await communicator.connect()
    assert (connected, code) == (False, 4401)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_agents_get_small_events(agent):
    async_to_sync(_agents_get_small_events)(agent)


async def _agents_get_small_events(agent):
    communicator = await _connect(agent)
    await database_sync_to_async(broadcast)("ticket.updated", ticket_id=7, conversation_id=3)
    assert await communicator.receive_json_from(timeout=2) == {
        "event": "ticket.updated",
        "ticket_id": 7,
        "conversation_id": 3,
    }
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=2) == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.django_db
def test_events_leave_only_after_commit(
    page, clock, fake_graph, settings, django_capture_on_commit_callbacks
):
    delivery = delivery_receive(
        body=payloads.body_bytes(payloads.delivery(payloads.pass_control(ts=clock())))
    )
    with mock.patch("agents.realtime.broadcast") as sent:
        with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
            delivery_process(delivery_id=delivery.pk)
            sent.assert_not_called()
        for callback in callbacks:
            callback()
    kinds = [c.args[0] for c in sent.call_args_list]
    assert kinds == ["conversation.updated", "ticket.updated", "message.created"]


@pytest.mark.django_db(transaction=True)
def test_an_event_reaches_the_socket_while_the_sync_thread_is_busy(agent):
    """An event fanned out to a Daphne process's sockets does not wait, socket by socket,
    for Django's one sync thread: Channels would hop there before every message a
    consumer handles (to close stale database connections; this consumer's database work
    closes them itself), and a thousand sockets made a thousand hops in a row."""
    async_to_sync(_event_while_the_sync_thread_is_busy)(agent)


async def _event_while_the_sync_thread_is_busy(agent):
    communicator = await _connect(agent)
    release = threading.Event()
    # Holds the sync thread (thread-sensitive, as database_sync_to_async) until released.
    busy = asyncio.ensure_future(sync_to_async(release.wait)(30))
    try:
        await _an_event_is_heard(communicator)
    finally:
        release.set()
        assert await busy is True
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=10) == {"type": "pong"}
    await communicator.disconnect()


async def _an_event_is_heard(communicator):
    """A ticket.updated sent to the inbox group reaches this socket."""
    await get_channel_layer().group_send(
        INBOX_GROUP,
        {"type": "inbox.event", "event": "ticket.updated", "ticket_id": 7, "conversation_id": 3},
    )
    assert await communicator.receive_json_from(timeout=10) == {
        "event": "ticket.updated",
        "ticket_id": 7,
        "conversation_id": 3,
    }


@pytest.mark.django_db(transaction=True)
def test_a_ping_does_not_hold_the_socket_s_events_while_its_heartbeat_waits(agent):
    """The heartbeat a ping moves is written beside the socket, not in its way: while
    that write waits (here for the sync thread; under load for a database lock) the
    socket answers and hears its events. It used to wait for it, its events queued
    behind it, and the channel layer dropped what went past the queue's bound."""
    async_to_sync(_ping_while_the_heartbeat_waits)(agent)


async def _ping_while_the_heartbeat_waits(agent):
    communicator = await _connect(agent)
    release = threading.Event()
    busy = asyncio.ensure_future(sync_to_async(release.wait)(30))
    try:
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=10) == {"type": "pong"}
        await _an_event_is_heard(communicator)
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=10) == {"type": "pong"}
    finally:
        release.set()
        assert await busy is True
    await communicator.disconnect()
    # The heartbeat written late did not bring the closed socket's row back.
    assert await database_sync_to_async(_open_sockets)(agent) == 0


def _open_sockets(agent) -> int:
    return AgentSocket.objects.filter(user=agent).count()


# --- teams: a socket only hears of the pages its agent may see -----------------------


@pytest.fixture
def teams(fake_graph, agent, agent2):
    """ana handles billing's page, bo handles shipping's; a third page has no team.
    Returns each page's conversation id."""
    billing_page = factories.page(page_id=BILLING_PAGE, access_token="token", name="Billing")
    shipping_page = factories.page(
        page_id="1000000000000012", access_token="token", name="Shipping"
    )
    open_page = factories.page(page_id="1000000000000013", access_token="token", name="General")
    billing = Team.objects.create(name="billing")
    billing.pages.add(billing_page)
    billing.members.add(agent)
    shipping = Team.objects.create(name="shipping")
    shipping.pages.add(shipping_page)
    shipping.members.add(agent2)
    return {
        "billing": factories.conversation(page=billing_page, psid="31").pk,
        "shipping": factories.conversation(page=shipping_page, psid="32").pk,
        "general": factories.conversation(page=open_page, psid="33").pk,
    }


@pytest.mark.django_db(transaction=True)
def test_agents_hear_only_of_their_teams_pages(teams, agent, agent2):
    async_to_sync(_only_their_teams)(teams, agent, agent2)


async def _only_their_teams(teams, agent, agent2):
    ana, bo = await _connect(agent), await _connect(agent2)
    send = database_sync_to_async(broadcast)
    await send("conversation.updated", conversation_id=teams["shipping"])
    await send("conversation.updated", conversation_id=teams["billing"])
    await send("conversation.updated", conversation_id=teams["general"])
    # Each socket gets its events in order: what ana gets first shows shipping's never came.
    assert [await ana.receive_json_from(timeout=2) for _ in range(2)] == [
        {"event": "conversation.updated", "conversation_id": teams["billing"]},
        {"event": "conversation.updated", "conversation_id": teams["general"]},
    ]
    assert [await bo.receive_json_from(timeout=2) for _ in range(2)] == [
        {"event": "conversation.updated", "conversation_id": teams["shipping"]},
        {"event": "conversation.updated", "conversation_id": teams["general"]},
    ]
    assert await ana.receive_nothing(timeout=0.1)
    assert await bo.receive_nothing(timeout=0.1)
    await ana.disconnect()
    await bo.disconnect()


@pytest.mark.django_db(transaction=True)
def test_superusers_hear_of_every_page(teams):
    admin = get_user_model().objects.create_superuser("root", password="pw-12345678")
    async_to_sync(_superuser_hears_all)(teams, admin)


async def _superuser_hears_all(teams, admin):
    root = await _connect(admin)
    for name in ("billing", "shipping", "general"):
        await database_sync_to_async(broadcast)("ticket.updated", conversation_id=teams[name])
        assert await root.receive_json_from(timeout=2) == {
            "event": "ticket.updated",
            "conversation_id": teams[name],
        }
    await root.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_newly_connected_page_is_followed_without_reconnecting(teams, agent):
    async_to_sync(_new_page_followed)(agent)


async def _new_page_followed(agent):
    ana = await _connect(agent)
    # connect_page emits pages.changed after commit; the socket then follows the new page
    page = await database_sync_to_async(factories.page)(
        page_id="1000000000000014", access_token="token", name="New"
    )
    assert await ana.receive_json_from(timeout=2) == {"event": "pages.changed"}
    conversation = await database_sync_to_async(factories.conversation)(page=page, psid="34")
    await database_sync_to_async(broadcast)("conversation.updated", conversation_id=conversation.pk)
    assert await ana.receive_json_from(timeout=2) == {
        "event": "conversation.updated",
        "conversation_id": conversation.pk,
    }
    await ana.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_webhook_reaches_the_sockets_of_the_pages_team(teams, agent, agent2):
    async_to_sync(_webhook_reaches_team)(agent, agent2)


async def _webhook_reaches_team(agent, agent2):
    ana, bo = await _connect(agent), await _connect(agent2)

    def deliver() -> None:
        body = payloads.body_bytes(
            payloads.delivery(
                payloads.user_message(
                    "hello billing", ts=now_ms(), psid="31", page_id=BILLING_PAGE
                ),
                channel="standby",
                page_id=BILLING_PAGE,
            )
        )
        delivery_process(delivery_id=delivery_receive(body=body).pk)

    await database_sync_to_async(deliver)()
    kinds = []
    while "message.created" not in kinds:
        kinds.append((await ana.receive_json_from(timeout=2))["event"])
    assert await bo.receive_nothing(timeout=0.2)
    await ana.disconnect()
    await bo.disconnect()


def test_a_live_event_the_channel_layer_does_not_take_is_dropped_in_time(settings, caplog):
    """Redis hung (SIGSTOP): a broadcast gives up after CHANNEL_SEND_TIMEOUT_SECONDS on
    the background publisher, and the next one still goes out."""
    settings.SIDE_EFFECTS_IN_BACKGROUND = True
    settings.CHANNEL_SEND_TIMEOUT_SECONDS = 0.2
    sent: list[dict] = []
    hung = threading.Event()
    second = threading.Event()

    class HungLayer:
        async def group_send(self, group: str, message: dict) -> None:
            if not sent and not hung.is_set():
                hung.set()
                await asyncio.sleep(3600)  # never answers
            sent.append(message)
            second.set()

    with mock.patch("agents.realtime.get_channel_layer", return_value=HungLayer()):
        broadcast("pages.changed")  # caller returns at once: the send is in the background
        assert hung.wait(30)
        broadcast("pages.changed")  # after the hung send began: not in its message
        assert second.wait(30), "the event after the hung one never went out"
    assert hung.is_set()
    assert [m["event"] for m in sent] == ["pages.changed"]
    assert "could not broadcast pages.changed (TimeoutError)" in caplog.text


def test_a_forked_child_starts_with_no_queued_live_event_and_a_free_lock():
    # A prefork worker is forked from a parent whose queue may hold events (and whose
    # lock may be taken): the child must send its own events, not wait behind those.
    with realtime._pending_lock:
        realtime._pending.append(("inbox", {"type": "inbox.event", "event": "parent's"}))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            ok = realtime._pending == [] and realtime._pending_lock.acquire(timeout=1)
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.waitpid(pid, 0)
    answer = os.read(read, 1)
    realtime._pending.clear()
    assert answer == b"1"


# --- what one publish sends: one channel-layer message per group ----------------------


def test_events_queued_together_go_out_as_one_message_per_group_in_order(settings):
    """What queued while the publisher was busy (a group of webhook events' commit
    broadcasts dozens) goes out as one `inbox.events` per group, the events in their
    order; a lone event as it always went, `inbox.event`."""
    settings.SIDE_EFFECTS_IN_BACKGROUND = True
    sent: list[tuple[str, dict]] = []
    release = threading.Event()
    done = threading.Event()

    class RecordingLayer:
        async def group_send(self, group: str, message: dict) -> None:
            sent.append((group, message))

    with mock.patch("agents.realtime.get_channel_layer", return_value=RecordingLayer()):
        # The publisher is busy until released: what is broadcast meanwhile queues up.
        realtime.publisher.submit(lambda: release.wait(30))
        broadcast("message.created", page_pk=1, conversation_id=3, message_id=10)
        broadcast("message.created", page_pk=2, conversation_id=4, message_id=11)
        broadcast("ticket.updated", page_pk=1, conversation_id=3, ticket_id=5)
        realtime.user_event(9, "ticket.assigned", ticket_id=5)
        realtime.publisher.submit(done.set)
        release.set()
        assert done.wait(30)
    assert sent == [
        (
            realtime.page_group(1),
            {
                "type": "inbox.events",
                "events": [
                    {
                        "type": "inbox.event",
                        "event": "message.created",
                        "conversation_id": 3,
                        "message_id": 10,
                    },
                    {
                        "type": "inbox.event",
                        "event": "ticket.updated",
                        "conversation_id": 3,
                        "ticket_id": 5,
                    },
                ],
            },
        ),
        (
            realtime.page_group(2),
            {
                "type": "inbox.event",
                "event": "message.created",
                "conversation_id": 4,
                "message_id": 11,
            },
        ),
        (
            realtime.user_group(9),
            {"type": "inbox.event", "event": "ticket.assigned", "ticket_id": 5},
        ),
    ]


def test_a_long_queue_is_cut_into_messages_of_at_most_the_coalescing_limit(settings):
    settings.SIDE_EFFECTS_IN_BACKGROUND = True
    sent: list[dict] = []
    release = threading.Event()
    done = threading.Event()

    class RecordingLayer:
        async def group_send(self, group: str, message: dict) -> None:
            sent.append(message)

    with mock.patch("agents.realtime.get_channel_layer", return_value=RecordingLayer()):
        realtime.publisher.submit(lambda: release.wait(30))
        for n in range(realtime.COALESCE_MAX + 1):
            broadcast("message.created", page_pk=1, conversation_id=3, message_id=n)
        realtime.publisher.submit(done.set)
        release.set()
        assert done.wait(30)
    assert [len(m["events"]) if m["type"] == "inbox.events" else 1 for m in sent] == [
        realtime.COALESCE_MAX,
        1,
    ]
    ids = [e["message_id"] for m in sent for e in m.get("events", [m])]
    assert ids == list(range(realtime.COALESCE_MAX + 1))


@pytest.mark.django_db(transaction=True)
def test_the_socket_gets_a_coalesced_message_as_one_frame_in_order(agent):
    async_to_sync(_a_coalesced_message_is_one_frame)(agent)


async def _a_coalesced_message_is_one_frame(agent):
    communicator = await _connect(agent)
    events = [
        {"type": "inbox.event", "event": "message.created", "conversation_id": 3, "message_id": n}
        for n in (1, 2, 3)
    ]
    await get_channel_layer().group_send(INBOX_GROUP, {"type": "inbox.events", "events": events})
    assert await communicator.receive_json_from(timeout=5) == {
        "events": [
            {"event": "message.created", "conversation_id": 3, "message_id": n} for n in (1, 2, 3)
        ]
    }
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_pages_change_among_coalesced_events_is_its_own_frame_in_its_place(agent):
    async_to_sync(_a_pages_change_in_place)(agent)


async def _a_pages_change_in_place(agent):
    """The socket re-checks what its agent sees at the `pages.changed`, between the
    events before it and those after it; a single event is sent as itself."""
    communicator = await _connect(agent)

    def created(n: int) -> dict:
        return {"event": "message.created", "conversation_id": 3, "message_id": n}

    events = [
        {"type": "inbox.event", **created(1)},
        {"type": "inbox.event", **created(2)},
        {"type": "inbox.event", "event": "pages.changed"},
        {"type": "inbox.event", **created(3)},
    ]
    await get_channel_layer().group_send(INBOX_GROUP, {"type": "inbox.events", "events": events})
    assert await communicator.receive_json_from(timeout=5) == {"events": [created(1), created(2)]}
    assert await communicator.receive_json_from(timeout=5) == {"event": "pages.changed"}
    assert await communicator.receive_json_from(timeout=5) == created(3)
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()
