"""Retention (issue 13, point 6): old processed deliveries and settled Graph call
records are purged in batches; what is unfinished or still needed for exactly-once stays."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.support import payloads
from webhooks import retention, tasks
from webhooks.models import GraphCall, WebhookDelivery, WebhookEvent

pytestmark = pytest.mark.django_db

_n = itertools.count(1)
Status = WebhookDelivery.Status


@pytest.fixture(autouse=True)
def _retention(settings) -> None:
    settings.WEBHOOK_RETENTION_DAYS = 30
    settings.GRAPH_CALL_RETENTION_DAYS = 30


def _delivery(*, days_old: float, status: str = Status.PROCESSED, attempts: int = 1) -> int:
    n = next(_n)
    body = f'{{"n": {n}}}'.encode()
    delivery = WebhookDelivery.objects.create(
        body=body, digest=hashlib.sha256(body).hexdigest(), status=status, attempts=attempts
    )
    WebhookEvent.objects.create(
        key=f"mid:m_{n}",
        delivery=delivery,
        kind="message",
        channel="messaging",
        page_id=payloads.PAGE_ID,
        psid=payloads.PSID,
        timestamp=payloads.T0,
        outcome=WebhookEvent.Outcome.APPLIED,
        payload={"n": n},
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        received_at=timezone.now() - timedelta(days=days_old)
    )
    return delivery.pk


def _call(*, days_old: float, status: str) -> int:
    call = GraphCall.objects.create(key=f"message:{next(_n)}", kind="send", status=status)
    GraphCall.objects.filter(pk=call.pk).update(
        updated_at=timezone.now() - timedelta(days=days_old)
    )
    return call.pk


def _deletes(queries: CaptureQueriesContext, table: str) -> int:
    return sum(
        1
        for q in queries
        if q["sql"].startswith("DELETE") and f"FROM {table}" in q["sql"].replace('"', "")
    )


def test_purge_deletes_old_processed_deliveries_and_their_events_in_batches():
    old = [_delivery(days_old=31) for _ in range(5)]
    kept = [
        _delivery(days_old=29),  # recent
        _delivery(days_old=90, status=Status.RECEIVED),  # never applied: the re-drive's
        _delivery(days_old=90, status=Status.FAILED, attempts=3),  # still re-driven
        _delivery(days_old=90, status=Status.FAILED, attempts=10),  # left for an admin
        _delivery(days_old=90, status=Status.PARTIAL),  # failed events wait for an admin
    ]

    with CaptureQueriesContext(connection) as queries:
        counts = retention.retention_purge(batch_size=2)

    assert counts == retention.PurgeCounts(deliveries=5, events=5, graph_calls=0)
    assert sorted(WebhookDelivery.objects.values_list("pk", flat=True)) == sorted(kept)
    assert sorted(WebhookEvent.objects.values_list("delivery_id", flat=True)) == sorted(kept)
    assert not WebhookDelivery.objects.filter(pk__in=old).exists()
    # 5 rows, 2 per statement: three DELETEs of each table, never one for all.
    assert _deletes(queries, WebhookDelivery._meta.db_table) == 3
    assert _deletes(queries, WebhookEvent._meta.db_table) == 3
    # The bodies (up to a megabyte each) are never read to delete them.
    assert not any("body" in q["sql"] for q in queries if q["sql"].startswith("SELECT"))
    # A second run finds nothing.
    assert retention.retention_purge(batch_size=2) == retention.PurgeCounts()


def test_purge_deletes_only_settled_graph_calls_past_their_retention():
    old_settled = [
        _call(days_old=31, status=GraphCall.Status.SUCCEEDED),
        _call(days_old=45, status=GraphCall.Status.FAILED),
        _call(days_old=60, status=GraphCall.Status.SUCCEEDED),
    ]
    kept = [
        _call(days_old=29, status=GraphCall.Status.SUCCEEDED),
        # The records that make a call exactly-once, however old.
        _call(days_old=90, status=GraphCall.Status.PENDING),
        _call(days_old=90, status=GraphCall.Status.IN_FLIGHT),
        _call(days_old=90, status=GraphCall.Status.UNCERTAIN),
    ]

    with CaptureQueriesContext(connection) as queries:
        counts = retention.retention_purge(batch_size=2)

    assert counts == retention.PurgeCounts(graph_calls=3)
    assert sorted(GraphCall.objects.values_list("pk", flat=True)) == sorted(kept)
    assert not GraphCall.objects.filter(pk__in=old_settled).exists()
    assert _deletes(queries, GraphCall._meta.db_table) == 2


def test_zero_days_keeps_everything_forever(settings):
    settings.WEBHOOK_RETENTION_DAYS = 0
    settings.GRAPH_CALL_RETENTION_DAYS = 0
    delivery = _delivery(days_old=3650)
    call = _call(days_old=3650, status=GraphCall.Status.SUCCEEDED)

    assert retention.retention_purge() == retention.PurgeCounts()
    assert WebhookDelivery.objects.filter(pk=delivery).exists()
    assert GraphCall.objects.filter(pk=call).exists()


def test_each_retention_is_its_own(settings):
    settings.GRAPH_CALL_RETENTION_DAYS = 0
    _delivery(days_old=31)
    call = _call(days_old=31, status=GraphCall.Status.SUCCEEDED)

    assert retention.retention_purge() == retention.PurgeCounts(deliveries=1, events=1)
    assert GraphCall.objects.filter(pk=call).exists()


def test_records_outlive_every_retry_and_redelivery():
    # The floors the code holds whatever the settings say: Meta's redelivery (hours)
    # and a task's retries of a Graph call (minutes with the defaults) end well before.
    assert timedelta(hours=12) <= retention.REDELIVERY_WINDOW
    assert retention._graph_retry_window() > timedelta(minutes=5)
    assert retention._graph_retry_window() < timedelta(days=1)


def test_the_beat_task_purges():
    _delivery(days_old=31)
    recent = _delivery(days_old=1)

    tasks.retention_purge()

    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [recent]
