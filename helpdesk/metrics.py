"""Prometheus metrics at `/metrics`, for every process of a deployment at once.

Counts are made where things happen, in whichever process: Daphne's intake (webhooks
received and rejected), the workers (events applied, Graph calls and their latency,
handovers, processing lag). Each process adds them up in memory (no I/O on the path
that counts) and a thread of its own adds them to one Redis hash every
METRICS_FLUSH_SECONDS, so any Daphne process can answer a scrape with the deployment's
totals: one target, no per-process scraping, nothing shared on disk. A process killed
loses at most its last second or so of counts; Redis restarting empty starts the
counters again from zero, which Prometheus's `rate()` reads as a counter reset. The
gauges (tickets, sockets, the outbox) are read from the database at scrape time.

Access: `METRICS_TOKEN` (`Authorization: Bearer <token>`) or `METRICS_ALLOWED_NETWORKS`
(client addresses, CIDR); with neither set, `/metrics` is 404. Answered in front of
Django's stack (helpdesk.asgi), like the health probes.
"""

from __future__ import annotations

import datetime
import hmac
import ipaddress
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Count
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

logger = logging.getLogger(__name__)

PATH = "/metrics"
KEY = "helpdesk:metrics"

# name: (help, label names). Exposed as helpdesk_<name>_total.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "webhooks_received": ("Webhook deliveries stored and answered 200.", ()),
    "webhooks_rejected": ("Webhook deliveries refused, by reason.", ("reason",)),
    "events_applied": ("Webhook events recorded, by kind and outcome.", ("kind", "outcome")),
    "graph_calls": ("Graph API calls, by kind and outcome.", ("kind", "outcome")),
    "handovers": (
        "Changes of a conversation's thread control, by states and cause.",
        ("from_state", "to_state", "cause"),
    ),
}
SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# name: (help, label names, bucket bounds). Exposed as helpdesk_<name>.
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    "graph_call_seconds": ("Graph API call latency, by kind.", ("kind",), SECONDS),
    "webhook_lag_seconds": (
        "From a delivery's arrival to the end of its processing.",
        (),
        SECONDS,
    ),
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# --- counting, in any process ---------------------------------------------------------


class _Buffer:
    """This process's counts since the last flush, and the thread that flushes them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.sums: dict[str, float] = {}
        self.pid = 0
        self.client: redis.Redis | None = None

    def add(self, field: str, by: float = 1, *, total: bool = False) -> None:
        with self.lock:
            if self.pid != os.getpid():  # first use, or a forked child (a Celery pool)
                self.pid = os.getpid()
                self.counts.clear()
                self.sums.clear()
                self.client = None
                if settings.METRICS_FLUSH_SECONDS > 0:  # 0: only `flush()` sends (tests)
                    threading.Thread(target=self._run, name="metrics-flush", daemon=True).start()
            if total:
                self.sums[field] = self.sums.get(field, 0.0) + by
            else:
                self.counts[field] += int(by)

    def _run(self) -> None:
        pid = os.getpid()
        while self.pid == pid:
            time.sleep(settings.METRICS_FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            counts, sums = self.counts, self.sums
            self.counts, self.sums = Counter(), {}
        if not counts and not sums:
            return
        try:
            if self.client is None:
                self.client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
                )
            pipe = self.client.pipeline(transaction=False)
            for field, count in counts.items():
                pipe.hincrby(KEY, field, count)
            for field, total in sums.items():
                pipe.hincrbyfloat(KEY, field, total)
            pipe.execute()
        except redis.RedisError as error:
            # Kept for the next flush (Redis may be restarting); counts are never worth
            # failing work for.
            logger.debug("metrics: not flushed (%s)", type(error).__name__)
            with self.lock:
                self.counts.update(counts)
                for field, total in sums.items():
                    self.sums[field] = self.sums.get(field, 0.0) + total


_buffer = _Buffer()


def _field(kind: str, name: str, labels: dict[str, str], extra: str = "") -> str:
    return json.dumps([kind, name, sorted(labels.items()), extra], separators=(",", ":"))


def count(name: str, by: int = 1, **labels: str) -> None:
    """Add `by` to the counter `name` (one of COUNTERS, with exactly its labels)."""
    if set(labels) != set(COUNTERS[name][1]):
        raise ValueError(f"metric {name} takes the labels {COUNTERS[name][1]}, not {labels}")
    _buffer.add(_field("c", name, labels), by)


def observe(name: str, value: float, **labels: str) -> None:
    """Record `value` in the histogram `name` (one of HISTOGRAMS)."""
    _help, label_names, bounds = HISTOGRAMS[name]
    if set(labels) != set(label_names):
        raise ValueError(f"metric {name} takes the labels {label_names}, not {labels}")
    for bound in bounds:
        if value <= bound:
            _buffer.add(_field("h", name, labels, repr(bound)))
    _buffer.add(_field("h", name, labels, "+Inf"))
    _buffer.add(_field("h", name, labels, "sum"), value, total=True)


def flush() -> None:
    """Send this process's counts now (tests; a process about to exit)."""
    _buffer.flush()


# --- the scrape ------------------------------------------------------------------------


def _stored() -> dict[str, float]:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        raw = client.hgetall(KEY)
    finally:
        client.close()
    return {
        (key.decode() if isinstance(key, bytes) else key): float(value)
        for key, value in raw.items()
    }


def _gauges() -> list[Metric]:
    from agents.models import AgentSocket, Message, Ticket  # noqa: PLC0415 -- apps loaded

    close_old_connections()
    try:
        tickets = GaugeMetricFamily(
            "helpdesk_tickets", "Tickets not closed, by status.", labels=["status"]
        )
        by_status = dict(
            Ticket.objects.exclude(status=Ticket.Status.CLOSED)
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        for status in (Ticket.Status.WAITING, Ticket.Status.OPEN):
            tickets.add_metric([status.value], by_status.get(status.value, 0))
        stale = settings.PRESENCE_STALE_SECONDS
        sockets = GaugeMetricFamily(
            "helpdesk_agent_sockets",
            f"Open inbox sockets (heartbeat within {stale} seconds).",
            value=AgentSocket.objects.filter(
                seen_at__gte=timezone.now() - datetime.timedelta(seconds=stale)
            ).count(),
        )
        outbox = GaugeMetricFamily(
            "helpdesk_outbox_queue",
            "Agent messages not yet sent: queued, being sent, or waiting for Meta's echo.",
            labels=["status"],
        )
        waiting = (Message.Status.PENDING, Message.Status.SENDING, Message.Status.CONFIRMING)
        queued = dict(
            Message.objects.filter(status__in=waiting)
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        for message_status in waiting:
            outbox.add_metric([message_status.value], queued.get(message_status.value, 0))
        return [tickets, sockets, outbox]
    finally:
        close_old_connections()


def families(stored: dict[str, float], gauges: list[Metric]) -> list[Metric]:
    """The metric families to expose: the stored counts, then the gauges."""
    values: dict[tuple[str, str], dict[tuple[tuple[str, str], ...], dict[str, float]]] = {}
    for key, value in stored.items():
        try:
            kind, name, labels, extra = json.loads(key)
        except (ValueError, TypeError):
            continue
        series = values.setdefault((kind, name), {})
        series.setdefault(tuple(tuple(pair) for pair in labels), {})[extra] = value
    out: list[Metric] = []
    for name, (help_text, label_names) in COUNTERS.items():
        counter = CounterMetricFamily(f"helpdesk_{name}", help_text, labels=list(label_names))
        for labels, point in sorted(values.get(("c", name), {}).items()):
            counter.add_metric([dict(labels)[n] for n in label_names], point.get("", 0))
        out.append(counter)
    for name, (help_text, label_names, bounds) in HISTOGRAMS.items():
        histogram = HistogramMetricFamily(f"helpdesk_{name}", help_text, labels=list(label_names))
        for labels, point in sorted(values.get(("h", name), {}).items()):
            buckets = [(repr(b), point.get(repr(b), 0)) for b in bounds]
            buckets.append(("+Inf", point.get("+Inf", 0)))
            histogram.add_metric(
                [dict(labels)[n] for n in label_names], buckets, point.get("sum", 0.0)
            )
        out.append(histogram)
    return out + gauges


class _Collector:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def exposition() -> bytes:
    """The whole deployment's metrics in Prometheus's text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(families(_stored(), _gauges())))
    return generate_latest(registry)


def allowed(scope: Scope) -> bool | None:
    """Whether the request may read the metrics; None when they are off (404)."""
    token = settings.METRICS_TOKEN
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return None
    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return True
    client = (scope.get("client") or ("", 0))[0]
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """GET /metrics (ASGI)."""
    permitted = allowed(scope)
    status, body, content_type = 200, b"", CONTENT_TYPE_LATEST
    extra: list[tuple[bytes, bytes]] = []
    if scope["method"] not in ("GET", "HEAD"):
        status, body, content_type = 405, b"method not allowed\n", "text/plain"
        extra.append((b"allow", b"GET, HEAD"))
    elif permitted is None:
        status, body, content_type = 404, b"metrics are off: set METRICS_TOKEN\n", "text/plain"
    elif not permitted:
        status, body, content_type = 401, b"a valid bearer token is needed\n", "text/plain"
        extra.append((b"www-authenticate", b'Bearer realm="metrics"'))
    else:
        try:
            body = await sync_to_async(exposition, thread_sensitive=False)()
        except (redis.RedisError, OSError) as error:
            logger.warning("metrics: Redis did not answer (%s)", type(error).__name__)
            status, body, content_type = 503, b"metrics unavailable: Redis\n", "text/plain"
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
