"""Webhook delivery: one worker thread per app, signed POSTs, retries, injected faults.

What Meta does (messenger-platform.md §1.5, §8.1, §8.17) and what this copies (the
envelope, its bytes and signature are in `envelopes`, the HTTP in `callbacks`):
- a non-2xx answer, or none within 5 s, is a failure; the delivery is retried a bounded
  number of times with backoff (`EmulatorConfig.retry_delays_seconds`, [conv]);
- after 15 min of failures an alert is recorded, after 1 h the app is unsubscribed
  from the page (emulated clock, so a test can move it);
- per app, deliveries go out one at a time in the order they were queued; a failing
  app holds up only its own queue.

Fault modes (per app, or every app with a callback URL): `duplicate` POSTs each
delivery twice; `out_of_order` holds a delivery until the next one has been sent.
Every attempt is recorded, for tests and the control page.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webhooks.emulator.callbacks import http_request
from webhooks.emulator.clock import ClockLike
from webhooks.emulator.config import AppConfig, EmulatorConfig
from webhooks.emulator.envelopes import encode_body, envelope, event_kind, sign
from webhooks.emulator.platform import Webhook

logger = logging.getLogger(__name__)

_STOP = object()


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
class WebhookFaults:
    duplicate: bool = False
    out_of_order: bool = False


@dataclass
class _AppHealth:
    failing_since: int | None = None
    alerted: bool = False
    alerts: list[dict[str, Any]] = field(default_factory=list)


class Dispatcher:
    """Delivers webhooks to each app's callback URL (or in-process handler)."""

    def __init__(
        self,
        *,
        config: EmulatorConfig,
        clock: ClockLike,
        app_lookup: Callable[[str], AppConfig | None],
        on_unsubscribe: Callable[[str], None],
    ) -> None:
        self.config = config
        self.clock = clock
        self._app_lookup = app_lookup
        self._on_unsubscribe = on_unsubscribe
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._queues: dict[str, queue.Queue[Any]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._pending: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._records: deque[Delivery] = deque(maxlen=2000)
        self._health: dict[str, _AppHealth] = {}
        # Faults for every app with a callback URL (key None) or for one app.
        self._faults: dict[str | None, WebhookFaults] = {None: WebhookFaults()}

    # --- lifecycle ----------------------------------------------------------------

    def start(self, app_ids: list[str]) -> None:
        for app_id in app_ids:
            self._queues[app_id] = queue.Queue()
            self._pending[app_id] = 0
            self._health[app_id] = _AppHealth()
            thread = threading.Thread(
                target=self._run, args=(app_id,), name=f"webhooks-{app_id}", daemon=True
            )
            self._threads[app_id] = thread
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for q in self._queues.values():
            q.put(_STOP)
        for thread in self._threads.values():
            thread.join(timeout=self.config.delivery_timeout_seconds + 1)

    # --- queueing -------------------------------------------------------------------

    def enqueue(self, hooks: list[Webhook]) -> None:
        """Queue webhooks, keeping their order per app. Never blocks."""
        with self._lock:
            for hook in hooks:
                q = self._queues.get(hook.app_id)
                app = self._app_lookup(hook.app_id)
                if q is None or app is None or not (app.callback_url or app.handler):
                    continue  # nowhere to deliver (an app without a callback URL)
                self._pending[hook.app_id] += 1
                q.put(hook)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook was delivered, failed or dropped (tests)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while any(self._pending.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    # --- faults and records ----------------------------------------------------------

    def faults_set(
        self,
        *,
        app_id: str | None = None,
        duplicate: bool | None = None,
        out_of_order: bool | None = None,
    ) -> WebhookFaults:
        with self._lock:
            faults = self._faults.setdefault(app_id, WebhookFaults())
            if duplicate is not None:
                faults.duplicate = duplicate
            if out_of_order is not None:
                faults.out_of_order = out_of_order
            return WebhookFaults(faults.duplicate, faults.out_of_order)

    def faults_view(self) -> dict[str, dict[str, bool]]:
        with self._lock:
            return {
                (key or "*"): {"duplicate": f.duplicate, "out_of_order": f.out_of_order}
                for key, f in self._faults.items()
            }

    def _fault(self, app: AppConfig) -> WebhookFaults:
        with self._lock:
            own = self._faults.get(app.app_id)
            if own is not None:
                return WebhookFaults(own.duplicate, own.out_of_order)
            # The default faults are for apps under test (HTTP callbacks), not the bot.
            if app.callback_url:
                shared = self._faults[None]
                return WebhookFaults(shared.duplicate, shared.out_of_order)
            return WebhookFaults()

    def deliveries(self, app_id: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self._records if app_id is None or d.app_id == app_id]

    def health_view(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                app_id: {
                    "failing_since": h.failing_since,
                    "alerts": list(h.alerts),
                    "queued": self._pending.get(app_id, 0),
                }
                for app_id, h in self._health.items()
            }

    # --- the worker ------------------------------------------------------------------

    def _run(self, app_id: str) -> None:
        q = self._queues[app_id]
        held: Delivery | None = None
        held_until = 0.0
        while not self._stopping.is_set():
            timeout = max(0.01, held_until - time.monotonic()) if held else 0.5
            try:
                item = q.get(timeout=timeout)
            except queue.Empty:
                if held is not None and time.monotonic() >= held_until:
                    # No later delivery came: send the held one after all.
                    self._deliver(held)
                    held = None
                continue
            if item is _STOP:
                break
            batch = [item]
            # Meta's generic cap is 1000 updates per POST (§8.18).
            while len(batch) < min(max(1, self.config.batch_max), 1000):
                try:
                    more = q.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    q.put(_STOP)
                    break
                batch.append(more)
            app = self._app_lookup(app_id)
            if app is None:
                self._done(app_id, len(batch))
                continue
            delivery = self._record(app, batch)
            if held is None and self._fault(app).out_of_order:
                held = delivery
                held.status = "held"
                held_until = time.monotonic() + self.config.out_of_order_hold_seconds
                continue
            self._deliver(delivery)
            if held is not None:
                self._deliver(held)
                held = None
        if held is not None:
            self._finish(held, "dropped")

    def _record(self, app: AppConfig, batch: list[Webhook]) -> Delivery:
        body = encode_body(envelope(batch), escape_slashes=self.config.escape_slashes)
        delivery = Delivery(
            id=next(self._ids),
            app_id=app.app_id,
            body=body,
            events=[{"channel": h.channel, "kind": event_kind(h.event)} for h in batch],
            created_at=self.clock.now_ms(),
            size=len(batch),
        )
        with self._lock:
            self._records.append(delivery)
        return delivery

    def _deliver(self, delivery: Delivery) -> None:
        app = self._app_lookup(delivery.app_id)
        if app is None:
            self._finish(delivery, "dropped")
            return
        self._attempts(app, delivery)
        if self._fault(app).duplicate and delivery.status == "delivered":
            copy = Delivery(
                id=next(self._ids),
                app_id=app.app_id,
                body=delivery.body,
                events=delivery.events,
                created_at=self.clock.now_ms(),
                duplicate_of=delivery.id,
            )
            with self._lock:
                self._records.append(copy)
            self._attempts(app, copy)
        self._done(app.app_id, delivery.size)

    def _attempts(self, app: AppConfig, delivery: Delivery) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "facebookexternalua",
            **sign(app.secret, delivery.body),
        }
        delays = list(self.config.retry_delays_seconds)
        while True:
            started = time.monotonic()
            status, error = self._post(app, delivery.body, headers)
            attempt = Attempt(
                at=self.clock.now_ms(),
                status=status,
                error=error,
                duration_ms=int((time.monotonic() - started) * 1000),
            )
            with self._lock:
                delivery.attempts.append(attempt)
            if status is not None and 200 <= status < 300:
                self._healthy(app)
                delivery.status = "delivered"
                return
            if self._failing(app):
                delivery.status = "dropped"
                return
            if not delays or self._stopping.wait(delays.pop(0)):
                delivery.status = "failed"
                logger.warning("webhook %s to app %s failed for good", delivery.id, app.app_id)
                return

    def _post(self, app: AppConfig, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
        if app.handler is not None:
            # An in-process app that crashes is a failed delivery, like a 500.
            try:
                return app.handler(body, headers), ""
            except Exception as exc:
                logger.exception("in-process app %s failed on a webhook", app.app_id)
                return None, f"{type(exc).__name__}: {exc}"
        if not app.callback_url:
            return None, "no callback URL"
        try:
            status, _ = http_request(
                "POST",
                app.callback_url,
                body=body,
                headers=headers,
                timeout=self.config.delivery_timeout_seconds,
            )
        except TimeoutError:
            return None, "no answer within the time limit"
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return status, "" if 200 <= status < 300 else f"HTTP {status}"

    def _healthy(self, app: AppConfig) -> None:
        with self._lock:
            health = self._health[app.app_id]
            health.failing_since = None
            health.alerted = False

    def _failing(self, app: AppConfig) -> bool:
        """Track how long the app has failed; True once it has been unsubscribed."""
        now = self.clock.now_ms()
        with self._lock:
            health = self._health[app.app_id]
            if health.failing_since is None:
                health.failing_since = now
            failing_for = (now - health.failing_since) / 1000
            if failing_for >= self.config.alert_after_failing_seconds and not health.alerted:
                health.alerted = True
                health.alerts.append({"at": now, "kind": "failing for 15 minutes"})
            unsubscribe = failing_for >= self.config.unsubscribe_after_failing_seconds
            if unsubscribe:
                health.alerts.append({"at": now, "kind": "unsubscribed: failing for 1 hour"})
                health.failing_since = None
                health.alerted = False
        if unsubscribe:
            self._on_unsubscribe(app.app_id)
            self._drop_queued(app.app_id)
        return unsubscribe

    def _drop_queued(self, app_id: str) -> None:
        q = self._queues[app_id]
        dropped = 0
        while True:
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                q.put(_STOP)
                break
            dropped += 1
        if dropped:
            self._done(app_id, dropped)

    def _finish(self, delivery: Delivery, status: str) -> None:
        delivery.status = status
        self._done(delivery.app_id, delivery.size)

    def _done(self, app_id: str, count: int) -> None:
        with self._idle:
            self._pending[app_id] = max(0, self._pending[app_id] - count)
            self._idle.notify_all()
