"""The agents' WebSocket: only logged-in agents, small events after commit."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from agents.consumers import InboxConsumer
from agents.realtime import broadcast
from tests.support import payloads


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
    communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    communicator.scope["user"] = agent
    connected, _ = await communicator.connect()
    assert connected
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
    from unittest import mock

    from webhooks.services import delivery_process, delivery_receive

    delivery = delivery_receive(
        body=payloads.body_bytes(payloads.delivery(payloads.pass_control(ts=clock())))
    )
    with mock.patch("agents.realtime.broadcast") as sent:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            from django.db import transaction

            with transaction.atomic():
                delivery_process(delivery_id=delivery.pk)
                sent.assert_not_called()
        for callback in callbacks:
            callback()
    kinds = [c.args[0] for c in sent.call_args_list]
    assert kinds == ["conversation.updated", "ticket.updated", "message.created"]
