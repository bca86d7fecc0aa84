"""Processing deliveries under load and faults: one queued run per delivery, the
attempt cap, large deliveries in chunks, deadlocks retried at once, and intake that
never waits on a hung broker."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from agents.models import Message
from agents.services import inbound
from tests.support import payloads
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.queue import publisher

pytestmark = pytest.mark.django_db


def _stored(*events: dict[str, Any], **fields: Any) -> WebhookDelivery:
    body = payloads.body_bytes(payloads.delivery(*events, channel="standby"))
    delivery = services.delivery_receive(body=body)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    delivery.refresh_from_db()
    return delivery


# --- the re-drive queues a delivery once, and stops at the cap -----------------------


def test_the_redrive_leaves_deliveries_queued_or_running_within_the_lease(page, clock, settings):
    settings.REDRIVE_GRACE_SECONDS = 0
    settings.REDRIVE_LEASE_SECONDS = 300
    old = timezone.now() - timedelta(seconds=600)
    queued = _stored(payloads.user_message("a", ts=clock()), enqueued_at=timezone.now())
    running = _stored(
        payloads.user_message("b", ts=clock()), enqueued_at=old, running_since=timezone.now()
    )
    lost = _stored(payloads.user_message("c", ts=clock()), enqueued_at=old)
    unqueued = _stored(payloads.user_message("d", ts=clock()), enqueued_at=None)
    with mock.patch("webhooks.tasks.delivery_process.delay") as delay:
        assert services.deliveries_redrive() == [lost.pk, unqueued.pk]
        # Queued now: the next re-drive, 30 s later, does not queue them again.
        assert services.deliveries_redrive() == []
    assert [c.args for c in delay.call_args_list] == [(lost.pk,), (unqueued.pk,)]
    assert {queued.pk, running.pk}.isdisjoint(c.args[0] for c in delay.call_args_list)


def test_a_broker_refusal_at_intake_leaves_the_delivery_for_an_early_redrive(
    client, page, clock, django_capture_on_commit_callbacks
):
    body = payloads.body_bytes(
        payloads.delivery(payloads.user_message("hi", ts=clock()), channel="standby")
    )
    with (
        mock.patch("webhooks.tasks.deliveries_process.delay", side_effect=ConnectionError),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            "/webhooks/messenger/",
            body,
            content_type="application/json",
            headers={"X-Hub-Signature-256": payloads.signature(body)},
        )
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().enqueued_at is None


def test_a_delivery_that_failed_max_attempts_times_is_not_processed_again(page, clock, settings):
    delivery = _stored(
        payloads.user_message("hi", ts=clock()),
        status=WebhookDelivery.Status.FAILED,
        attempts=settings.WEBHOOK_MAX_ATTEMPTS,
    )
    # A copy still in the queue runs: it must not try an eleventh time.
    assert services.delivery_process(delivery_id=delivery.pk) is False
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", settings.WEBHOOK_MAX_ATTEMPTS)
    assert Message.objects.count() == 0


def test_a_delivery_another_worker_is_processing_is_left_to_it(page, clock):
    delivery = _stored(payloads.user_message("hi", ts=clock()), running_since=timezone.now())
    assert services.delivery_process(delivery_id=delivery.pk) is False
    assert WebhookEvent.objects.count() == 0


# --- large deliveries go in chunks -------------------------------------------------


def test_a_large_delivery_is_processed_in_chunks_by_successive_tasks(
    page, clock, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_CHUNK_SECONDS = 0  # yield after every event
    delivery = _stored(*(payloads.user_message(f"m{n}", ts=clock()) for n in range(4)))
    with django_capture_on_commit_callbacks(execute=True) as scheduled:
        assert services.delivery_process(delivery_id=delivery.pk) is True
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PROCESSED
    assert delivery.events_done == 3  # the last chunk started at the fourth event
    assert delivery.attempts == 1  # chunks are not retries
    assert sorted(Message.objects.values_list("text", flat=True)) == ["m0", "m1", "m2", "m3"]
    assert len(scheduled) >= 3  # three continuations were queued


# --- deadlocks are retried at once ---------------------------------------------------


def _deadlock() -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("deadlock detected")
    return error


def test_a_deadlock_is_retried_at_once_and_the_event_applied(page, clock):
    delivery = _stored(payloads.user_message("hi", ts=clock()))
    calls = []

    def once_deadlocked(page, event):
        calls.append(event)
        if len(calls) == 1:
            raise _deadlock()
        return inbound.messenger_event_handle(page, event)

    with mock.patch("webhooks.services._handler", return_value=once_deadlocked):
        assert services.delivery_process(delivery_id=delivery.pk) is True
    assert len(calls) == 2
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.APPLIED
    assert Message.objects.get().text == "hi"


def test_a_lasting_deadlock_fails_the_event_not_the_delivery(page, clock):
    delivery = _stored(
        payloads.user_message("a", ts=clock()), payloads.user_message("b", ts=clock())
    )

    def handler(page, event):
        if event.text == "a":
            raise _deadlock()
        return inbound.messenger_event_handle(page, event)

    with mock.patch("webhooks.services._handler", return_value=handler):
        services.delivery_process(delivery_id=delivery.pk)
    failed = WebhookEvent.objects.get(outcome="failed")
    assert (failed.attempts, failed.error) == (1, "OperationalError: deadlock detected")
    assert list(Message.objects.values_list("text", flat=True)) == ["b"]


# --- nothing on the acknowledgement path waits on the broker -------------------------


@pytest.mark.django_db(transaction=True)
def test_intake_answers_while_the_broker_hangs(page, clock, settings):
    settings.SIDE_EFFECTS_IN_BACKGROUND = True
    release, publishing = threading.Event(), threading.Event()

    def hung_broker(*args: Any) -> None:
        publishing.set()
        release.wait(30)

    body = payloads.body_bytes(
        payloads.delivery(payloads.user_message("hi", ts=clock()), channel="standby")
    )
    answers: list[int] = []

    def post() -> None:
        response = Client().post(
            "/webhooks/messenger/",
            body,
            content_type="application/json",
            headers={"X-Hub-Signature-256": payloads.signature(body)},
        )
        answers.append(response.status_code)

    with mock.patch("webhooks.tasks.deliveries_process.delay", side_effect=hung_broker):
        request = threading.Thread(target=post)
        request.start()
        request.join(30)
        try:
            assert answers == [200]
            assert publishing.wait(30), "the task was never published"
            assert not release.is_set()  # the answer came while the broker still hung
        finally:
            release.set()


def test_the_background_publisher_runs_jobs_in_order_and_survives_a_failing_one(settings):
    settings.SIDE_EFFECTS_IN_BACKGROUND = True
    done: list[str] = []
    finished = threading.Event()

    def fail() -> None:
        raise RuntimeError("broken job")

    publisher.submit(lambda: done.append("first"))
    publisher.submit(fail)
    publisher.submit(lambda: done.append("third"))
    publisher.submit(finished.set)
    assert finished.wait(30)
    assert done == ["first", "third"]


# --- concurrent deliveries on PostgreSQL --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_for_one_page_all_apply_without_deadlock(page, clock):
    """Four workers apply 60 deliveries of new users and known ones of one page:
    messages, echoes and handovers. A new contact's insert takes a key-share lock on
    its page; when a conversation's lock also locked the page (FOR UPDATE), the two
    deadlocked (1.75 % of such deliveries)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks and deadlocks are PostgreSQL's")
    deliveries = []
    for n in range(60):
        psid = f"900000000000{n % 40:04d}"  # 40 users: most are new to the helpdesk
        events = [
            payloads.user_message(f"m{n}", ts=clock(), psid=psid),
            payloads.echo(f"e{n}", ts=clock(), psid=psid),
        ]
        if n % 10 == 0:
            events.append(payloads.pass_control(ts=clock(), psid=psid))
        body = payloads.body_bytes(payloads.delivery(*events, channel="standby"))
        stored = WebhookDelivery.objects.create(body=body, digest=hashlib.sha256(body).hexdigest())
        deliveries.append(stored.pk)
    errors: list[BaseException] = []

    def worker(ids: list[int]) -> None:
        try:
            for delivery_id in ids:
                services.delivery_process(delivery_id=delivery_id)
        except BaseException as exc:  # noqa: BLE001 -- reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(deliveries[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"processed"}
    assert WebhookEvent.objects.filter(outcome="failed").count() == 0
    assert Message.objects.filter(author_kind="customer").count() == 60
    assert Message.objects.filter(author_kind="bot").count() == 60
