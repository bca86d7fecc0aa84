"""The Django side of the processing benchmark (`tests.bench.processing`), run in a
child process with the stack's environment, imported once Django is set up."""

from __future__ import annotations

import hashlib
import time
import zlib
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Contact, ControlState
from tests.bench.processing import DRIVE_TIMEOUT_S, UNKNOWN_PAGE
from tests.support import factories, payloads
from tests.support.stack import Clock
from webhooks import services, tasks
from webhooks.models import Page, WebhookDelivery, WebhookEvent


def _events(mix: str, *, n: int, customers: int, tag: str) -> list[tuple[str, dict[str, Any]]]:
    """(channel, event) per delivery, and the customers' PSIDs they concern."""

    clock = Clock()
    psids = [f"7{zlib.crc32(tag.encode()) % 10**6:06d}{i:06d}" for i in range(customers)]
    out: list[tuple[str, dict[str, Any]]] = []
    mids = iter(range(10**9))

    def mid() -> str:
        return f"m_bench_{tag}_{next(mids)}"

    if mix == "standby":
        for i in range(n):
            psid = psids[i % customers]
            out.append(
                ("standby", payloads.user_message(f"hello {i}", ts=clock(), psid=psid, mid=mid()))
            )
        return out
    cycle = (
        lambda psid: ("standby", payloads.user_message("help", ts=clock(), psid=psid, mid=mid())),
        lambda psid: ("messaging", payloads.pass_control(ts=clock(), psid=psid)),
        lambda psid: (
            "messaging",
            payloads.user_message("my order", ts=clock(), psid=psid, mid=mid()),
        ),
        lambda psid: ("standby", payloads.request_control(ts=clock(), psid=psid)),
        lambda psid: ("messaging", payloads.take_control(ts=clock(), psid=psid)),
    )
    step = 0
    while len(out) < n:
        for psid in psids:
            if len(out) == n:
                break
            out.append(cycle[step % len(cycle)](psid))
        step += 1
    return out


def _store(mix: str, *, n: int, customers: int, tag: str) -> list[int]:
    """Customers (fresh profiles: no profile fetch) and their deliveries, stored as
    intake stores them, not enqueued. Returns the deliveries' ids in queue order."""

    page = Page.objects.get(page_id=payloads.PAGE_ID)
    events = _events(mix, n=n, customers=customers, tag=tag)
    for psid in {e["sender"]["id"] for _, e in events if e["sender"]["id"] != page.page_id}:
        if not Contact.objects.filter(page=page, psid=psid).exists():
            factories.conversation(page=page, psid=psid)
    rows = []
    for channel, event in events:
        body = payloads.body_bytes(payloads.delivery(event, channel=channel))
        rows.append(WebhookDelivery(digest=hashlib.sha256(body).hexdigest(), body=body))
    WebhookDelivery.objects.bulk_create(rows)
    digests = [r.digest for r in rows]
    by_digest = dict(WebhookDelivery.objects.filter(digest__in=digests).values_list("digest", "pk"))
    return [by_digest[d] for d in digests]


def _outcome(ids: list[int], seconds: float) -> dict[str, Any]:

    done = WebhookDelivery.objects.filter(
        pk__in=ids, status=WebhookDelivery.Status.PROCESSED
    ).count()
    events = WebhookEvent.objects.filter(delivery_id__in=ids)
    return {
        "seconds": seconds,
        "rate": len(ids) / seconds,
        "processed": done,
        "events": events.count(),
        "failed": events.filter(outcome=WebhookEvent.Outcome.FAILED).count()
        + WebhookDelivery.objects.filter(pk__in=ids)
        .exclude(status=WebhookDelivery.Status.PROCESSED)
        .count(),
    }


def _inprocess(ids: list[int], *, group: int = 1) -> dict[str, Any]:

    started = time.perf_counter()
    if group == 1:
        for delivery_id in ids:
            services.delivery_process(delivery_id=delivery_id)
    else:
        for start in range(0, len(ids), group):
            services.deliveries_process(delivery_ids=ids[start : start + group])
    return _outcome(ids, time.perf_counter() - started)


def _celery(ids: list[int], *, group: int = 1) -> dict[str, Any]:
    """Publish one task per delivery (`group` 1), or tasks of `group` deliveries, as the
    intake publishes what it stored together (`deliveries_process`)."""
    # Every run, processed or failed, counts an attempt.
    pending = WebhookDelivery.objects.filter(pk__in=ids, attempts=0)
    started = time.perf_counter()
    if group == 1:
        for delivery_id in ids:
            tasks.delivery_process.delay(delivery_id)
    else:
        for start in range(0, len(ids), group):
            tasks.deliveries_process.delay(ids[start : start + group])
    deadline = time.monotonic() + DRIVE_TIMEOUT_S - 60
    while pending.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not process every delivery in time")
        time.sleep(0.02)
    return _outcome(ids, time.perf_counter() - started)


GROUP = 10  # deliveries per task, as tests.bench.processing.GROUPS


def _statements() -> dict[str, float]:
    """SQL statements of `delivery_process` for one delivery of one event, by kind, in
    the steady state (the customer known, the profile fresh), broadcasts included; and
    per event of `deliveries_process` for a task of 10 such deliveries."""

    page = Page.objects.get(page_id=payloads.PAGE_ID)
    clock = Clock()
    psids = iter(range(10**6))

    def psid() -> str:
        return f"8{next(psids):015d}"

    def count(event: dict[str, Any], channel: str, page_id: str = payloads.PAGE_ID) -> int:
        body = payloads.body_bytes(payloads.delivery(event, channel=channel, page_id=page_id))
        delivery = WebhookDelivery.objects.create(
            digest=hashlib.sha256(body).hexdigest(), body=body
        )
        with CaptureQueriesContext(connection) as queries:
            services.delivery_process(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.status == WebhookDelivery.Status.PROCESSED, delivery.last_error
        return len(queries.captured_queries)

    counts: dict[str, float] = {}
    who = psid()
    factories.conversation(page=page, psid=who)
    counts["standby message"] = count(
        payloads.user_message("hello", ts=clock(), psid=who), "standby"
    )
    who = psid()
    factories.ticket(page=page, psid=who)
    counts["message with an open ticket"] = count(
        payloads.user_message("hello", ts=clock(), psid=who), "messaging"
    )
    who = psid()
    factories.conversation(page=page, psid=who, control_state=ControlState.BOT)
    counts["pass to us"] = count(payloads.pass_control(ts=clock(), psid=who), "messaging")
    who = psid()
    factories.ticket(page=page, psid=who)
    counts["take by the bot"] = count(payloads.take_control(ts=clock(), psid=who), "messaging")
    who = psid()
    factories.conversation(page=page, psid=who)
    counts["echo"] = count(payloads.echo("from the bot", ts=clock(), psid=who), "standby")
    counts["unknown page"] = count(
        payloads.user_message("hello", ts=clock(), psid=psid()), "standby", UNKNOWN_PAGE
    )

    def per_event_in_group(make: Any, page_id: str = payloads.PAGE_ID) -> float:
        """Statements of `deliveries_process` for a task of GROUP deliveries (one event
        each, one customer each), per event."""
        ids = []
        for _ in range(GROUP):
            event, channel = make()
            body = payloads.body_bytes(payloads.delivery(event, channel=channel, page_id=page_id))
            ids.append(
                WebhookDelivery.objects.create(
                    digest=hashlib.sha256(body).hexdigest(), body=body
                ).pk
            )
        with CaptureQueriesContext(connection) as queries:
            services.deliveries_process(delivery_ids=ids)
        processed = WebhookDelivery.objects.filter(pk__in=ids, status="processed").count()
        assert processed == GROUP, processed
        return len(queries.captured_queries) / GROUP

    def standby() -> tuple[dict[str, Any], str]:
        who = psid()
        factories.conversation(page=page, psid=who)
        return payloads.user_message("hello", ts=clock(), psid=who), "standby"

    def with_ticket() -> tuple[dict[str, Any], str]:
        who = psid()
        factories.ticket(page=page, psid=who)
        return payloads.user_message("hello", ts=clock(), psid=who), "messaging"

    def unknown() -> tuple[dict[str, Any], str]:
        return payloads.user_message("hello", ts=clock(), psid=psid()), "standby"

    counts["standby message, tasks of 10"] = per_event_in_group(standby)
    counts["message with an open ticket, tasks of 10"] = per_event_in_group(with_ticket)
    counts["unknown page, tasks of 10"] = per_event_in_group(unknown, UNKNOWN_PAGE)
    return counts


def drive(
    mode: str, mix: str, *, n: int, customers: int, tag: str, group: int = 1
) -> dict[str, Any]:
    if mode == "sql":
        return dict(_statements())
    ids = _store(mix, n=n, customers=customers, tag=tag)
    if mode == "inprocess":
        return _inprocess(ids, group=group)
    return _celery(ids, group=group)
