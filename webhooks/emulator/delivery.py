"""Webhook delivery: one worker thread per app, signed POSTs, retries, injected faults.

What Meta does (messenger-platform.md §1.5, §8.1, §8.17) and what this copies (the
envelope, its bytes and signature are in `envelopes`, the HTTP in `callbacks`):
- a non-2xx answer, or none within 5 s, is a failure; the delivery is retried a bounded
  number of times with backoff (`EmulatorConfig.retry_delays_seconds`, [conv]);
- after 15 min of failures an alert is recorded, after 1 h the app is unsubscribed
  from the page (emulated clock, so a test can move it);
- per app, deliveries go out one at a time in the order they were queued; a failing
  app holds up only its own queue.

Fault modes (per app, or every app with a callback URL; see `delivery_faults`):
`duplicate` POSTs each delivery twice; `out_of_order` holds a delivery until the next
one has been sent; `late_seconds` holds echoes (or all webhooks) that long. Every
attempt is recorded, for tests and the control page; `counts` add up every delivery
since the start, and observers (`observe`) see each delivery once it is settled.
"""

from __future__ import annotations

import http.client
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from webhooks.emulator.callbacks import http_request
from webhooks.emulator.clock import ClockLike
from webhooks.emulator.config import AppConfig, EmulatorConfig
from webhooks.emulator.delivery_faults import FaultTable, LateHooks, WebhookFaults
from webhooks.emulator.delivery_records import AppHealth, Attempt, Delivery, DeliveryCounts
from webhooks.emulator.envelopes import encode_body, envelope, event_kind, sign
from webhooks.emulator.platform import Webhook

logger = logging.getLogger(__name__)

_STOP = object()


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
        self._health: dict[str, AppHealth] = {}
        self._counts: dict[str, DeliveryCounts] = {}
        self._observers: list[Callable[[Delivery], None]] = []
        self._faults = FaultTable()

    # --- lifecycle ----------------------------------------------------------------

    def start(self, app_ids: list[str]) -> None:
        for app_id in app_ids:
            self._queues[app_id] = queue.Queue()
            self._pending[app_id] = 0
            self._health[app_id] = AppHealth()
            self._counts[app_id] = DeliveryCounts()
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
        late_seconds: float | None = None,
        late_echoes_only: bool | None = None,
    ) -> WebhookFaults:
        """Change the faults of one app (or, app_id None, of every app with a callback
        URL); None leaves a setting as it is. ValueError for a negative delay."""
        with self._lock:
            return self._faults.set(
                app_id,
                duplicate=duplicate,
                out_of_order=out_of_order,
                late_seconds=late_seconds,
                late_echoes_only=late_echoes_only,
            )

    def faults_clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults_view(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return self._faults.view()

    def _fault(self, app: AppConfig) -> WebhookFaults:
        with self._lock:
            return self._faults.for_app(app.app_id, has_callback_url=bool(app.callback_url))

    def observe(self, observer: Callable[[Delivery], None]) -> None:
        """Call `observer(delivery)` from the delivery thread once each delivery (and each
        duplicate copy) is delivered, failed or dropped. It must not block for long."""
        self._observers.append(observer)

    def counts(self, app_id: str) -> DeliveryCounts:
        with self._lock:
            return DeliveryCounts(**self._counts[app_id].__dict__)

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
                    "counts": dict(self._counts[app_id].__dict__),
                }
                for app_id, h in self._health.items()
            }

    # --- the worker ------------------------------------------------------------------

    def _run(self, app_id: str) -> None:
        q = self._queues[app_id]
        held: Delivery | None = None  # the out-of-order fault's delivery
        held_until = 0.0
        late = LateHooks()
        while not self._stopping.is_set():
            wake = [t for t in (held_until if held else None, late.next_due()) if t is not None]
            timeout = max(0.01, min(wake) - time.monotonic()) if wake else 0.5
            try:
                item = q.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            fresh = [] if item is None else self._take_more(q, item)
            app = self._app_lookup(app_id)
            if app is None:
                self._done(app_id, len(fresh))
                continue
            now = time.monotonic()
            faults = self._fault(app)
            taken = len(fresh)
            fresh = late.hold(fresh, faults, now)
            self._count(app_id, events_late=taken - len(fresh))
            for batch in self._batches(late.release(now) + fresh):
                delivery = self._record(app, batch)
                if held is None and faults.out_of_order:
                    held = delivery
                    held.status = "held"
                    held_until = now + self.config.out_of_order_hold_seconds
                    continue
                self._deliver(delivery)
                if held is not None:
                    self._deliver(held)
                    held = None
            if held is not None and time.monotonic() >= held_until:
                # No later delivery came: send the held one after all.
                self._deliver(held)
                held = None
        if held is not None:
            self._finish(held, "dropped")
        dropped = late.drop_all()
        self._count(app_id, events_dropped=dropped)
        self._done(app_id, dropped)

    def _take_more(self, q: queue.Queue[Any], first: Webhook) -> list[Webhook]:
        """`first` and what else is queued now, up to one POST's worth."""
        taken = [first]
        while len(taken) < self._batch_size():
            try:
                more = q.get_nowait()
            except queue.Empty:
                break
            if more is _STOP:
                q.put(_STOP)
                break
            taken.append(more)
        return taken

    def _batch_size(self) -> int:
        return min(max(1, self.config.batch_max), 1000)  # Meta's cap per POST (§8.18)

    def _batches(self, hooks: list[Webhook]) -> list[list[Webhook]]:
        size = self._batch_size()
        return [hooks[i : i + size] for i in range(0, len(hooks), size)]

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
                size=delivery.size,
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
                self._counts[app.app_id].posts += 1
            if status is not None and 200 <= status < 300:
                self._healthy(app)
                self._settle(delivery, "delivered")
                return
            if self._failing(app):
                self._settle(delivery, "dropped")
                return
            if not delays or self._stopping.wait(delays.pop(0)):
                logger.warning("webhook %s to app %s failed for good", delivery.id, app.app_id)
                self._settle(delivery, "failed")
                return

    def _settle(self, delivery: Delivery, status: str) -> None:
        """The delivery's final status: counted, and shown to the observers."""
        delivery.status = status
        counter = {"delivered": "events_acked", "failed": "events_failed"}.get(
            status, "events_dropped"
        )
        self._count(
            delivery.app_id,
            **{counter: delivery.size},
            deliveries_acked=int(status == "delivered"),
        )
        for observer in self._observers:
            try:
                observer(delivery)
            except Exception:
                logger.exception("a delivery observer failed")

    def _count(self, app_id: str, **increments: int) -> None:
        with self._lock:
            counts = self._counts[app_id]
            for name, value in increments.items():
                setattr(counts, name, getattr(counts, name) + value)

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
            self._health[app.app_id].succeeded()

    def _failing(self, app: AppConfig) -> bool:
        """Track how long the app has failed; True once it has been unsubscribed."""
        with self._lock:
            unsubscribe = self._health[app.app_id].failed(
                self.clock.now_ms(),
                alert_after_seconds=self.config.alert_after_failing_seconds,
                unsubscribe_after_seconds=self.config.unsubscribe_after_failing_seconds,
            )
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
            self._count(app_id, events_dropped=dropped)
            self._done(app_id, dropped)

    def _finish(self, delivery: Delivery, status: str) -> None:
        self._settle(delivery, status)
        self._done(delivery.app_id, delivery.size)

    def _done(self, app_id: str, count: int) -> None:
        with self._idle:
            self._pending[app_id] = max(0, self._pending[app_id] - count)
            self._idle.notify_all()
