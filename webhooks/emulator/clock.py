"""The emulator's clock: real time plus an offset that fault injection moves forward.

Windows (24 h, 7 days) and Conversation Routing control expiry are computed from this
clock, so a test or the control page can jump a day ahead without waiting.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class ClockLike(Protocol):
    def now_ms(self) -> int: ...

    def advance(self, seconds: float) -> None: ...

    @property
    def offset_seconds(self) -> float: ...


class Clock:
    """Wall time + offset, in epoch milliseconds, strictly increasing.

    Strictly increasing because receivers key handover events on their timestamp
    (messenger-platform.md §1.5): two events in the same millisecond would look like
    one redelivered event.
    """

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset = offset_seconds
        self._last = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            now = int((time.time() + self._offset) * 1000)
            self._last = max(now, self._last + 1)
            return self._last

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds

    @property
    def offset_seconds(self) -> float:
        return self._offset


class ManualClock:
    """A clock that stands still until advanced: exact timestamps in unit tests."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms
        self._start = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._now += int(seconds * 1000)

    @property
    def offset_seconds(self) -> float:
        return (self._now - self._start) / 1000
