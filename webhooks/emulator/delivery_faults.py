"""Webhook delivery faults, per app or for every app with a callback URL.

- `duplicate`: every delivery is POSTed twice (Meta delivers at least once);
- `out_of_order`: a delivery is held until the next one has been sent;
- `late_seconds`: echoes (or, with `late_echoes_only` off, all webhooks) are held that
  long before they go out, while the app's other webhooks keep flowing. Meta's echoes
  do arrive late: after the Send API's answer, after later events, after a sender's
  own confirmation deadline.

`FaultTable` holds the settings; `LateHooks` is one delivery worker's held webhooks.
Not thread-safe on their own: the dispatcher holds its lock around `FaultTable` and
each `LateHooks` belongs to one worker thread.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from webhooks.emulator.platform import Webhook


@dataclass(frozen=True)
class WebhookFaults:
    duplicate: bool = False
    out_of_order: bool = False
    late_seconds: float = 0.0
    late_echoes_only: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "duplicate": self.duplicate,
            "out_of_order": self.out_of_order,
            "late_seconds": self.late_seconds,
            "late_echoes_only": self.late_echoes_only,
        }

    def holds(self, hook: Webhook) -> bool:
        """Whether the late fault holds this webhook back."""
        if self.late_seconds <= 0:
            return False
        return not self.late_echoes_only or is_echo(hook)


NO_FAULTS = WebhookFaults()


def is_echo(hook: Webhook) -> bool:
    message = hook.event.get("message")
    return isinstance(message, dict) and bool(message.get("is_echo"))


@dataclass
class FaultTable:
    """The faults for every app with a callback URL (key None) and per app."""

    _faults: dict[str | None, WebhookFaults] = field(default_factory=lambda: {None: NO_FAULTS})

    def set(self, app_id: str | None, **changes: Any) -> WebhookFaults:
        """Change the given settings (None leaves one as it is); returns the result.
        Raises ValueError for a negative `late_seconds`."""
        late = changes.get("late_seconds")
        if late is not None and late < 0:
            raise ValueError("late_seconds must not be negative")
        given = {k: v for k, v in changes.items() if v is not None}
        faults = replace(self._faults.get(app_id, NO_FAULTS), **given)
        self._faults[app_id] = faults
        return faults

    def clear(self) -> None:
        for key in self._faults:
            self._faults[key] = NO_FAULTS

    def view(self) -> dict[str, dict[str, Any]]:
        return {(key or "*"): faults.as_dict() for key, faults in self._faults.items()}

    def for_app(self, app_id: str, *, has_callback_url: bool) -> WebhookFaults:
        """An app's own faults, else the shared ones, which are for apps under test (HTTP
        callbacks), not the in-process bot."""
        own = self._faults.get(app_id)
        if own is not None:
            return own
        return self._faults[None] if has_callback_url else NO_FAULTS


class LateHooks:
    """Webhooks a late fault holds back, each until its due time (monotonic seconds)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Webhook]] = []
        self._order = itertools.count()  # equal due times keep their queue order

    def __len__(self) -> int:
        return len(self._heap)

    def hold(self, hooks: list[Webhook], faults: WebhookFaults, now: float) -> list[Webhook]:
        """Hold what `faults` delays; returns the webhooks that go out now."""
        now_going = []
        for hook in hooks:
            if faults.holds(hook):
                heapq.heappush(self._heap, (now + faults.late_seconds, next(self._order), hook))
            else:
                now_going.append(hook)
        return now_going

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def release(self, now: float) -> list[Webhook]:
        """The held webhooks that are due, oldest first."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def drop_all(self) -> int:
        """Forget every held webhook (the emulator stops); returns how many there were."""
        count = len(self._heap)
        self._heap.clear()
        return count
