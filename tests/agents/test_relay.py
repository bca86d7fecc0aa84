"""The process's relays (agents.relay): a group's message comes to the process once and
goes to each of its sockets in the group; the last socket to leave ends the membership;
a relay whose reads fail closes its sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from agents import relay
from agents.realtime import INBOX_GROUP, page_group, user_group
from tests.agents.test_realtime import _connect

pytestmark = pytest.mark.django_db(transaction=True)


def _members(layer: InMemoryChannelLayer, group: str) -> list[str]:
    return sorted(layer.groups.get(group, {}))


def _updated(ticket_id: int) -> dict[str, Any]:
    return {"type": "inbox.event", "event": "ticket.updated", "ticket_id": ticket_id}


def test_one_membership_per_process_and_each_socket_hears_once(agent, page):
    async_to_sync(_one_membership)(agent, page)


async def _one_membership(agent, page):
    layer = get_channel_layer()
    group = page_group(page.pk)
    first, second = await _connect(agent), await _connect(agent)
    hub = relay.hub(layer)
    # The group's one member in the layer is the process's relay, not either socket.
    assert _members(layer, group) == [hub.relays[group].channel]
    assert len(hub.relays[group].members) == 2

    await layer.group_send(group, _updated(1))

    for socket in (first, second):
        assert await socket.receive_json_from(timeout=2) == {
            "event": "ticket.updated",
            "ticket_id": 1,
        }
        assert await socket.receive_nothing(timeout=0.2)

    await first.disconnect()
    assert _members(layer, group) == [hub.relays[group].channel]
    await layer.group_send(group, _updated(2))
    assert await second.receive_json_from(timeout=2) == {"event": "ticket.updated", "ticket_id": 2}

    await second.disconnect()
    # The last one out ends the process's memberships.
    for name in (group, INBOX_GROUP, user_group(agent.pk)):
        assert _members(layer, name) == []
    assert hub.relays == {}


class _Broken(InMemoryChannelLayer):
    """Its relay channels' reads fail, as with Redis gone."""

    relay_channels: set[str]

    async def group_add(self, group: str, channel: str) -> None:
        self.relay_channels = getattr(self, "relay_channels", set()) | {channel}
        await super().group_add(group, channel)

    async def receive(self, channel: str) -> Any:
        if channel in getattr(self, "relay_channels", set()):
            await asyncio.sleep(0.2)
            raise ConnectionError("Redis went away")
        return await super().receive(channel)


def test_a_relay_whose_reads_fail_closes_its_sockets_and_the_next_join_starts_anew(
    agent, settings, caplog
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.agents.test_relay._Broken"}}
    async_to_sync(_relay_fails)(agent)
    assert "relay stopped (ConnectionError)" in caplog.text


async def _relay_fails(agent):
    socket = await _connect(agent)
    hub = relay.hub(get_channel_layer())
    assert hub.relays

    assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 1011}
    assert hub.relays == {}  # gone: a socket that connects now gets a new one
    await socket.disconnect()
