"""Throttling of failed authentications: logins per account and per client address
(in the database), API bearer tokens per client address (in the cache).

A counter (`AuthFailures`) counts failures from the first one for a window
(settings.LOGIN_FAILURE_WINDOW_SECONDS); the failure that reaches the limit blocks the
key for one more window. While a key is blocked its callers must not check the
credentials at all: the password hash is the expensive part, and it must not be
handed to whoever sends wrong passwords fastest. The same answer is given whether the
account exists or not. A successful login clears the account's counter (not the
address's: one good account must not buy an address more guesses).

Two failures racing past a limit may both be checked (each locks the counter only to
count): the limit can be overshot by the number of concurrent requests, never more.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from agents.locks import auth_failures_lock
from agents.models import AuthFailures

logger = logging.getLogger(__name__)
Scope = AuthFailures.Scope


def _limit(scope: Scope) -> int:
    return {
        Scope.LOGIN_ACCOUNT: settings.LOGIN_FAILURES_PER_ACCOUNT,
        Scope.LOGIN_ADDRESS: settings.LOGIN_FAILURES_PER_ADDRESS,
    }[scope]


def _window() -> timedelta:
    return timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def _key(scope: Scope, value: str) -> str:
    return hashlib.sha256(f"{scope}:{value}".encode()).hexdigest()


def client_address(remote_addr: str | None) -> str:
    """The key of a client address: an IPv4 address, or an IPv6 address's /64 (one
    host usually holds a whole /64). Behind a proxy, Daphne must run with
    `--proxy-headers` for REMOTE_ADDR to be the client's."""
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return remote_addr or "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def wait_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many failed attempts; try again in {minutes} minute{'s' if minutes > 1 else ''}."


def _blocked_seconds(keys: list[tuple[Scope, str]], now: datetime) -> int:
    """Seconds until none of these keys is blocked (0: not blocked). One query."""
    blocked = AuthFailures.objects.filter(
        scope__in=[scope for scope, _ in keys],
        key__in=[_key(scope, value) for scope, value in keys],
        blocked_until__gt=now,
    ).values_list("scope", "key", "blocked_until")
    wanted = {(scope.value, _key(scope, value)) for scope, value in keys}
    until = [end for scope, key, end in blocked if (scope, key) in wanted and end is not None]
    return math.ceil((max(until) - now).total_seconds()) if until else 0


def _failure_record(keys: list[tuple[Scope, str]], now: datetime) -> None:
    window = _window()
    with transaction.atomic():
        for scope, value in keys:
            row = auth_failures_lock(
                scope=scope, key=_key(scope, value), window_ends_at=now + window
            )
            if row.window_ends_at <= now:  # the last window is over: count afresh
                row.failures, row.window_ends_at, row.blocked_until = 0, now + window, None
            row.failures += 1
            if row.failures >= _limit(scope):
                row.blocked_until = now + window
            row.expires_at = max(row.window_ends_at, row.blocked_until or row.window_ends_at)
            row.save(update_fields=["failures", "window_ends_at", "blocked_until", "expires_at"])
        # Counters of keys nobody tried for a window mean nothing any more.
        AuthFailures.objects.filter(expires_at__lt=now).delete()


def _login_keys(*, username: str, address: str) -> list[tuple[Scope, str]]:
    return [(Scope.LOGIN_ACCOUNT, username), (Scope.LOGIN_ADDRESS, address)]


def login_blocked(*, username: str, address: str | None) -> int:
    """Seconds until this username may be tried from this address; 0 if it may now."""
    return _blocked_seconds(
        _login_keys(username=username, address=client_address(address)), timezone.now()
    )


def login_failure_record(*, username: str, address: str | None) -> None:
    _failure_record(_login_keys(username=username, address=client_address(address)), timezone.now())


def login_success_record(*, username: str) -> None:
    """A good password clears the account's counter (not the address's)."""
    AuthFailures.objects.filter(
        scope=Scope.LOGIN_ACCOUNT, key=_key(Scope.LOGIN_ACCOUNT, username)
    ).delete()


# Bad bearer tokens are counted in the cache (Redis in production, shared by every
# process), not the database: the check runs before every token lookup, and the API's
# hot paths have pinned query counts. A fixed window per address: past the limit,
# tokens from there are not looked up until the window ends.


def _token_window(now: float) -> tuple[str, int]:
    """The current window's number and the seconds left in it."""
    length = settings.LOGIN_FAILURE_WINDOW_SECONDS
    number = int(now // length)
    return str(number), math.ceil((number + 1) * length - now)


def _token_key(address: str | None, window: str) -> str:
    digest = hashlib.sha256(f"token_address:{client_address(address)}".encode()).hexdigest()
    return f"api-token-failures:{digest}:{window}"


def token_blocked(*, address: str | None) -> int:
    """Seconds until a bearer token is checked again from this address; 0 if now.
    A cache outage blocks nobody."""
    window, left = _token_window(time.time())
    try:
        failures = cache.get(_token_key(address, window), 0)
    except (RedisError, OSError) as exc:
        logger.warning("token failures not checked (%s)", type(exc).__name__)
        return 0
    return left if failures >= settings.API_TOKEN_FAILURES_PER_ADDRESS else 0


def token_failure_record(*, address: str | None) -> None:
    window, left = _token_window(time.time())
    key = _token_key(address, window)
    try:
        cache.add(key, 0, timeout=left + 5)
        cache.incr(key)  # atomic in Redis
    except ValueError:  # expired between add() and incr(): the window is over anyway
        pass
    except (RedisError, OSError) as exc:
        logger.warning("token failure not counted (%s)", type(exc).__name__)
