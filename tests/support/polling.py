"""One way for tests to wait for something asynchronous: poll until it is true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    *,
    timeout: float = 30.0,
    what: str | Callable[[], str] = "",
    interval: float = 0.02,
) -> T:
    """Call `check` until it returns a truthy value, and return that value.

    An exception from `check` propagates at once (a check may assert that a process is
    still alive). After `timeout` seconds the test fails with an AssertionError naming
    `what` (a callable is asked only then, so it can describe what was seen) and the
    last value `check` returned.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {described or check}; "
                f"last value: {last!r}"
            )
        time.sleep(interval)
