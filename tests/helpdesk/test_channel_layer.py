"""The production channel layer: channels-redis' pub/sub layer, whose Redis connections
notice a dead Redis and do not time out an idle reader.

The behaviour itself (an idle socket stays up, events cross processes) is tested with
real Daphne and Redis in tests/e2e/test_idle_socket.py and test_several_daphnes.py;
this pins the configuration that makes it so."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import create_pool

from helpdesk import settings as production


def _connection_kwargs() -> dict[str, Any]:
    """The keyword arguments the production layer's Redis connections are made with
    (nothing connects: building the pool does not)."""
    config = production.CHANNEL_LAYERS["default"]
    assert config["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"

    async def build() -> dict[str, Any]:
        layer = RedisPubSubChannelLayer(**config["CONFIG"])
        [shard] = layer._get_layer()._shards
        return dict(create_pool(shard.host).connection_kwargs)

    return asyncio.run(build())


def test_a_read_is_allowed_well_past_the_readers_wait():
    timeout = _connection_kwargs().get("socket_timeout", "redis-py's default (5 s)")
    # The reader waits 0.1 s for a message; a busy Redis may answer much later, and a
    # read must not be unbounded either.
    assert isinstance(timeout, float), timeout
    assert 15 <= timeout <= 120


def test_dead_connections_are_still_noticed():
    kwargs = _connection_kwargs()
    assert kwargs.get("socket_connect_timeout") == 5
    assert kwargs.get("socket_keepalive") is True
    assert kwargs.get("health_check_interval") == 15
