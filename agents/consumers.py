import asyncio
import functools
import logging
from contextlib import suppress
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch

from agents import realtime, relay
from agents.services import presence

logger = logging.getLogger(__name__)


def _heartbeat_done(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("could not move a socket's heartbeat (%s)", type(task.exception()).__name__)


def _public(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the socket sends it: without the channel layer's message type."""
    return {k: v for k, v in event.items() if k != "type"}


class InboxConsumer(AsyncJsonWebsocketConsumer):
    """Pushes small events (`ticket.updated`, ids) to logged-in agents: a frame is one
    event, or `{"events": [...]}`, several in their order.

    Each socket joins the groups of the pages its agent may see (teams), so an agent
    never hears of another team's conversations, and its agent's own group, on which
    `access.changed` makes it check the agent and session again: a deactivated agent's
    sockets, or a logged-out session's, are closed (4401); the others re-follow the
    pages their agent now sees. Clients refetch on connect: events sent while a socket
    was away are not replayed.
    """

    groups_joined: frozenset[str] = frozenset()
    _heartbeat: asyncio.Future[None] | None = None
    # Groups the client asked for (issue 11: `presence.follow`), kept across re-follows.
    groups_asked: frozenset[str] = frozenset()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' `AsyncConsumer.__call__` (channels 4.3), with one more source of
        messages: what this process's relays (`agents.relay`) hand the socket for the
        groups it follows, read in turn with the socket and its own channel. Whatever
        ends the consumer, its groups are left."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        self._relayed = relay.member_queue()
        try:
            await await_many_dispatch(
                [receive, self.channel_receive, self._relayed.get], self.dispatch
            )
        except StopConsumer:
            pass
        finally:
            if self.groups_joined:
                await self._follow(frozenset())

    async def relay_failed(self, message: dict[str, Any]) -> None:
        """The process's relay of a group stopped (Redis went away): close, as a socket
        whose own channel failed did; the browser reconnects and refetches."""
        await self.close(code=1011)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Handle a message without Channels' hop to Django's one sync thread first.

        Channels (4.2+) closes stale database connections on that thread before every
        message a consumer handles: a thread hop per message, one after another for every
        socket of the process, so one event fanned out to a thousand sockets waited for a
        thousand hops (and for whatever else held the thread). This consumer touches the
        database only through `database_sync_to_async`, which closes stale connections on
        that thread before and after each call: nothing is left for the hop to do.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=4401)
            return
        session = self.scope.get("session")
        self.session_key: str | None = session.session_key if session is not None else None
        await self._follow(await database_sync_to_async(realtime.groups_for)(user))
        await self.accept()
        # Presence (issue 11): one row per open socket, its heartbeat moved by pings.
        await database_sync_to_async(presence.socket_open)(
            user_id=user.pk, channel_name=self.channel_name
        )

    async def _recheck(self) -> bool:
        """Re-read the agent; close if they may no longer be here, else re-follow."""
        user = await database_sync_to_async(realtime.socket_user)(
            user_pk=self.scope["user"].pk, session_key=self.session_key
        )
        if user is None:
            await self._follow(frozenset())
            await self.close(code=4401)
            return False
        self.scope["user"] = user
        await self._follow(await database_sync_to_async(realtime.groups_for)(user))
        return True

    def _heartbeat_start(self) -> None:
        """Move the socket's heartbeat beside the consumer, not in its way: while the
        write waits (for the one sync thread, for a database lock under load) the socket
        goes on answering and hearing its events, which would otherwise queue behind it
        and be dropped by the channel layer past its bound. One write at a time: a ping
        that comes while one is under way has nothing to add to it."""
        if self._heartbeat is not None and not self._heartbeat.done():
            return
        self._heartbeat = asyncio.ensure_future(
            database_sync_to_async(presence.socket_seen)(
                user_id=self.scope["user"].pk, channel_name=self.channel_name
            )
        )
        self._heartbeat.add_done_callback(_heartbeat_done)

    async def disconnect(self, code: int) -> None:
        await self._follow(frozenset())
        if self._heartbeat is not None:
            # A heartbeat written after the close would bring the socket's row back.
            with suppress(Exception):
                await self._heartbeat
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            await database_sync_to_async(presence.socket_close)(
                user_id=user.pk, channel_name=self.channel_name
            )

    async def _follow(self, groups: set[str] | frozenset[str]) -> None:
        if groups:
            groups = set(groups) | self.groups_asked
        hub = relay.hub(self.channel_layer)
        for group in groups - self.groups_joined:
            await hub.join(group, id(self), relay.queue_deliver(self._relayed, group))
        for group in self.groups_joined - groups:
            await hub.leave(group, id(self))
        self.groups_joined = frozenset(groups)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            self._heartbeat_start()
            await asyncio.sleep(0)  # its write is queued on the sync thread before the pong
            await self.send_json({"type": "pong"})
        elif isinstance(content, dict) and content.get("type") == "presence.follow":
            self.groups_asked = frozenset({realtime.PRESENCE_GROUP})
            await self._follow(self.groups_joined)

    async def inbox_event(self, event: dict[str, Any]) -> None:
        await self._event_send(event)

    async def inbox_events(self, message: dict[str, Any]) -> None:
        """Several events of one group, in their order (`realtime._pending_send` sends
        what queued up as one message): one frame, `{"events": [...]}`, not a frame each.
        A frame costs Daphne more than its JSON: at 200 messages/s with 100 sockets,
        40,000 frames a second held the events back by seconds. A `pages.changed` among
        them re-checks the socket in its place, as alone."""
        frame: list[dict[str, Any]] = []
        for event in message["events"]:
            if event.get("event") != "pages.changed":
                frame.append(_public(event))
                continue
            await self._frame_send(frame)
            frame = []
            if not await self._event_send(event):
                return
        await self._frame_send(frame)

    async def _frame_send(self, events: list[dict[str, Any]]) -> None:
        if len(events) == 1:
            await self.send_json(events[0])
        elif events:
            await self.send_json({"events": events})

    async def _event_send(self, event: dict[str, Any]) -> bool:
        """Send one live event to the socket; False when the socket closed instead."""
        # A page was connected or a team's pages changed: follow what this agent now sees.
        if event.get("event") == "pages.changed" and not await self._recheck():
            return False
        await self.send_json(_public(event))
        return True

    async def access_changed(self, event: dict[str, Any]) -> None:
        if await self._recheck():
            # What the agent may see has changed: the client refetches, as for pages.
            await self.send_json({"event": "pages.changed"})
