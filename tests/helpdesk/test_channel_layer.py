"""The production channel layer's Redis connections outlast the reads channels-redis blocks in.

The behaviour itself (an idle socket stays up) is tested with real Daphne and Redis in
tests/e2e/test_idle_socket.py; this pins the configuration that makes it so."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_redis.core import RedisChannelLayer

from helpdesk import settings as production


def _connection_kwargs() -> tuple[RedisChannelLayer, dict[str, Any]]:
    """The production layer and the keyword arguments its Redis connections are made with
    (nothing connects: building the pool does not)."""
    config = production.CHANNEL_LAYERS["default"]
    assert config["BACKEND"] == "channels_redis.core.RedisChannelLayer"

    async def build() -> tuple[RedisChannelLayer, dict[str, Any]]:
        layer = RedisChannelLayer(**config["CONFIG"])
        return layer, dict(layer.connection(0).connection_pool.connection_kwargs)

    return asyncio.run(build())


def test_a_blocking_receive_ends_before_the_socket_read_times_out():
    layer, kwargs = _connection_kwargs()
    timeout = kwargs.get("socket_timeout", "redis-py's default (5 s in redis-py 8)")
    # BZPOPMIN is held by Redis for brpop_timeout seconds: a read must be allowed longer,
    # with room for a busy Redis, and must not be unbounded either.
    assert isinstance(timeout, float), timeout
    assert layer.brpop_timeout + 10 <= timeout <= 120


def test_dead_connections_are_still_noticed():
    _, kwargs = _connection_kwargs()
    assert kwargs.get("socket_connect_timeout") == 5
    assert kwargs.get("socket_keepalive") is True
    assert kwargs.get("health_check_interval") == 15
