"""Property-based fuzzing of the webhook path (Hypothesis, seeded: see tests/fuzz/budget.py).

1. The parser (`parse_delivery`) never raises on any JSON value, and
   every event it returns can be stored as it is: its `raw` is JSON without NaN, no
   string (key or value) holds NUL or a lone surrogate, integers fit 64 bits, and its
   ids, mid, channel and key fit their columns.
2. The endpoint, fed signed bodies shaped like Meta's deliveries with hostile values
   mixed in (huge and non-finite numbers, NUL, surrogates, long strings, deep nesting,
   wrong types), never answers 5xx; processing never fails the delivery, every valid
   user message in it is applied with its text stored, and every event is recorded
   exactly once.

Hand-written poison inputs, each with its expected note, are in
tests/webhooks/test_poison.py; these tests look for the ones nobody wrote down.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from django.db import transaction
from hypothesis import event, given, settings
from hypothesis import strategies as st

from agents.models import Message
from tests.fuzz import strategies
from tests.fuzz.budget import DB_HEALTH_CHECKS, examples
from tests.fuzz.strategies import DECODABLE_DEPTH, UNSTORABLE, Body
from tests.support import payloads
from webhooks import services
from webhooks.events import Event
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.parsing import parse_delivery

URL = "/webhooks/messenger/"
INT64 = range(-(2**63), 2**63)
# The columns a parsed event's fields end up in (WebhookEvent, Message, Conversation).
COLUMN_MAX = {
    "page_id": 64,
    "psid": 64,
    "app_id": 64,
    "previous_owner_app_id": 64,
    "new_owner_app_id": 64,
    "requested_owner_app_id": 64,
    "mid": 255,
    "channel": 16,
    "quick_reply_payload": 1000,
    "title": 200,  # a postback's title is Message.postback_title
}


def _unstorable(value: Any, where: str = "") -> list[str]:
    """What in a decoded JSON value no database column takes, with where it is."""
    if isinstance(value, str):
        return [f"{where}: {value[:40]!r}"] if UNSTORABLE.search(value) else []
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int):
        return [] if value in INT64 else [f"{where}: integer {value}"]
    if isinstance(value, float):
        return [] if math.isfinite(value) else [f"{where}: {value}"]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found += _unstorable(key, f"{where}/key") + _unstorable(item, f"{where}/{key!r:.20}")
        return found
    if isinstance(value, list | tuple):
        return [x for i, item in enumerate(value) for x in _unstorable(item, f"{where}[{i}]")]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            x
            for f in dataclasses.fields(value)
            for x in _unstorable(getattr(value, f.name), f"{where}.{f.name}")
        ]
    return [f"{where}: a {type(value).__name__}"]


def _problems(event: Event) -> list[str]:
    """Why this event could not be stored as it is; [] when it can."""
    found = _unstorable(event.raw, "raw")
    json.dumps(event.raw, allow_nan=False)  # raises on NaN, Infinity, or a non-JSON type
    for f in dataclasses.fields(event):
        if f.name in ("raw", "notes"):
            continue
        value = getattr(event, f.name)
        found += _unstorable(value, f.name)
        limit = COLUMN_MAX.get(f.name)
        if limit is not None and len(value) > limit:
            found.append(f"{f.name} is {len(value)} characters, its column {limit}")
    if len(services._storage_key(event)) > WebhookEvent._meta.get_field("key").max_length:
        found.append(f"key {services._storage_key(event)[:60]!r}… is too long")
    if len(event.kind) > WebhookEvent._meta.get_field("kind").max_length:
        found.append(f"kind {event.kind!r}")
    return found


# --- the parser ------------------------------------------------------------------------

parser_input = strategies.webhook_body.filter(lambda b: b.depth <= DECODABLE_DEPTH).map(
    strategies.decoded
)


@settings(max_examples=examples(500))
@given(payload=parser_input, received_ms=st.sampled_from([payloads.T0, 1, 253402300799999]))
def test_the_parser_never_raises_and_every_event_can_be_stored(payload, received_ms):
    events = parse_delivery(payload, received_ms=received_ms)

    unstorable = [(e.kind, e.key[:80], p) for e in events if (p := _problems(e))]
    assert unstorable == []
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)


def test_the_parser_takes_json_values_that_are_not_deliveries():
    # The strategies above reach these; they are spelled out for the reader. A body that
    # is not an object holds no event (the endpoint refuses it with 400 anyway); an
    # object that is not a page delivery is one unknown event.
    for payload in (None, 1, "x", [], [{"object": "page"}]):
        assert parse_delivery(payload, received_ms=payloads.T0) == []
    for payload in ({}, {"object": "page"}, {"object": "page", "entry": 1}):
        [event] = parse_delivery(payload, received_ms=payloads.T0)
        assert (event.kind, _problems(event)) == ("unknown", [])
    assert parse_delivery({"object": "page", "entry": []}, received_ms=1) == []


# --- the endpoint and processing -------------------------------------------------------


def _expected_statuses(body: Body, data: bytes) -> set[int]:
    try:
        value = json.loads(data)
    except RecursionError:
        return {400}  # too deep even here; the endpoint's stack is deeper
    expected = 200 if isinstance(value, dict) else 400
    # The endpoint decodes deeper in the stack than this test: past DECODABLE_DEPTH it
    # may stop with 400 where this decoder did not.
    return {expected, 400} if body.depth > DECODABLE_DEPTH else {expected}


def _deliver_and_process(client, body: Body) -> None:
    data = body.text.encode()
    response = client.post(
        URL,
        data,
        content_type="application/json",
        headers={"X-Hub-Signature-256": payloads.signature(data)},
    )

    assert response.status_code in _expected_statuses(body, data), response.content
    event(f"HTTP {response.status_code}")
    if response.status_code != 200:
        assert (WebhookDelivery.objects.count(), WebhookEvent.objects.count()) == (0, 0)
        return
    assert response.content == b"EVENT_RECEIVED"
    delivery = WebhookDelivery.objects.get()
    assert bytes(delivery.body) == data

    assert services.delivery_process(delivery_id=delivery.pk) is True

    delivery.refresh_from_db()
    received_ms = int(delivery.received_at.timestamp() * 1000)
    parsed = parse_delivery(json.loads(data), received_ms=received_ms)
    keys = {services._storage_key(e) for e in parsed}
    rows = {r.key: r for r in WebhookEvent.objects.all()}
    # Every event is recorded, once (one row per distinct key; a repeated key is a
    # redelivery), in this delivery; none failed, so the delivery is processed.
    assert sorted(rows) == sorted(keys)
    assert {r.delivery_id for r in rows.values()} <= {delivery.pk}
    failed = {k: r.error for k, r in rows.items() if r.outcome == WebhookEvent.Outcome.FAILED}
    assert failed == {}
    assert (delivery.status, delivery.last_error) == (WebhookDelivery.Status.PROCESSED, "")
    # Every valid user message is applied and its text stored.
    for valid in body.valid:
        assert rows[f"message:{valid.mid}"].outcome == WebhookEvent.Outcome.APPLIED
        assert Message.objects.get(mid=valid.mid).text == valid.stored_text
    for r in rows.values():  # for --hypothesis-show-statistics
        event(f"{r.kind} {r.outcome}")
    # Exactly once: processing again does nothing.
    assert services.delivery_process(delivery_id=delivery.pk) is False
    assert WebhookEvent.objects.count() == len(keys)


@pytest.mark.django_db
@settings(max_examples=examples(150), suppress_health_check=DB_HEALTH_CHECKS)
@given(body=strategies.webhook_body)
def test_the_endpoint_never_fails_and_applies_every_valid_event(client, page, fake_graph, body):
    # Each example starts from the page alone: its changes are rolled back.
    with transaction.atomic():
        _deliver_and_process(client, body)
        transaction.set_rollback(True)
    # Nothing left the process: Graph calls happen in tasks, after commit.
    assert fake_graph.calls == []
