"""Receiving and applying Messenger webhooks.

The receiver stores the raw body and answers at once; `delivery_process` later applies
each event exactly once (a unique key per event, in the same transaction as the change
it causes) through the handler that settings name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from helpdesk import clock, metrics
from webhooks import tasks
from webhooks.crypto import token_unseal
from webhooks.events import Event, InvalidEvent
from webhooks.locks import event_lock_by_key
from webhooks.models import (
    CSAT_WAIT_MAX_MINUTES,
    ControlMode,
    Handback,
    Page,
    WebhookDelivery,
    WebhookEvent,
)
from webhooks.parsing import parse_delivery, parse_event
from webhooks.queue import Batches, enqueue, enqueue_on_commit

logger = logging.getLogger(__name__)

KEY_MAX = 255  # WebhookEvent.key
TRANSIENT_ATTEMPTS = 3  # a deadlock or a busy database: tried again at once, this often
REDRIVE_BATCH = 500

EventHandler = Callable[[Page, Event], str | None]


class MalformedDelivery(ValueError):
    """The body is not a JSON object."""


def signature_valid(*, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256` over the raw bytes, compared in constant time. A header
    that is not ASCII hex is simply wrong (403), never an error."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(settings.MESSENGER_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    given = header.removeprefix("sha256=").lower().encode("utf-8", "replace")
    return hmac.compare_digest(given, expected.encode())


def delivery_payload(*, body: bytes) -> dict[str, Any]:
    """The delivery's JSON object. Raises MalformedDelivery when the body is not a JSON
    object (or nests too deep to decode)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedDelivery("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise MalformedDelivery("the body is not a JSON object")
    return payload


def delivery_receive(*, body: bytes) -> WebhookDelivery:
    """Store a verified delivery durably and enqueue its processing after commit.

    A byte-identical redelivery returns the stored row and enqueues nothing new.
    Raises MalformedDelivery, storing nothing, when the body is not a JSON object.
    (Daphne's route stores concurrent deliveries together: webhooks.intake.)
    """
    delivery_payload(body=body)
    deliveries_store([body])
    return WebhookDelivery.objects.get(digest=hashlib.sha256(body).hexdigest())


def deliveries_store(bodies: Sequence[bytes]) -> list[int]:
    """Store verified deliveries in one transaction, one INSERT (a group commit), and
    enqueue the processing of those that are new as one task once it commits.

    A body already stored (a byte-identical redelivery, or twice in `bodies`) is
    neither stored nor enqueued again. Returns the ids of the rows created, in the
    order of `bodies`. The caller has checked the signature and the JSON.
    """
    digests: dict[str, bytes] = {}
    for body in bodies:
        digests.setdefault(hashlib.sha256(body).hexdigest(), body)
    if not digests:
        return []
    table = WebhookDelivery._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    status = WebhookDelivery.Status.RECEIVED.value
    rows = ", ".join(["(%s, %s, %s, 0, '', %s, %s, 0)"] * len(digests))
    params: list[Any] = []
    for digest, body in digests.items():
        params += [body, digest, status, now, now]
    # One statement, in autocommit: it is its own transaction (all rows or none, durable
    # when it returns), without the round trips of a BEGIN and a COMMIT.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (body, digest, status, attempts, last_error, received_at, "  # noqa: S608 -- no input in the names
            f"enqueued_at, events_done) VALUES {rows} "
            "ON CONFLICT (digest) DO NOTHING RETURNING id, digest",
            params,
        )
        created = dict((digest, pk) for pk, digest in cursor.fetchall())
        ids = [created[digest] for digest in digests if digest in created]
        if ids:
            _enqueue_batch_on_commit(ids)
    return ids


def _unqueued(delivery_ids: list[int]) -> None:
    # The broker refused it: let the re-drive take them after its grace period.
    WebhookDelivery.objects.filter(pk__in=delivery_ids).update(enqueued_at=None)


@cache
def _batches() -> Batches:
    """The intake's groups: one task for what several commits stored (queue.Batches)."""
    return Batches(tasks.deliveries_process, on_failure=_unqueued)


def _enqueue_batch_on_commit(delivery_ids: list[int]) -> None:
    transaction.on_commit(lambda: _batches().add(delivery_ids))


def _enqueue_on_commit(delivery_id: int) -> None:
    def unqueued() -> None:
        WebhookDelivery.objects.filter(pk=delivery_id).update(enqueued_at=None)

    enqueue_on_commit(tasks.delivery_process, delivery_id, on_failure=unqueued)


def _received_ms(delivery: WebhookDelivery) -> int:
    """When the delivery arrived, on Messenger's clock (the emulator's in development):
    the parser believes event timestamps near it."""
    offset = clock.offset()
    return int((delivery.received_at + offset).timestamp() * 1000)


def delivery_process(*, delivery_id: int) -> bool:
    """Apply every event of a delivery, in timestamp order, each exactly once.

    Each event is applied in its own short transaction, with the unique record of its
    dedupe key (a redelivered event changes nothing). An event that cannot be applied
    is kept, failed, with its error (`event_replay` applies it again); its neighbours
    are applied regardless. A deadlock or serialization failure is retried at once. A
    large delivery yields after WEBHOOK_CHUNK_SECONDS and continues in a new task.

    Returns False when there was nothing to do: processed already, being processed by
    another worker (`running_since`, for up to REDRIVE_LEASE_SECONDS), or failed
    WEBHOOK_MAX_ATTEMPTS times (left for an admin). A failure of the delivery itself
    (the database went away) is recorded on the row for the re-drive, and raised.
    """
    claimed = _deliveries_claim([delivery_id])
    if not claimed:
        return False
    [delivery] = claimed
    _delivery_run(delivery, _pages())
    return True


def _pages() -> dict[str, Page]:
    return {p.page_id: p for p in Page.objects.all()}


def _delivery_run(delivery: WebhookDelivery, pages: dict[str, Page]) -> None:
    """Apply a claimed delivery one event at a time (`delivery_process`)."""
    try:
        finished, failed = _events_apply(delivery, pages)
    except Exception as exc:
        logger.exception("delivery %s failed", delivery.pk)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=F("attempts") + 1,
            status=WebhookDelivery.Status.FAILED,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            running_since=None,
        )
        raise
    if finished:
        # Failed events of earlier chunks are counted from their rows.
        if not failed and delivery.events_done:
            failed = WebhookEvent.objects.filter(
                delivery_id=delivery.pk, outcome=WebhookEvent.Outcome.FAILED
            ).count()
        _delivery_finish(delivery.pk, failed=failed)
        _lag_observe([delivery])


def _lag_observe(deliveries: Sequence[WebhookDelivery]) -> None:
    now = timezone.now()
    for delivery in deliveries:
        metrics.observe("webhook_lag_seconds", (now - delivery.received_at).total_seconds())


def _events_count(outcomes: list[tuple[str, str]]) -> None:
    """Count recorded events once their transaction commits."""
    for (kind, outcome), n in Counter(outcomes).items():
        metrics.count("events_applied", n, kind=kind, outcome=outcome)


def deliveries_process(*, delivery_ids: Sequence[int]) -> int:
    """Apply the deliveries the intake stored together (one task), in their order, each
    event exactly once, with the fewest statements.

    The deliveries are claimed and read with one UPDATE (as `delivery_process` claims
    one). Their events are applied in groups of up to WEBHOOK_GROUP_EVENTS, each group
    in one transaction: one SELECT finds the keys recorded before, the handler applies
    each new event, one INSERT records their keys and outcomes, one UPDATE finishes the
    group's deliveries. A group whose transaction fails for any reason (a poison event, a
    deadlock, a key that another worker recorded meanwhile) is rolled back whole and its
    deliveries are applied one event at a time, as `delivery_process` does: a failed
    event is then kept with its error, and its neighbours are applied. An event whose
    key was recorded before (a redelivery, or a failed event to try again) takes that
    path too, after its group. A delivery larger than a group, or continued from an
    earlier chunk, is applied alone. A failure of a delivery itself is recorded on its
    row for the re-drive and logged; the others go on. Under load the task takes along
    deliveries whose own task is still queued (`_deliveries_claim`). Returns how many
    were claimed.
    """
    claimed = _deliveries_claim(delivery_ids, along=settings.WEBHOOK_TAKE_ALONG)
    if not claimed:
        return 0
    pages = _pages()
    group: list[tuple[WebhookDelivery, list[Event]]] = []
    size = 0
    limit = settings.WEBHOOK_GROUP_EVENTS
    for delivery in claimed:
        events = _delivery_events(delivery) if not delivery.events_done else None
        if events is None or len(events) > limit:
            _group_run(group, pages)
            group, size = [], 0
            _delivery_run_logged(delivery, pages)
            continue
        if size + len(events) > limit:
            _group_run(group, pages)
            group, size = [], 0
        group.append((delivery, events))
        size += len(events)
    _group_run(group, pages)
    return len(claimed)


def _deliveries_claim(delivery_ids: Sequence[int], *, along: int = 0) -> list[WebhookDelivery]:
    """Claim these deliveries for this worker in one conditional UPDATE and read them, in
    the order they arrived (their ids), without those that are done, failed
    WEBHOOK_MAX_ATTEMPTS times, or running elsewhere within REDRIVE_LEASE_SECONDS (the
    database applies the UPDATE atomically: of two workers, one wins).

    `along`: claim as well up to that many other deliveries stored but never claimed (a
    backlog: their tasks wait behind this one, and will find nothing to do), the oldest,
    once these are claimed. On PostgreSQL rows another worker is claiming are
    skipped, not waited for (SKIP LOCKED): two claims never wait on each other."""
    ids = list(dict.fromkeys(int(pk) for pk in delivery_ids))
    if not ids:
        return []
    now = timezone.now()
    busy_since = now - timedelta(seconds=settings.REDRIVE_LEASE_SECONDS)
    adapt = connection.ops.adapt_datetimefield_value
    table = WebhookDelivery._meta.db_table
    marks = ", ".join(["%s"] * len(ids))
    # The rows come back from the UPDATE itself (RETURNING): no second read.
    columns = ", ".join(field.column for field in WebhookDelivery._meta.concrete_fields)
    claimable = (
        "attempts < %s AND status NOT IN (%s, %s)"
        " AND (running_since IS NULL OR running_since <= %s)"
    )
    claimable_params = [
        settings.WEBHOOK_MAX_ATTEMPTS,
        WebhookDelivery.Status.PROCESSED.value,
        WebhookDelivery.Status.PARTIAL.value,
        adapt(busy_since),
    ]
    if along <= 0:
        sql = (
            f"UPDATE {table} SET running_since = %s WHERE id IN ({marks})"  # noqa: S608 -- no input in the names
            f" AND {claimable} RETURNING {columns}"
        )
        params = [adapt(now), *ids, *claimable_params]
    else:
        # PostgreSQL: the rows chosen FOR UPDATE SKIP LOCKED, and chosen once: as
        # `id IN (subquery)` the planner may run the subquery again for each row it
        # updates, and a rerun skips the rows this statement just updated and picks the
        # next ones, past the LIMIT (CI saw four claimed of three). ARRAY(...) is
        # evaluated once. SQLite has one writer at a time and runs it once.
        if connection.vendor == "postgresql":
            chosen, close, skip = "id = ANY(ARRAY(", "))", " FOR UPDATE SKIP LOCKED"
        else:
            chosen, close, skip = "id IN (", ")", ""
        sql = (
            f"UPDATE {table} SET running_since = %s WHERE {chosen}"  # noqa: S608 -- no input in the names
            f"SELECT id FROM {table} WHERE (id IN ({marks}) OR (status = %s"
            " AND running_since IS NULL))"
            f" AND {claimable} ORDER BY CASE WHEN id IN ({marks}) THEN 0 ELSE 1 END, id"
            f" LIMIT %s{skip}{close} RETURNING {columns}"
        )
        params = [
            adapt(now),
            *ids,
            WebhookDelivery.Status.RECEIVED.value,
            *claimable_params,
            *ids,
            len(ids) + along,
        ]
    # In the order they arrived, taken along or not: a customer's message stored before
    # the bot's pass is applied before it, whichever task claimed the two (its own first,
    # the pass came before the message that opened the window: nobody was told).
    return sorted(WebhookDelivery.objects.raw(sql, params), key=lambda delivery: delivery.pk)


def _delivery_events(delivery: WebhookDelivery) -> list[Event] | None:
    """The delivery's events, in the order they are applied; None when the body does not
    parse (the one-at-a-time path records why)."""
    try:
        return parse_delivery(json.loads(bytes(delivery.body)), received_ms=_received_ms(delivery))
    except Exception:  # noqa: BLE001 -- _delivery_run records the failure on the row
        return None


def _delivery_run_logged(delivery: WebhookDelivery, pages: dict[str, Page]) -> None:
    try:
        _delivery_run(delivery, pages)
    except Exception:  # noqa: BLE001 -- recorded on its row (_delivery_run), re-driven
        logger.warning("delivery %s failed; the re-drive takes it again", delivery.pk)


def _group_run(group: list[tuple[WebhookDelivery, list[Event]]], pages: dict[str, Page]) -> None:
    """Apply a group of claimed deliveries together, or one at a time when that fails."""
    if not group:
        return
    try:
        recorded_before = _group_apply(group, pages)
    except Exception as exc:  # noqa: BLE001 -- any failure: the one-at-a-time path sorts it out
        logger.info(
            "deliveries %s are applied one event at a time (%s: %s)",
            [delivery.pk for delivery, _ in group],
            type(exc).__name__,
            exc,
        )
        for delivery, _ in group:
            _delivery_run_logged(delivery, pages)
        return
    waiting = {delivery.pk for delivery, _ in recorded_before}
    _lag_observe([delivery for delivery, _ in group if delivery.pk not in waiting])
    failed: dict[int, int] = {}
    for delivery, event in recorded_before:
        if not _event_apply(delivery, event, pages.get(event.page_id)):
            failed[delivery.pk] = failed.get(delivery.pk, 0) + 1
    _deliveries_finish(
        [delivery.pk for delivery, _ in recorded_before if delivery.pk not in failed]
    )
    for delivery_id, count in failed.items():
        _delivery_finish(delivery_id, failed=count)


def _group_apply(
    group: list[tuple[WebhookDelivery, list[Event]]], pages: dict[str, Page]
) -> list[tuple[WebhookDelivery, Event]]:
    """Apply the group's new events and record their keys, in one transaction, inside
    the prepare handler (a context manager: it locks the rows they will lock, in one
    order, and may keep what the events share). Returns the events whose key was
    recorded before (or twice in the group), not applied."""
    keyed = [
        (delivery, event, _storage_key(event)) for delivery, events in group for event in events
    ]
    recorded_before: list[tuple[WebhookDelivery, Event]] = []
    with transaction.atomic(), _group_prepare()(pages, [event for _, event, _ in keyed]):
        recorded = set(
            WebhookEvent.objects.filter(key__in={key for _, _, key in keyed}).values_list(
                "key", flat=True
            )
        )
        records = []
        for delivery, event, key in keyed:
            if key in recorded:
                recorded_before.append((delivery, event))
                continue
            recorded.add(key)
            outcome, note = _event_outcome(event, pages.get(event.page_id))
            records.append(
                WebhookEvent(key=key, outcome=outcome, note=note, **_record(delivery, event))
            )
        WebhookEvent.objects.bulk_create(records)
        outcomes = [(r.kind, r.outcome) for r in records]
        transaction.on_commit(lambda: _events_count(outcomes))
        # Finished with their events, in the same transaction; those with an event
        # recorded before are finished once it is applied alone (_group_run).
        waiting = {delivery.pk for delivery, _ in recorded_before}
        _deliveries_finish([delivery.pk for delivery, _ in group if delivery.pk not in waiting])
    return recorded_before


def _deliveries_finish(delivery_ids: list[int]) -> None:
    if delivery_ids:
        WebhookDelivery.objects.filter(pk__in=delivery_ids).update(
            status=WebhookDelivery.Status.PROCESSED,
            attempts=F("attempts") + 1,
            last_error="",
            processed_at=timezone.now(),
            running_since=None,
        )


def _events_apply(delivery: WebhookDelivery, pages: dict[str, Page]) -> tuple[bool, int]:
    """Apply the delivery's events from where the last chunk stopped. Returns whether
    it finished (not yielded to a continuation task), and how many events failed."""
    payload = json.loads(bytes(delivery.body))
    events = parse_delivery(payload, received_ms=_received_ms(delivery))
    deadline = time.monotonic() + settings.WEBHOOK_CHUNK_SECONDS
    failed = 0
    for index in range(delivery.events_done, len(events)):
        event = events[index]
        if not _event_apply(delivery, event, pages.get(event.page_id)):
            failed += 1
        if time.monotonic() > deadline and index + 1 < len(events):
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                events_done=index + 1, running_since=None, enqueued_at=timezone.now()
            )
            _enqueue_on_commit(delivery.pk)
            return False, failed
    return True, failed


def _delivery_finish(delivery_id: int, *, failed: int) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status=WebhookDelivery.Status.PARTIAL if failed else WebhookDelivery.Status.PROCESSED,
        attempts=F("attempts") + 1,
        last_error=f"{failed} event(s) failed; see the delivery's events" if failed else "",
        processed_at=timezone.now(),
        running_since=None,
    )


@cache
def _handler() -> EventHandler:
    handler: EventHandler = import_string(settings.MESSENGER_EVENT_HANDLER)
    return handler


GroupPrepare = Callable[[dict[str, Page], list[Event]], AbstractContextManager[object]]


@cache
def _group_prepare() -> GroupPrepare:
    prepare: GroupPrepare = import_string(settings.MESSENGER_GROUP_PREPARE_HANDLER)
    return prepare


def _record(delivery: WebhookDelivery, event: Event) -> dict[str, Any]:
    """The fields of an event's `WebhookEvent` row but its key, outcome and note."""
    return {
        "delivery": delivery,
        "kind": event.kind,
        "channel": event.channel[:16],
        "page_id": event.page_id,
        "psid": event.psid,
        "timestamp": event.timestamp,
        "payload": event.raw,
    }


def _storage_key(event: Event) -> str:
    key = event.key
    if len(key) <= KEY_MAX:
        return key
    return f"{key[:180]}~sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _transient(exc: OperationalError) -> bool:
    """A deadlock, a serialization failure or a busy SQLite file: trying again helps."""
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate in ("40P01", "40001") or "database is locked" in str(exc)


def _event_apply(delivery: WebhookDelivery, event: Event, page: Page | None) -> bool:
    """Apply one event in its own transaction; False when it failed (and was kept)."""
    key = _storage_key(event)
    error: Exception | None = None
    for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
        try:
            _event_claim_and_run(delivery, event, key, page)
            return True
        except OperationalError as exc:
            error = exc
            if not _transient(exc) or attempt == TRANSIENT_ATTEMPTS:
                break
            logger.info("event %s: %s; trying again at once", key, exc)
        except Exception as exc:  # noqa: BLE001 -- one poison event must not sink the others
            error = exc
            break
    assert error is not None
    _event_fail(delivery, event, key, error)
    return False


def _event_claim_and_run(
    delivery: WebhookDelivery, event: Event, key: str, page: Page | None
) -> None:
    """Record the event under its unique key and apply it, in one transaction; a key
    recorded before means a redelivery (nothing happens) or a failed event (taken again,
    locked, and applied).

    The record is the transaction's first statement: when its key is taken, the whole
    transaction rolls back with nothing else in it, so the common case (a new event)
    needs no savepoint around the INSERT.
    """
    recorded = False
    try:
        with transaction.atomic():
            record = WebhookEvent.objects.create(
                key=key, outcome=WebhookEvent.Outcome.IGNORED, **_record(delivery, event)
            )
            recorded = True
            _event_run(record, event, page)
        return
    except IntegrityError as exc:
        if recorded:
            raise  # the handler's own: a real error
        taken = exc
    with transaction.atomic():
        existing = event_lock_by_key(key)
        if existing is None:
            raise taken  # not the dedupe key: a real error
        if existing.outcome != WebhookEvent.Outcome.FAILED:
            return  # already applied: a redelivery
        existing.attempts += 1
        _event_run(existing, event, page)


def _event_outcome(event: Event, page: Page | None) -> tuple[str, str]:
    """Apply the event through the handler (if it is one to apply): its outcome and note."""
    if isinstance(event, InvalidEvent):
        outcome, note = WebhookEvent.Outcome.IGNORED, f"invalid: {event.problem}"
    elif event.kind == "unknown":
        outcome, note = WebhookEvent.Outcome.IGNORED, "unknown event kind"
    elif page is None:
        outcome, note = WebhookEvent.Outcome.IGNORED, "unknown page"
    else:
        outcome, note = WebhookEvent.Outcome.APPLIED, _handler()(page, event) or ""
    return outcome, "; ".join([note, *event.notes]).strip("; ")[:255]


def _event_run(record: WebhookEvent, event: Event, page: Page | None) -> None:
    record.outcome, record.note = _event_outcome(event, page)
    record.error = ""
    record.save(update_fields=["outcome", "note", "error", "attempts"])
    outcomes = [(record.kind, record.outcome)]
    transaction.on_commit(lambda: _events_count(outcomes))


def _event_fail(delivery: WebhookDelivery, event: Event, key: str, error: Exception) -> None:
    """Keep a failed event with its error, for an admin to see and `event_replay`.
    Raises when even that cannot be stored (the database is gone)."""
    logger.warning("event %s of delivery %s failed: %r", key, delivery.pk, error)
    reason = f"{type(error).__name__}: {error}"[:2000]
    with transaction.atomic():
        record, created = WebhookEvent.objects.get_or_create(
            key=key,
            defaults={
                **_record(delivery, event),
                "outcome": WebhookEvent.Outcome.FAILED,
                "note": "failed; see its error",
                "error": reason,
            },
        )
        if not created and record.outcome == WebhookEvent.Outcome.FAILED:
            record.outcome = WebhookEvent.Outcome.FAILED
            record.error = reason
            record.note = "failed; see its error"
            record.attempts += 1
            record.save(update_fields=["outcome", "error", "note", "attempts"])
        outcomes = [(record.kind, str(WebhookEvent.Outcome.FAILED))]
        transaction.on_commit(lambda: _events_count(outcomes))


def event_replay(*, event_id: int) -> bool:
    """Apply a failed event again (an admin asks, once the cause is fixed). Returns
    whether it is applied now; a delivery with no failed event left is processed."""
    record = WebhookEvent.objects.select_related("delivery").get(pk=event_id)
    if record.outcome != WebhookEvent.Outcome.FAILED:
        return False
    delivery = record.delivery
    event = parse_event(
        record.payload,
        page_id=record.page_id,
        channel=record.channel,
        entry_time=record.timestamp,
        received_ms=_received_ms(delivery),
    )
    page = Page.objects.filter(page_id=event.page_id).first()
    applied = _event_apply(delivery, event, page)
    if applied and delivery.status == WebhookDelivery.Status.PARTIAL:
        _delivery_finish_again(delivery.pk)
    return applied


def _delivery_finish_again(delivery_id: int) -> None:
    failed = WebhookEvent.objects.filter(
        delivery_id=delivery_id, outcome=WebhookEvent.Outcome.FAILED
    ).exists()
    if not failed:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=WebhookDelivery.Status.PROCESSED, last_error=""
        )


def deliveries_redrive() -> list[int]:
    """Enqueue deliveries stored but not processed (e.g. Redis was down at intake).

    Left alone: deliveries younger than REDRIVE_GRACE_SECONDS (their intake task is on
    its way), those queued or running less than REDRIVE_LEASE_SECONDS ago (one
    delivery is never queued many times), and those that failed WEBHOOK_MAX_ATTEMPTS
    times (for an admin).
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.REDRIVE_GRACE_SECONDS)
    lease = now - timedelta(seconds=settings.REDRIVE_LEASE_SECONDS)
    ids = list(
        WebhookDelivery.objects.filter(
            status__in=[WebhookDelivery.Status.RECEIVED, WebhookDelivery.Status.FAILED],
            attempts__lt=settings.WEBHOOK_MAX_ATTEMPTS,
            received_at__lte=cutoff,
        )
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=lease))
        .filter(Q(running_since__isnull=True) | Q(running_since__lte=lease))
        .order_by("received_at")
        .values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    WebhookDelivery.objects.filter(pk__in=ids).update(enqueued_at=now)
    for delivery_id in ids:
        enqueue(tasks.delivery_process, delivery_id)
    return ids


def page_connect(
    *,
    page_id: str,
    access_token: str,
    bot_app_id: str,
    name: str,
    human_agent_enabled: bool = False,
    conversation_routing: bool = True,
    control_mode: str = ControlMode.AUTO,
    handback: str = Handback.PASS,
    handback_notice: str = "",
    control_extend_max_hours: int = 72,
) -> tuple[Page, bool]:
    """Register a Page or update it in place; idempotent. Raises ValueError on bad input
    (the first of `page_connect_refusals`). `manage.py connect_page` and the Page admin
    both connect pages through here."""
    refusals = page_connect_refusals(
        page_id=page_id, access_token=access_token, bot_app_id=bot_app_id, name=name
    )
    if control_mode not in ControlMode.values:
        refusals["control_mode"] = (
            f"The control mode must be one of {', '.join(ControlMode.values)}."
        )
    if handback not in Handback.values:
        refusals["handback"] = f"The hand-back must be one of {', '.join(Handback.values)}."
    if not 0 <= control_extend_max_hours <= 168:
        refusals["control_extend_max_hours"] = "Control can be kept for 0 to 168 hours."
    if len(handback_notice.strip()) > 640:
        refusals["handback_notice"] = "The hand-back notice is longer than 640 characters."
    if refusals:
        raise ValueError(next(iter(refusals.values())))
    with transaction.atomic():
        previous = (
            Page.objects.filter(page_id=page_id).values_list("access_token", flat=True).first()
        )
        page, created = Page.objects.update_or_create(
            page_id=page_id,
            defaults={
                "access_token": access_token.strip(),
                "bot_app_id": bot_app_id,
                "name": name.strip(),
                "human_agent_enabled": human_agent_enabled,
                "conversation_routing": conversation_routing,
                "control_mode": control_mode,
                "handback": handback,
                "handback_notice": handback_notice.strip(),
                "control_extend_max_hours": control_extend_max_hours,
            },
        )
        token = access_token.strip()
        new_token = previous is not None and token not in (previous, token_unseal(previous))
        if new_token and page.outbox_paused_code == "token":
            # A new token: sending resumes (the page's hook sends what waits).
            Page.objects.filter(pk=page.pk).update(
                outbox_paused_reason="", outbox_paused_code="", outbox_paused_at=None
            )
            page.refresh_from_db()
        _page_connected_hook(page.pk)
    return page, created


def page_connect_refusals(
    *, page_id: str, access_token: str, bot_app_id: str, name: str
) -> dict[str, str]:
    """Why `page_connect` would refuse these values, by argument name (in the order it
    checks them); empty when it would connect the page."""
    refusals: dict[str, str] = {}
    for field, label, value in (
        ("page_id", "page id", page_id),
        ("bot_app_id", "bot app id", bot_app_id),
    ):
        if not (value.isascii() and value.isdigit()):
            refusals[field] = f"The {label} must be numeric, not {value!r}."
    if not access_token.strip():
        refusals["access_token"] = "The Page access token is empty."
    if not name.strip():
        refusals["name"] = "The page name is empty."
    if bot_app_id == settings.MESSENGER_APP_ID:
        refusals["bot_app_id"] = (
            "The bot's app id is this helpdesk's own app id (MESSENGER_APP_ID)."
        )
    return refusals


def _page_connected_hook(page_pk: int) -> None:
    """Lets the helpdesk side add its defaults (trigger list), in the same transaction."""
    hook = getattr(settings, "MESSENGER_PAGE_CONNECTED_HANDLER", "")
    if hook:
        import_string(hook)(page_pk)


def page_csat_set(
    *, page_pk: int, enabled: bool, question: str, thanks: str, wait_minutes: int
) -> Page:
    """The page's rating settings (CSAT before hand-back, issue 11 point 9). Raises
    ValueError in words, changing nothing, on an empty question, a text longer than
    Messenger's 640 characters, or a wait outside 1 minute to 24 hours."""
    question, thanks = question.strip(), thanks.strip()
    if not question:
        raise ValueError("The rating question is empty.")
    for label, text in (("rating question", question), ("thank-you message", thanks)):
        if len(text) > 640:
            raise ValueError(f"The {label} is longer than 640 characters.")
    if not 1 <= wait_minutes <= CSAT_WAIT_MAX_MINUTES:
        raise ValueError("The wait for the rating must be 1 minute to 24 hours (1440 minutes).")
    Page.objects.filter(pk=page_pk).update(
        csat_enabled=enabled,
        csat_question=question,
        csat_thanks=thanks,
        csat_wait_minutes=wait_minutes,
    )
    return Page.objects.get(pk=page_pk)
