"""One membership per process and group: a group's message reaches a Daphne process once,
and the process hands it to each of its sockets in that group.

Channels puts every socket's own channel in the groups it joins, so a group_send to a
page's group became one channel-layer message per socket: with 100 agents' sockets each
event was pushed 100 times and taken 100 times, one at a time, by the process's one
receive loop, and at 200 messages a second the events reached the last sockets seconds
late. Here the process joins each group once, with a channel of its own (`Relay`),
while at least one of its sockets follows the group; what comes on that channel is put
in each member's own queue (`InboxConsumer` reads it as it reads its socket), in order.
The channel layer's semantics stay: a message is delivered at most once per member,
and a member that does not keep up loses what overflows (`MEMBER_QUEUE` messages;
logged), as a socket's channel did past its capacity. When the relay's reads fail (Redis
went away) its members close their sockets, as each did when it read its own channel.

A relay lives while the group has a local member: the last one leaving discards its
membership and stops its task. It joins again every `REFRESH_SECONDS`: channels_redis'
list layer forgets a membership after its group_expiry, a day (the pub/sub layer in use
does not; a relay may live for weeks under either).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# A member's queue: what waits for a socket that is slow to take it.
MEMBER_QUEUE = 500
# Join again this often (channels_redis' group_expiry is a day).
REFRESH_SECONDS = 3600.0

Deliver = Callable[[dict[str, Any]], None]
# What a member is given when its relay stops: it closes its socket.
FAILED: dict[str, Any] = {"type": "relay.failed"}


@dataclass
class Relay:
    """A process's membership of one group."""

    channel: str
    members: dict[int, Deliver] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Hub:
    """The relays of one event loop (a Daphne process has one) on one channel layer."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.relays: dict[str, Relay] = {}
        self._lock = asyncio.Lock()

    async def join(self, group: str, key: int, deliver: Deliver) -> None:
        """`deliver(message)` is called for each message sent to `group` from now on,
        until `leave(group, key)`."""
        async with self._lock:
            relay = self.relays.get(group)
            if relay is None:
                # The default prefix: channels_redis reads all of a process's channels
                # with one loop, per prefix (another prefix would wait its turn).
                channel = await self.layer.new_channel()
                await self.layer.group_add(group, channel)
                relay = Relay(channel)
                relay.tasks = [
                    asyncio.ensure_future(self._relay(group, relay)),
                    asyncio.ensure_future(self._refresh(group, relay)),
                ]
                self.relays[group] = relay
            relay.members[key] = deliver

    async def leave(self, group: str, key: int) -> None:
        async with self._lock:
            relay = self.relays.get(group)
            if relay is None or relay.members.pop(key, None) is None or relay.members:
                return
            del self.relays[group]
            for task in relay.tasks:
                task.cancel()
            await self.layer.group_discard(group, relay.channel)

    async def _relay(self, group: str, relay: Relay) -> None:
        try:
            while True:
                message = await self.layer.receive(relay.channel)
                for deliver in list(relay.members.values()):
                    deliver(message)
        except Exception as exc:  # noqa: BLE001 -- said to the members, who close
            # Redis went away (or worse): the members close their sockets, as each did
            # when it read its own channel, and the browsers reconnect and refetch. The
            # next join makes a new relay.
            logger.warning("the %s relay stopped (%s)", group, type(exc).__name__)
            if self.relays.get(group) is relay:
                del self.relays[group]
            relay.tasks[1].cancel()
            for deliver in list(relay.members.values()):
                deliver(FAILED)

    async def _refresh(self, group: str, relay: Relay) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.layer.group_add(group, relay.channel)
            except Exception as exc:  # noqa: BLE001 -- tried again at the next refresh
                logger.warning("could not renew the %s relay (%s)", group, type(exc).__name__)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub(layer: Any) -> Hub:
    """The running event loop's hub for `layer`."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None or found.layer is not layer:
        found = _hubs[loop] = Hub(layer)
    return found


def member_queue() -> asyncio.Queue[dict[str, Any]]:
    return asyncio.Queue(MEMBER_QUEUE)


def queue_deliver(queue: asyncio.Queue[dict[str, Any]], group: str) -> Deliver:
    """A member's `deliver`: into its queue; what overflows is dropped and logged."""

    def deliver(message: dict[str, Any]) -> None:
        if message["type"] == FAILED["type"]:
            while not queue.empty():  # the socket closes: what waits is moot
                queue.get_nowait()
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            logger.warning(
                "a socket fell %d messages behind: a %s message dropped", MEMBER_QUEUE, group
            )

    return deliver
