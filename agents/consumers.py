from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from agents import realtime


class InboxConsumer(AsyncJsonWebsocketConsumer):
    """Pushes small events (`ticket.updated`, ids) to logged-in agents.

    Each socket joins the groups of the pages its agent may see (teams), so an agent
    never hears of another team's conversations. Clients refetch on connect: events
    sent while a socket was away are not replayed.
    """

    groups_joined: frozenset[str] = frozenset()

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=4401)
            return
        await self._follow(await database_sync_to_async(realtime.groups_for)(user))
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self._follow(frozenset())

    async def _follow(self, groups: set[str] | frozenset[str]) -> None:
        for group in groups - self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        for group in self.groups_joined - groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = frozenset(groups)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def inbox_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "pages.changed":
            # A page was connected or changed: follow the pages this agent now sees.
            await self._follow(
                await database_sync_to_async(realtime.groups_for)(self.scope["user"])
            )
        await self.send_json({k: v for k, v in event.items() if k != "type"})
