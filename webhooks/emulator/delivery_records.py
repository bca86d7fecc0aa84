"""What the webhook dispatcher keeps: each delivery and its attempts, counts per app
since the start, and each app's failure streak (Meta alerts, then unsubscribes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Attempt:
    at: int  # emulated clock, ms
    status: int | None
    error: str
    duration_ms: int


@dataclass
class Delivery:
    id: int
    app_id: str
    body: bytes
    events: list[dict[str, str]]
    created_at: int
    status: str = "queued"  # queued, held, delivered, failed, dropped
    attempts: list[Attempt] = field(default_factory=list)
    duplicate_of: int | None = None
    size: int = 1  # webhooks in this POST (batching)

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        return payload

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app_id": self.app_id,
            "status": self.status,
            "events": self.events,
            "created_at": self.created_at,
            "duplicate_of": self.duplicate_of,
            "attempts": [a.__dict__ for a in self.attempts],
            "body": self.body.decode("ascii"),
        }


@dataclass
class DeliveryCounts:
    """What one app was sent since the start; `events_*` count webhooks (a POST may
    batch several), copies from the duplicate fault included."""

    posts: int = 0  # HTTP attempts
    deliveries_acked: int = 0
    events_acked: int = 0  # in a POST answered 2xx
    events_failed: int = 0  # retries exhausted
    events_dropped: int = 0  # unsubscribed, or the emulator stopped
    events_late: int = 0  # held back by the late fault


@dataclass
class AppHealth:
    """How long an app's deliveries have been failing, and the alerts that caused."""

    failing_since: int | None = None
    alerted: bool = False
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def succeeded(self) -> None:
        self.failing_since = None
        self.alerted = False

    def failed(
        self, now: int, *, alert_after_seconds: float, unsubscribe_after_seconds: float
    ) -> bool:
        """A failed attempt at `now` (ms): alert once after `alert_after_seconds` of
        failures; returns True, starting over, once the app must be unsubscribed."""
        if self.failing_since is None:
            self.failing_since = now
        failing_for = (now - self.failing_since) / 1000
        if failing_for >= alert_after_seconds and not self.alerted:
            self.alerted = True
            self.alerts.append({"at": now, "kind": "failing for 15 minutes"})
        if failing_for < unsubscribe_after_seconds:
            return False
        self.alerts.append({"at": now, "kind": "unsubscribed: failing for 1 hour"})
        self.succeeded()
        return True
