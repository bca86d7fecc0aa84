"""The helpdesk's "now" where Meta's clock decides: the messaging windows and their
countdowns, Conversation Routing's 24-hour lapse, pending requests, the reopen window,
and the times of the helpdesk's own messages and handovers.

In production it is the real time, `timezone.now()`. In development, DEV_CLOCK_FILE
names the file in which the Messenger emulator says how far its clock was moved forward
(`var/emulator/clock.json`, which `make run` sets; see webhooks/emulator/statefile.py):
the helpdesk then follows the emulator, so that a day moved forward on its control page
closes windows, counts down and lapses control here as it will in production. The
settings refuse DEV_CLOCK_FILE with DEBUG off. Audit times (`created_at`, delivery and
lease times, throttles, profile caching) stay real.

API answers carry `X-Server-Time` (this clock, epoch ms): the inbox counts down from the
server's time rather than the browser's.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from datetime import datetime, timedelta
from inspect import iscoroutinefunction
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.decorators import sync_and_async_middleware

logger = logging.getLogger(__name__)

ZERO = timedelta(0)
SERVER_TIME_HEADER = "X-Server-Time"

_lock = threading.Lock()
# The file's identity (path, inode, mtime, size) and the offset read from it.
_read: tuple[tuple[str, int, int, int], timedelta] | None = None


def offset() -> timedelta:
    """How far the development clock is ahead of real time; zero in production.

    Costs one stat() per call: the file is read again only when it was replaced.
    """
    global _read
    path = settings.DEV_CLOCK_FILE
    if not path:
        return ZERO
    try:
        info = os.stat(path)
    except OSError:
        return ZERO  # the emulator has not started yet: its clock is real time
    key = (path, info.st_ino, info.st_mtime_ns, info.st_size)
    with _lock:
        if _read is not None and _read[0] == key:
            return _read[1]
    try:
        with open(path, encoding="utf-8") as file:
            seconds = float(json.load(file)["offset_seconds"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("DEV_CLOCK_FILE %s cannot be read (%s): real time is used", path, exc)
        seconds = 0.0
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0  # the emulator's clock only moves forward
    value = timedelta(seconds=seconds)
    with _lock:
        _read = (key, value)
    return value


def now() -> datetime:
    """Now, on the clock that Meta's timestamps (or the emulator's) are on."""
    return timezone.now() + offset()


def now_ms() -> int:
    """`now()` in epoch milliseconds, as Messenger stamps events."""
    return int(now().timestamp() * 1000)


def _stamp(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if request.path.startswith("/api/"):
        response[SERVER_TIME_HEADER] = str(now_ms())
    return response


@sync_and_async_middleware
def server_time_middleware(get_response: Any) -> Any:
    """Adds `X-Server-Time: <epoch ms>` to the API's answers, for countdowns in browsers."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            return _stamp(request, await get_response(request))

    else:

        def middleware(request: HttpRequest) -> HttpResponse:  # type: ignore[misc]
            return _stamp(request, get_response(request))

    return middleware
