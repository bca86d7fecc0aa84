"""The webhook endpoint: verification, signature, size, storage, idempotent processing,
and the number of queries processing costs."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.test import Client

from agents.models import Conversation, Message, Ticket
from agents.services import inbound
from tests.support import payloads
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEvent

URL = "/webhooks/messenger/"


def _post(client, body: bytes, signature: str | None = None, **extra):
    headers = {}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post(URL, body, content_type="application/json", headers=headers, **extra)


# --- GET verification -----------------------------------------------------------


def test_verification_echoes_the_challenge(client):
    response = client.get(
        URL,
        {
            "hub.mode": "subscribe",
            "hub.verify_token": "test-verify-token",
            "hub.challenge": "CHALLENGE_ACCEPTED",
        },
    )
    assert response.status_code == 200
    assert response.content == b"CHALLENGE_ACCEPTED"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
)
def test_verification_with_wrong_token_or_mode_is_403(client, params):
    response = client.get(URL, params)
    assert response.status_code == 403
    assert b"1" not in response.content


# --- POST: refusals store nothing ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "signature",
    [
        None,
        "sha256=" + "0" * 64,
        "sha1=abc",
        payloads.signature(b"other body"),
        payloads.signature(b"x", secret="not-the-secret"),
        "sha256=" + "é" * 64,  # not ASCII: compare_digest used to raise TypeError (500)
    ],
)
def test_missing_or_wrong_signature_is_403_and_stores_nothing(
    client, signature, django_capture_on_commit_callbacks
):
    body = payloads.body_bytes(payloads.delivery(payloads.user_message("hi", ts=1)))
    with django_capture_on_commit_callbacks() as enqueued:
        response = _post(client, body, signature)
    assert response.status_code == 403
    assert WebhookDelivery.objects.count() == 0
    assert enqueued == []  # nothing to process after commit


@pytest.mark.django_db
def test_signature_is_checked_over_the_raw_escaped_bytes(client, page, deliver, clock):
    # Meta sends non-ASCII escaped; the HMAC is over those bytes, not re-serialized JSON.
    event = payloads.user_message("äöå ✓", ts=clock())
    body = json.dumps(payloads.delivery(event, channel="standby")).encode()
    assert b"\\u00e4" in body
    response = _post(client, body, payloads.signature(body))
    assert response.status_code == 200
    reencoded = json.dumps(json.loads(body), ensure_ascii=False).encode()
    assert _post(client, reencoded, payloads.signature(body)).status_code == 403


@pytest.mark.django_db
def test_oversized_body_is_413_and_stores_nothing(client, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    body = payloads.body_bytes(payloads.delivery(payloads.user_message("x" * 200, ts=1)))
    response = _post(client, body, payloads.signature(body))
    assert response.status_code == 413
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b"\xff\xfe", b"", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"],
    ids=["not-json", "not-an-object", "not-utf8", "empty", "nested-5000-deep"],
)
def test_malformed_json_with_good_signature_is_400_and_stores_nothing(client, body):
    response = _post(client, body, payloads.signature(body))
    assert response.status_code == 400
    assert WebhookDelivery.objects.count() == 0


# --- POST: accepted deliveries ---------------------------------------------------


@pytest.mark.django_db
def test_delivery_is_stored_then_processing_enqueued_after_commit(
    client, page, clock, django_capture_on_commit_callbacks
):
    body = payloads.body_bytes(
        payloads.delivery(payloads.user_message("hi", ts=clock()), channel="standby")
    )
    with mock.patch("webhooks.tasks.deliveries_process.delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = _post(client, body, payloads.signature(body))
        assert response.status_code == 200
        assert response.content == b"EVENT_RECEIVED"
        delivery = WebhookDelivery.objects.get()
        assert bytes(delivery.body) == body
        assert delivery.status == WebhookDelivery.Status.RECEIVED
        delay.assert_not_called()  # not inside the transaction
        for callback in callbacks:
            callback()
    delay.assert_called_once_with([delivery.pk])  # one task per group


@pytest.mark.django_db
def test_delivery_is_kept_when_the_broker_is_down(
    client, page, clock, django_capture_on_commit_callbacks
):
    body = payloads.body_bytes(
        payloads.delivery(payloads.user_message("hi", ts=clock()), channel="standby")
    )
    with (
        mock.patch(
            "webhooks.tasks.deliveries_process.delay", side_effect=ConnectionError("redis down")
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = _post(client, body, payloads.signature(body))
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.RECEIVED
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_redrive_processes_deliveries_that_were_never_processed(
    client, page, clock, settings, django_capture_on_commit_callbacks
):
    settings.REDRIVE_GRACE_SECONDS = 0
    body = payloads.body_bytes(
        payloads.delivery(payloads.user_message("hi", ts=clock()), channel="standby")
    )
    with (
        mock.patch("webhooks.tasks.deliveries_process.delay", side_effect=OSError),
        django_capture_on_commit_callbacks(execute=True),
    ):
        _post(client, body, payloads.signature(body))
    assert Message.objects.count() == 0

    redriven = services.deliveries_redrive()  # tasks run eagerly in tests

    delivery = WebhookDelivery.objects.get()
    assert redriven == [delivery.pk]
    assert delivery.status == WebhookDelivery.Status.PROCESSED
    assert Message.objects.get().text == "hi"
    assert services.deliveries_redrive() == []  # processed: not again


@pytest.mark.django_db
def test_redrive_leaves_young_and_exhausted_deliveries(client, page, clock, settings):
    settings.REDRIVE_GRACE_SECONDS = 3600
    young = WebhookDelivery.objects.create(body=b"{}", digest="a" * 64)
    assert services.deliveries_redrive() == []
    settings.REDRIVE_GRACE_SECONDS = 0
    WebhookDelivery.objects.create(
        body=b"{}",
        digest="b" * 64,
        status=WebhookDelivery.Status.FAILED,
        attempts=settings.WEBHOOK_MAX_ATTEMPTS,
    )
    with mock.patch("webhooks.tasks.delivery_process.delay") as delay:
        assert services.deliveries_redrive() == [young.pk]
    delay.assert_called_once_with(young.pk)


@pytest.mark.django_db
def test_redelivered_batch_changes_nothing(page, deliver, clock, fake_graph):
    events = [
        payloads.user_message("hello", ts=clock()),
        payloads.echo("Hi! I'm the bot.", ts=clock()),
        payloads.pass_control(ts=clock(), metadata="billing"),
    ]
    deliver(*events[:2], channel="standby")
    deliver(events[2])
    counts = (
        Message.objects.count(),
        Ticket.objects.count(),
        WebhookEvent.objects.count(),
        len(fake_graph.calls),
    )

    deliver(*events[:2], channel="standby")  # the same bytes again
    deliver(events[2])
    # a redelivery with different bytes (batched differently) but the same events
    deliver(events[2], events[0], channel="messaging")

    assert (
        Message.objects.count(),
        Ticket.objects.count(),
        WebhookEvent.objects.count(),
        len(fake_graph.calls),
    ) == counts
    assert counts[:3] == (3, 1, 3)  # 2 messages + 1 system message; one ticket
    assert WebhookDelivery.objects.count() == 3


@pytest.mark.django_db
def test_unknown_event_kinds_and_unknown_pages_are_stored_and_ignored(client, page, clock):
    reaction = {
        "sender": {"id": payloads.PSID},
        "recipient": {"id": payloads.PAGE_ID},
        "timestamp": clock(),
        "reaction": {"reaction": "love", "emoji": "❤", "action": "react", "mid": "m_1"},
    }
    other_page = payloads.delivery(payloads.user_message("hi", ts=clock()), page_id="999999999")
    for payload in (
        payloads.delivery(reaction),
        other_page,
        {"object": "instagram", "entry": []},
        {
            "object": "page",
            "entry": [{"id": payloads.PAGE_ID, "time": 1, "changes": [{"field": "feed"}]}],
        },
    ):
        body = payloads.body_bytes(payload)
        response = Client().post(
            URL,
            body,
            content_type="application/json",
            headers={"X-Hub-Signature-256": payloads.signature(body)},
        )
        assert response.status_code == 200
    for delivery in WebhookDelivery.objects.all():
        services.delivery_process(delivery_id=delivery.pk)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"processed"}
    assert Message.objects.count() == 0
    assert Conversation.objects.count() == 0
    notes = sorted(WebhookEvent.objects.values_list("outcome", "note"))
    assert notes == [("ignored", "unknown event kind")] * 3 + [("ignored", "unknown page")]


@pytest.mark.django_db
def test_a_failing_event_is_kept_failed_and_its_neighbours_are_applied(page, clock):
    payload = payloads.delivery(
        payloads.user_message("one", ts=clock()),
        payloads.user_message("two", ts=clock()),
        payloads.user_message("three", ts=clock()),
        channel="standby",
    )
    delivery = services.delivery_receive(body=payloads.body_bytes(payload))
    calls = []

    def flaky(page, event):
        calls.append(event)
        if len(calls) == 2:
            raise RuntimeError("a bug in the handler")
        return inbound.messenger_event_handle(page, event)

    services._handler.cache_clear()
    try:
        with mock.patch("django.conf.settings.MESSENGER_EVENT_HANDLER", f"{__name__}._flaky"):
            globals()["_flaky"] = flaky
            assert services.delivery_process(delivery_id=delivery.pk) is True
    finally:
        services._handler.cache_clear()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PARTIAL
    assert delivery.attempts == 1
    assert delivery.last_error == "1 event(s) failed; see the delivery's events"
    assert list(Message.objects.order_by("timestamp").values_list("text", flat=True)) == [
        "one",
        "three",
    ]
    failed = WebhookEvent.objects.get(outcome=WebhookEvent.Outcome.FAILED)
    assert (failed.error, failed.note) == (
        "RuntimeError: a bug in the handler",
        "failed; see its error",
    )
    assert failed.payload["message"]["text"] == "two"
    # Processing again changes nothing; replaying the failed event applies it.
    assert services.delivery_process(delivery_id=delivery.pk) is False
    assert Message.objects.count() == 2
    assert services.event_replay(event_id=failed.pk) is True
    assert sorted(Message.objects.values_list("text", flat=True)) == ["one", "three", "two"]
    failed.refresh_from_db()
    assert (failed.outcome, failed.attempts, failed.error) == ("applied", 2, "")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (WebhookDelivery.Status.PROCESSED, "")
    assert services.event_replay(event_id=failed.pk) is False  # nothing left to replay
