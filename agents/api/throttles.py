"""The API's rate limit: settings.API_RATE_LIMIT_PER_MINUTE requests per token (or per
user, for session requests), counted in the cache.

The cache is Redis in production (settings.CACHES), so every Daphne process counts
against one limit. Ninja's own throttles (`ninja.throttling`) also use Django's cache,
but keep the list of every request's timestamp under one key, read and rewritten
whole on each request: a race between processes loses counts, and the list is as
long as the limit. Here a counter per key and minute is incremented atomically
(Redis INCR): a fixed window, so a client may briefly send up to twice the rate
across a minute boundary, never more.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def rate_key(request: HttpRequest) -> str | None:
    """Whom a request counts for: set by authentication (`agents.api.endpoints`)."""
    return getattr(request, "rate_limit_key", None)


class PerTokenRateThrottle(BaseThrottle):
    """One instance serves every request: what `wait()` reports is kept per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        self._local.wait = None
        who = rate_key(request)
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        if who is None or limit <= 0:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"api-rate:{who}:{window}"
        try:
            # add() then incr(): both atomic in Redis; the key outlives its minute a bit.
            cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
            count = cache.incr(key)
        except (RedisError, OSError) as exc:
            # A Redis outage must not take the API down with it: let the request in.
            logger.warning("rate limit not checked (%s)", type(exc).__name__)
            return True
        except ValueError:  # the key expired between add() and incr()
            return True
        if count <= limit:
            return True
        self._local.wait = (window + 1) * WINDOW_SECONDS - now
        return False

    def wait(self) -> float | None:
        wait: float | None = getattr(self._local, "wait", None)
        return None if wait is None else max(1.0, float(math.ceil(wait)))
