from channels.generic.websocket import AsyncJsonWebsocketConsumer

from agents.realtime import INBOX_GROUP


class InboxConsumer(AsyncJsonWebsocketConsumer):
    """Pushes small events (`ticket.updated`, ids) to logged-in agents."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(INBOX_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(INBOX_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def inbox_event(self, event: dict) -> None:
        await self.send_json({k: v for k, v in event.items() if k != "type"})
