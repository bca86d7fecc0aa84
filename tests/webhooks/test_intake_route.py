"""The webhook's lean route on Daphne (webhooks.intake): the same answers as the Django
view, a delivery committed before its 200, and concurrent deliveries stored together in
one transaction with one task enqueued per group."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from typing import Any
from unittest import mock

import pytest
from channels.testing import HttpCommunicator
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from helpdesk.asgi import application
from tests.support import payloads
from webhooks import intake, intake_writer, services
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def writer() -> Any:
    yield intake.writer
    intake.writer.stop()  # its connection closed: the test database can go


@pytest.fixture
def delay() -> Any:
    with mock.patch("webhooks.tasks.deliveries_process.delay") as delay:
        yield delay


def _body(text: str, ts: int = payloads.T0) -> bytes:
    return payloads.body_bytes(
        payloads.delivery(payloads.user_message(text, ts=ts, mid=f"m_{text}"), channel="standby")
    )


def _post(body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    if headers is None:
        headers = [(b"x-hub-signature-256", payloads.signature(body).encode())]
    communicator = HttpCommunicator(
        application,
        "POST",
        intake.PATH,
        body=body,
        headers=[(b"content-type", b"application/json"), *headers],
    )
    return asyncio.run(communicator.get_response(timeout=30))


async def _post_many(bodies: list[bytes]) -> list[dict[str, Any]]:
    return await asyncio.gather(
        *(
            HttpCommunicator(
                application, "POST", intake.PATH, body=body,
                headers=[(b"x-hub-signature-256", payloads.signature(body).encode())],
            ).get_response(timeout=30)
            for body in bodies
        )
    )  # fmt: skip


def test_a_signed_delivery_is_committed_then_answered_and_enqueued_once(delay):
    body = _body("hello")
    response = _post(body)
    assert (response["status"], response["body"]) == (200, b"EVENT_RECEIVED")
    delivery = WebhookDelivery.objects.get()
    assert bytes(delivery.body) == body
    assert delivery.digest == hashlib.sha256(body).hexdigest()
    assert delivery.status == WebhookDelivery.Status.RECEIVED
    assert delivery.enqueued_at is not None
    delay.assert_called_once_with([delivery.pk])


ZEROS = b"sha256=" + b"0" * 64


@pytest.mark.parametrize(
    ("body", "headers", "status", "text"),
    [
        (b'{"object":"page"}', [(b"x-hub-signature-256", ZEROS)], 403, b"invalid signature"),
        (b'{"object":"page"}', [], 403, b"invalid signature"),
        (b"[1, 2]", None, 400, b"the body is not a JSON object"),
        (b"not json", None, 400, b"the body is not valid JSON"),
        (b"{}", [(b"content-length", b"abc")], 400, b"bad Content-Length"),
        (b"{}", [(b"content-length", b"%d" % (10**9))], 413, b"payload too large"),
    ],
)  # fmt: skip
def test_a_refused_delivery_stores_nothing_and_says_why(body, headers, status, text, delay):
    if headers is None:
        headers = [(b"x-hub-signature-256", payloads.signature(body).encode())]
    response = _post(body, headers)
    assert (response["status"], response["body"]) == (status, text)
    assert WebhookDelivery.objects.count() == 0
    delay.assert_not_called()


def test_a_body_over_the_limit_is_refused_while_it_streams(settings, delay):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    sent: list[dict[str, Any]] = []
    parts = [
        {"type": "http.request", "body": b"{" + b" " * 600, "more_body": True},
        {"type": "http.request", "body": b" " * 600 + b"}", "more_body": False},
    ]

    async def receive() -> dict[str, Any]:
        return parts.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": intake.PATH, "method": "POST", "headers": []}
    asyncio.run(intake.webhook(scope, receive, send))
    assert sent[0]["status"] == 413
    assert sent[1]["body"] == b"payload too large"
    assert parts == [], (
        "the whole body was read before refusing"
    )  # it was: the 2nd part made it too large
    assert WebhookDelivery.objects.count() == 0
    delay.assert_not_called()


def test_concurrent_deliveries_are_stored_in_one_transaction_and_enqueued_once(delay):
    busy, release = threading.Event(), threading.Event()
    calls: list[list[bytes]] = []
    store = services.deliveries_store

    def held(bodies: list[bytes]) -> list[int]:
        calls.append(list(bodies))
        if len(calls) == 1:
            busy.set()
            assert release.wait(30)
        return store(bodies)

    first = _body("first")
    others = [_body(f"other{n}") for n in range(20)]

    async def scenario() -> list[dict[str, Any]]:
        answer = asyncio.ensure_future(_post_many([first]))
        await asyncio.get_running_loop().run_in_executor(None, busy.wait, 30)
        rest = asyncio.ensure_future(_post_many(others))
        # All 20 wait for the writer, which is busy committing the first.
        for _ in range(3000):
            if intake.writer._items.qsize() == 20:
                break
            await asyncio.sleep(0.01)
        assert intake.writer._items.qsize() == 20
        release.set()
        return [*(await answer), *(await rest)]

    with mock.patch.object(services, "deliveries_store", held):
        answers = asyncio.run(scenario())
    assert [(a["status"], a["body"]) for a in answers] == [(200, b"EVENT_RECEIVED")] * 21
    assert [len(group) for group in calls] == [1, 20]
    assert sorted(calls[1]) == sorted(others)
    ids = {bytes(d.body): d.pk for d in WebhookDelivery.objects.all()}
    assert len(ids) == 21
    assert [sorted(c.args[0]) for c in delay.call_args_list] == [
        [ids[first]],
        sorted(ids[body] for body in others),
    ]


def test_a_group_is_one_insert(delay):
    bodies = [_body(f"g{n}") for n in range(20)]
    with CaptureQueriesContext(connection) as queries:
        ids = services.deliveries_store(bodies)
    inserts = [q["sql"] for q in queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    assert ids == [
        WebhookDelivery.objects.get(digest=hashlib.sha256(body).hexdigest()).pk for body in bodies
    ]


def test_a_redelivered_body_is_stored_and_enqueued_once(delay):
    body = _body("again")
    answers = asyncio.run(_post_many([body, body]))
    assert [a["status"] for a in answers] == [200, 200]
    assert _post(body)["status"] == 200
    delivery = WebhookDelivery.objects.get()
    assert [c.args[0] for c in delay.call_args_list] == [[delivery.pk]]


def test_a_database_that_fails_twice_gets_a_503_and_nothing_is_kept(delay):
    with mock.patch.object(
        services,
        "deliveries_store",
        side_effect=OperationalError("the server closed the connection"),
    ) as store:
        response = _post(_body("lost"))
    assert (response["status"], response["body"]) == (
        503, b"could not store the delivery; send it again"
    )  # fmt: skip
    assert store.call_count == 2  # once more on a fresh connection
    assert WebhookDelivery.objects.count() == 0
    delay.assert_not_called()
    # The writer goes on: Meta's next attempt is stored.
    assert _post(_body("lost"))["status"] == 200
    assert WebhookDelivery.objects.count() == 1


def test_a_database_that_fails_once_is_tried_again_on_a_fresh_connection(delay):
    store = services.deliveries_store
    failures = [OperationalError("the server closed the connection")]

    def flaky(bodies: list[bytes]) -> list[int]:
        if failures:
            raise failures.pop()
        return store(bodies)

    with mock.patch.object(services, "deliveries_store", flaky):
        response = _post(_body("kept"))
    assert response["status"] == 200
    assert WebhookDelivery.objects.count() == 1
    delay.assert_called_once()


def test_verification_and_other_methods_stay_with_django():
    communicator = HttpCommunicator(
        application,
        "GET",
        intake.PATH + "?hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=42",
        headers=[(b"host", b"testserver")],
    )
    response = asyncio.run(communicator.get_response(timeout=30))
    assert (response["status"], response["body"]) == (200, b"42")
    put = asyncio.run(
        HttpCommunicator(
            application, "PUT", intake.PATH, headers=[(b"host", b"testserver")]
        ).get_response(timeout=30)
    )
    assert put["status"] == 405
    assert WebhookDelivery.objects.count() == 0


# --- The writer process's side (webhooks.intake_writer), in this process ----------------


def _frame(body: bytes) -> bytes:
    return intake.FRAME.pack(len(body)) + body


def _lines(connection: socket.socket, count: int) -> list[str]:
    received = b""
    while received.count(b"\n") < count:
        chunk = connection.recv(4096)
        assert chunk, "the writer ended before it answered"
        received += chunk
    return received.decode().splitlines()


def test_the_writer_stores_what_it_reads_in_one_group_and_answers_its_count(delay):
    ours, theirs = socket.socketpair()
    serving = threading.Thread(target=intake_writer.serve, args=(theirs,))
    bodies = [_body(f"framed {n}") for n in range(3)]
    stream = b"".join(_frame(body) for body in bodies)
    ours.sendall(stream[:10])  # a frame cut in two: nothing is stored until it is whole
    serving.start()
    time.sleep(0.2)
    assert WebhookDelivery.objects.count() == 0
    ours.sendall(stream[10:])
    assert _lines(ours, 1) == ["ok 3"]
    stored = [
        bytes(body)
        for body in WebhookDelivery.objects.order_by("pk").values_list("body", flat=True)
    ]
    assert stored == bodies
    delay.assert_called_once()
    ours.close()  # Daphne's end closes: the writer ends
    serving.join(timeout=10)
    assert not serving.is_alive()


def test_the_writer_answers_err_with_the_reason_when_the_database_refuses(delay):
    ours, theirs = socket.socketpair()
    serving = threading.Thread(target=intake_writer.serve, args=(theirs,))
    serving.start()
    with mock.patch.object(
        services, "deliveries_store", side_effect=OperationalError("disk I/O error")
    ):
        ours.sendall(_frame(_body("refused")))
        assert _lines(ours, 1) == ["err 1 OperationalError: disk I/O error"]
    ours.sendall(_frame(_body("taken")))
    assert _lines(ours, 1) == ["ok 1"]
    ours.close()
    serving.join(timeout=10)
    assert [bytes(b) for b in WebhookDelivery.objects.values_list("body", flat=True)] == [
        _body("taken")
    ]


def test_a_writer_process_that_cannot_start_is_not_started_again_for_every_request(
    monkeypatch,
):
    """A writer that ends at once (here: an interpreter that is `false`) fails its
    request with StoreFailed (a 503); within RESTART_SECONDS of its start the next
    request is refused without starting another process; after that, one is started."""
    started: list[list[str]] = []
    popen = intake.subprocess.Popen

    def recording(args: list[str], **kwargs: Any) -> Any:
        started.append(args)
        return popen(["/bin/false"], **kwargs)

    monkeypatch.setattr(intake.subprocess, "Popen", recording)
    monkeypatch.setattr(intake, "RESTART_SECONDS", 0.5)
    writer = intake.WriterProcess()

    async def attempt() -> str:
        try:
            await writer.store(_body("held"))
        except intake.StoreFailed as exc:
            return str(exc)
        return "stored"

    async def scenario() -> list[str]:
        outcomes = [await attempt(), await attempt()]
        await asyncio.sleep(0.6)
        return [*outcomes, await attempt()]

    try:
        outcomes = asyncio.run(scenario())
    finally:
        writer.stop()
    assert outcomes == [
        "the writer process ended",
        "the writer process ended; starting another shortly",
        "the writer process ended",
    ]
    assert [args[1:3] for args in started] == [["-m", "webhooks.intake_writer"]] * 2
