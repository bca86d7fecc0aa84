"""`/healthz` and `/readyz`: what a load balancer, Docker or systemd asks a Daphne process.

Both are answered in front of Django's stack (helpdesk.asgi routes them here), like the
webhook's intake: no host check, no https redirect, no session, so that a probe on
`http://127.0.0.1:8000/readyz` inside a container or on the host gets its answer, and a
probe every few seconds costs next to nothing. Unauthenticated, they say only a status:
which check failed, and why, goes to the log (never a URL or a password).

    GET /healthz   200 {"status": "ok"}: the process is up and its event loop answers.
    GET /readyz    200 {"status": "ready"} when the database, Redis and the channel layer
                   answer within READY_TIMEOUT_SECONDS each, else 503
                   {"status": "unavailable"}: take this process out of the rotation.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
PATHS = frozenset({HEALTH_PATH, READY_PATH})
READY_TIMEOUT_SECONDS = 3.0
PROBE_CHANNEL = "helpdesk.readyz"  # nobody listens: a publish that reaches no one

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _database() -> None:
    close_old_connections()  # a connection past its CONN_MAX_AGE, or broken, is dropped
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        close_old_connections()


def _redis() -> None:
    # The cache's client: the same Redis as Celery's broker, with 1-second timeouts.
    cache.get("readyz")


async def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    await layer.send(PROBE_CHANNEL, {"type": "readyz"})


async def _check(name: str, probe: Awaitable[None]) -> bool:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 -- any failure means "not ready"; said below
        reason = "timed out" if isinstance(error, TimeoutError) else type(error).__name__
        logger.warning("readyz: %s is not answering (%s)", name, reason)
        return False
    return True


async def results() -> dict[str, bool]:
    """Whether each of the database, Redis and the channel layer answers (checked
    together): also the doctor page's."""
    names = ("the database", "Redis", "the channel layer")
    answers = await asyncio.gather(
        _check(names[0], sync_to_async(_database, thread_sensitive=False)()),
        _check(names[1], sync_to_async(_redis, thread_sensitive=False)()),
        _check(names[2], _channel_layer()),
    )
    return dict(zip(names, answers, strict=True))


async def ready() -> bool:
    return all((await results()).values())


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app for PATHS (GET and HEAD; anything else is 405)."""
    head = scope["method"] == "HEAD"
    if scope["method"] not in ("GET", "HEAD"):
        status, answer = 405, {"status": "method not allowed"}
    elif scope["path"] == HEALTH_PATH:
        status, answer = 200, {"status": "ok"}
    elif await ready():
        status, answer = 200, {"status": "ready"}
    else:
        status, answer = 503, {"status": "unavailable"}
    body = json.dumps(answer).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
