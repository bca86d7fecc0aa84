"""How long raw webhook deliveries and Graph call records are kept (issue 13, point 6).

Beat runs `retention_purge` (webhooks.tasks.retention_purge). What it deletes, and why
nothing it deletes is still needed:

- A `WebhookDelivery` older than WEBHOOK_RETENTION_DAYS, only once `processed`, with its
  `WebhookEvent`s (the foreign key cascades). An event's unique key is what makes a
  redelivery change nothing; Meta redelivers a webhook it got no 200 for during hours at
  most, so the keys are kept at least `REDELIVERY_WINDOW` whatever the setting says.
  Never deleted by age: `received` (still to be applied: the re-drive takes it), `failed`
  (re-driven until WEBHOOK_MAX_ATTEMPTS, then left for an admin) and `partial` (some
  events failed and wait for an admin to apply them again from admin): those are open
  work, not history. Once an admin has applied a partial delivery's failed events it is
  `processed`, and goes with the next run after its age. (One person's data in them is
  still erased on request: `agents.services.privacy`.)
- A `GraphCall` older than GRAPH_CALL_RETENTION_DAYS (by its last change), only once
  `succeeded` or `failed`. A `pending`, `in_flight` or `uncertain` record is what keeps a
  call exactly-once (`graph.call`): never deleted. A succeeded record stops a retried
  task from sending again; tasks retry for minutes (GRAPH_RETRY_MAX with backoff, a send
  waits GRAPH_CONFIRM_SECONDS for its echo), so a record is kept at least
  `_graph_retry_window()` whatever the setting says.

0 days keeps the rows forever. Rows go in batches, each its own short transaction, so
that a large backlog never holds the tables for long; a run cut short (time limit) goes
on where it stopped at the next.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webhooks.models import GraphCall, WebhookDelivery, WebhookEvent

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
# Meta retries a webhook it got no 200 for during a few hours at most: the events' keys
# (the dedupe of a redelivery) outlive that, whatever WEBHOOK_RETENTION_DAYS says.
REDELIVERY_WINDOW = timedelta(days=1)
# A Graph call's record outlives every retry of the task that made it by this margin.
GRAPH_RETRY_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class PurgeCounts:
    deliveries: int = 0
    events: int = 0
    graph_calls: int = 0


def retention_purge(*, batch_size: int = BATCH_SIZE) -> PurgeCounts:
    """Delete what is older than its retention and no longer needed (module docstring),
    `batch_size` rows per statement and transaction. Returns how many rows went.
    Idempotent: a second run finds nothing more to delete."""
    if batch_size < 1:
        raise ValueError("The batch size must be at least 1.")
    now = timezone.now()
    deliveries, events = _deliveries_purge(now, batch_size)
    graph_calls = _graph_calls_purge(now, batch_size)
    counts = PurgeCounts(deliveries=deliveries, events=events, graph_calls=graph_calls)
    if deliveries or graph_calls:
        logger.info(
            "retention: deleted %s webhook deliveries, %s webhook events, %s Graph calls",
            deliveries,
            events,
            graph_calls,
        )
    return counts


def _deliveries_purge(now: datetime, batch_size: int) -> tuple[int, int]:
    days = settings.WEBHOOK_RETENTION_DAYS
    if days <= 0:
        return 0, 0
    cutoff = now - max(timedelta(days=days), REDELIVERY_WINDOW)
    old = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PROCESSED, received_at__lt=cutoff
    )
    deliveries = events = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            # `only("pk")`: the bodies (up to a megabyte each) are never read; the events
            # go with one DELETE … WHERE delivery_id IN (…). `processed` is final: no
            # worker claims such a delivery again, so the status read above still holds.
            _, deleted = old.filter(pk__in=ids).only("pk").delete()
        deliveries += deleted.get(WebhookDelivery._meta.label, 0)
        events += deleted.get(WebhookEvent._meta.label, 0)
        if len(ids) < batch_size:
            break
    return deliveries, events


def _graph_retry_window() -> timedelta:
    """The longest a task may still retry a Graph call after its record last changed:
    every backoff at its longest, the wait for a send's echo, the re-drive's lease, and
    a margin. Minutes with the defaults; retention is counted in days."""
    backoff = sum(
        settings.GRAPH_RETRY_BACKOFF_SECONDS * 2**retry for retry in range(settings.GRAPH_RETRY_MAX)
    )
    seconds = (
        backoff
        + settings.GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS * settings.GRAPH_RETRY_MAX
        + settings.GRAPH_CONFIRM_SECONDS
        + settings.REDRIVE_LEASE_SECONDS
    )
    return timedelta(seconds=seconds) + GRAPH_RETRY_MARGIN


def _graph_calls_purge(now: datetime, batch_size: int) -> int:
    days = settings.GRAPH_CALL_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = now - max(timedelta(days=days), _graph_retry_window())
    old = GraphCall.objects.filter(
        status__in=[GraphCall.Status.SUCCEEDED, GraphCall.Status.FAILED], updated_at__lt=cutoff
    )
    deleted = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        # The status again in the DELETE: a failed record that a retry took meanwhile
        # (now in flight) stays.
        count, _ = old.filter(pk__in=ids).delete()
        deleted += count
        if len(ids) < batch_size:
            break
    return deleted
