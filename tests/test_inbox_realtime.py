"""Live updates follow teams: a socket only hears of the pages its agent may see."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from agents.consumers import InboxConsumer
from agents.models import Team
from agents.realtime import broadcast
from agents.services import contacts
from agents.services.state import now_ms
from webhooks.services import page_connect

pytestmark = pytest.mark.django_db(transaction=True)


def _page(page_id: str, name: str):
    page, _ = page_connect(
        page_id=page_id, access_token="token", bot_app_id="200000000000002", name=name
    )
    return page


def _conversation(page, psid: str) -> int:
    return contacts.conversation_get_or_create(page=page, psid=psid).pk


async def _connect(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.fixture
def teams(fake_graph, agent, agent2):
    """ana handles billing's page, bo handles shipping's; a third page has no team."""
    billing_page = _page("1000000000000011", "Billing")
    shipping_page = _page("1000000000000012", "Shipping")
    open_page = _page("1000000000000013", "General")
    billing = Team.objects.create(name="billing")
    billing.pages.add(billing_page)
    billing.members.add(agent)
    shipping = Team.objects.create(name="shipping")
    shipping.pages.add(shipping_page)
    shipping.members.add(agent2)
    return {
        "billing": _conversation(billing_page, "31"),
        "shipping": _conversation(shipping_page, "32"),
        "general": _conversation(open_page, "33"),
    }


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


def test_a_newly_connected_page_is_followed_without_reconnecting(teams, agent):
    async_to_sync(_new_page_followed)(agent)


async def _new_page_followed(agent):
    ana = await _connect(agent)
    # connect_page emits pages.changed after commit; the socket then follows the new page
    page = await database_sync_to_async(_page)("1000000000000014", "New")
    assert await ana.receive_json_from(timeout=2) == {"event": "pages.changed"}
    conversation_id = await database_sync_to_async(_conversation)(page, "34")
    await database_sync_to_async(broadcast)("conversation.updated", conversation_id=conversation_id)
    assert await ana.receive_json_from(timeout=2) == {
        "event": "conversation.updated",
        "conversation_id": conversation_id,
    }
    await ana.disconnect()


def test_a_webhook_reaches_the_sockets_of_the_pages_team(teams, agent, agent2):
    async_to_sync(_webhook_reaches_team)(agent, agent2)


async def _webhook_reaches_team(agent, agent2):
    from tests.support import payloads
    from webhooks.services import delivery_process, delivery_receive

    ana, bo = await _connect(agent), await _connect(agent2)

    def deliver() -> None:
        body = payloads.body_bytes(
            payloads.delivery(
                payloads.user_message(
                    "hello billing", ts=now_ms(), psid="31", page_id="1000000000000011"
                ),
                channel="standby",
                page_id="1000000000000011",
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
