"""The deliveries of one task applied together (`services.deliveries_process`): claimed
in one statement, their events in one transaction per group, and, when a group fails,
the same outcome as one event at a time: each event exactly once, a failed one kept with
its error, its neighbours applied."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from agents.models import ControlState, Conversation, Message
from agents.services import inbound
from tests.support import factories, payloads
from webhooks import services
from webhooks.events import Event, timestamp_to_datetime
from webhooks.models import Page, WebhookDelivery, WebhookEvent

pytestmark = pytest.mark.django_db


def _stored(*events: dict[str, Any], channel: str = "standby") -> int:
    """A delivery stored as intake stores it, its processing not run."""
    body = payloads.body_bytes(payloads.delivery(*events, channel=channel))
    return WebhookDelivery.objects.create(digest=hashlib.sha256(body).hexdigest(), body=body).pk


def _statuses(*ids: int) -> list[tuple[str, int]]:
    rows = dict(WebhookDelivery.objects.values_list("pk", "status"))
    attempts = dict(WebhookDelivery.objects.values_list("pk", "attempts"))
    return [(rows[pk], attempts[pk]) for pk in ids]


def _texts() -> list[str]:
    return list(Message.objects.order_by("id").values_list("text", flat=True))


@pytest.fixture
def failing_on(monkeypatch) -> Any:
    """Make the handler raise for a message with this text (a poison event)."""
    real = services._handler()

    def arm(text: str) -> list[str]:
        seen: list[str] = []

        def handler(page: Page, event: Event) -> str | None:
            seen.append(getattr(event, "text", event.kind))
            if getattr(event, "text", None) == text:
                raise ValueError(f"cannot apply {text!r}")
            return real(page, event)

        monkeypatch.setattr(services, "_handler", lambda: handler)
        return seen

    return arm


def test_the_deliveries_of_a_task_are_applied_in_order_and_finished(page, clock):
    ids = [
        _stored(payloads.pass_control(ts=clock()), channel="messaging"),
        _stored(payloads.user_message("first", ts=clock(), mid="m_1"), channel="messaging"),
        _stored(payloads.user_message("second", ts=clock(), mid="m_2"), channel="messaging"),
    ]

    assert services.deliveries_process(delivery_ids=ids) == 3

    # The pass came first: both messages are the ticket's.
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.AGENT
    rows = list(Message.objects.filter(author_kind="customer").values_list("text", "ticket"))
    ticket_id = conversation.tickets.get().pk
    assert rows == [("first", ticket_id), ("second", ticket_id)]
    assert _statuses(*ids) == [("processed", 1)] * 3
    assert WebhookDelivery.objects.filter(running_since__isnull=False).count() == 0
    assert sorted(WebhookEvent.objects.values_list("delivery_id", "outcome")) == [
        (pk, "applied") for pk in ids
    ]


def test_a_receipt_and_a_message_of_one_customer_in_a_group_each_read_the_conversation_afresh(
    page, clock, monkeypatch
):
    # The receipt takes the conversation the group locked; the message after it reads
    # the row again, with the receipt's watermark (not the group's older copy).
    conversation = factories.conversation(page=page)
    sent = factories.message(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        author_kind=Message.Author.AGENT,
        status=Message.Status.SENT,
        timestamp=clock(),
    )
    seen: list[int] = []
    real = inbound.conversation_lock_or_create

    def lock_or_create(*, page: Page, psid: str) -> Conversation:
        locked = real(page=page, psid=psid)
        seen.append(locked.read_watermark)  # what the message's handler works with
        return locked

    monkeypatch.setattr(inbound, "conversation_lock_or_create", lock_or_create)
    watermark = clock()
    ids = [
        _stored(payloads.read(ts=clock(), watermark=watermark), channel="messaging"),
        _stored(payloads.user_message("read it", ts=clock()), channel="messaging"),
    ]

    services.deliveries_process(delivery_ids=ids)

    sent.refresh_from_db()
    assert sent.status == Message.Status.READ
    assert seen == [watermark]
    assert _texts()[-1] == "read it"
    assert _statuses(*ids) == [("processed", 1)] * 2


def test_a_failing_event_rolls_its_group_back_and_each_delivery_is_applied_alone(
    page, clock, failing_on
):
    seen = failing_on("boom")
    ids = [
        _stored(payloads.user_message("one", ts=clock(), mid="m_1")),
        _stored(payloads.user_message("boom", ts=clock(), mid="m_2")),
        _stored(payloads.user_message("three", ts=clock(), mid="m_3")),
    ]

    services.deliveries_process(delivery_ids=ids)

    # Tried together once (rolled back at "boom"), then one at a time.
    assert seen == ["one", "boom", "one", "boom", "three"]
    assert _texts() == ["one", "three"]
    assert _statuses(*ids) == [("processed", 1), ("partial", 1), ("processed", 1)]
    failed = WebhookEvent.objects.get(outcome="failed")
    assert (failed.delivery_id, failed.error) == (ids[1], "ValueError: cannot apply 'boom'")
    assert WebhookEvent.objects.filter(outcome="applied").count() == 2


def test_an_event_recorded_before_is_not_applied_again_and_a_failed_one_is_tried_again(
    page, clock, failing_on
):
    # Given "again" applied by an earlier delivery, and "retry" failed earlier
    again = payloads.user_message("again", ts=clock(), mid="m_again")
    retry = payloads.user_message("retry", ts=clock(), mid="m_retry")
    failing_on("retry")
    first = _stored(again, retry)
    services.deliveries_process(delivery_ids=[first])
    assert _statuses(first) == [("partial", 1)]
    seen = failing_on("nothing fails now")

    # When a new delivery repeats both (byte-different), with a new event between
    new = payloads.user_message("new", ts=clock(), mid="m_new")
    second = _stored(again, new, retry)
    services.deliveries_process(delivery_ids=[second])

    # Then the new event is applied in the group, the failed one after it, "again" never
    assert seen == ["new", "retry"]
    assert _texts() == ["again", "new", "retry"]
    assert _statuses(second) == [("processed", 1)]
    assert set(WebhookEvent.objects.values_list("key", "outcome", "attempts")) == {
        ("message:m_again", "applied", 1),
        ("message:m_retry", "applied", 2),
        ("message:m_new", "applied", 1),
    }


def test_the_same_event_in_two_deliveries_of_a_group_is_applied_once(page, clock):
    event = payloads.user_message("twice", ts=clock(), mid="m_twice")
    ids = [_stored(event), _stored(event, payloads.user_message("other", ts=clock()))]

    services.deliveries_process(delivery_ids=ids)

    assert _texts() == ["twice", "other"]
    assert list(WebhookEvent.objects.filter(key="message:m_twice").values_list("delivery_id")) == [
        (ids[0],)
    ]
    assert _statuses(*ids) == [("processed", 1)] * 2


def test_a_key_recorded_during_the_group_rolls_it_back_and_nothing_is_doubled(
    page, clock, monkeypatch
):
    # Another worker records the second event's key while the group runs: the group's
    # INSERT fails, the whole group is rolled back and applied one event at a time.
    real = services._handler()
    calls: list[str] = []

    def handler(page: Page, event: Event) -> str | None:
        calls.append(event.key)
        if len(calls) == 1:
            WebhookEvent.objects.create(
                key="message:m_2",
                delivery_id=ids[1],
                kind="message",
                timestamp=0,
                outcome="applied",
                payload={},
            )
        return real(page, event)

    monkeypatch.setattr(services, "_handler", lambda: handler)
    ids = [
        _stored(payloads.user_message("one", ts=clock(), mid="m_1")),
        _stored(payloads.user_message("two", ts=clock(), mid="m_2")),
    ]

    services.deliveries_process(delivery_ids=ids)

    assert calls == ["message:m_1", "message:m_2", "message:m_1", "message:m_2"]
    assert _texts() == ["one", "two"]
    assert WebhookEvent.objects.count() == 2
    assert _statuses(*ids) == [("processed", 1)] * 2


def test_deliveries_done_failed_too_often_or_running_elsewhere_are_not_claimed(
    page, clock, settings
):
    done = _stored(payloads.user_message("done", ts=clock()))
    exhausted = _stored(payloads.user_message("exhausted", ts=clock()))
    running = _stored(payloads.user_message("running", ts=clock()))
    stale = _stored(payloads.user_message("stale lease", ts=clock()))
    fresh = _stored(payloads.user_message("fresh", ts=clock()))
    WebhookDelivery.objects.filter(pk=done).update(status="processed", attempts=1)
    WebhookDelivery.objects.filter(pk=exhausted).update(attempts=settings.WEBHOOK_MAX_ATTEMPTS)
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=running).update(running_since=now)
    lease = timedelta(seconds=settings.REDRIVE_LEASE_SECONDS + 1)
    WebhookDelivery.objects.filter(pk=stale).update(running_since=now - lease)

    claimed = services.deliveries_process(delivery_ids=[done, exhausted, running, stale, fresh])

    assert claimed == 2
    assert _texts() == ["stale lease", "fresh"]
    assert _statuses(done, exhausted, running, stale, fresh) == [
        ("processed", 1),
        ("received", settings.WEBHOOK_MAX_ATTEMPTS),
        ("received", 0),
        ("processed", 1),
        ("processed", 1),
    ]


def test_groups_are_cut_at_the_event_limit_and_a_larger_delivery_goes_alone(
    page, clock, settings, monkeypatch
):
    settings.WEBHOOK_GROUP_EVENTS = 2
    small = [_stored(payloads.user_message("small 0", ts=clock()))]
    big = _stored(*[payloads.user_message(f"big {n}", ts=clock()) for n in range(3)])
    small += [_stored(payloads.user_message(f"small {n}", ts=clock())) for n in range(1, 4)]
    groups: list[list[int]] = []
    real = services._group_apply

    def group_apply(group: Any, pages: Any) -> Any:
        groups.append([delivery.pk for delivery, _ in group])
        return real(group, pages)

    monkeypatch.setattr(services, "_group_apply", group_apply)

    services.deliveries_process(delivery_ids=[small[0], big, small[1], small[2], small[3]])

    assert groups == [[small[0]], [small[1], small[2]], [small[3]]]
    assert _texts() == ["small 0", "big 0", "big 1", "big 2", "small 1", "small 2", "small 3"]
    assert _statuses(small[0], big, *small[1:]) == [("processed", 1)] * 5


@pytest.mark.django_db(transaction=True)
def test_two_groups_locking_two_conversations_in_opposite_orders_do_not_deadlock(
    page, clock, monkeypatch, settings
):
    """Worker 1's group has customer A then B, worker 2's B then A. Worker 1 holds A and
    waits (up to 2 s) for worker 2 to hold B: were the conversations locked as each event
    comes, the two would deadlock and a group would be rolled back. Locked first, in id
    order, worker 2 waits for worker 1 instead."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks and deadlocks are PostgreSQL's")
    settings.WEBHOOK_TAKE_ALONG = 0  # each worker its own group, as two intake tasks
    a, b = "3100000000000001", "3100000000000002"
    for psid in (a, b):
        services.deliveries_process(
            delivery_ids=[_stored(payloads.user_message("hi", ts=clock(), psid=psid))]
        )
    first = [
        _stored(payloads.user_message("1a", ts=clock(), psid=a)),
        _stored(payloads.user_message("1b", ts=clock(), psid=b)),
    ]
    second = [
        _stored(payloads.user_message("2b", ts=clock(), psid=b)),
        _stored(payloads.user_message("2a", ts=clock(), psid=a)),
    ]
    real = services._handler()
    one_holds_a, two_holds_b = threading.Event(), threading.Event()
    alone: list[int] = []
    real_alone = services._delivery_run_logged

    def handler(page: Page, event: Event) -> str | None:
        note = real(page, event)  # the conversation is locked now
        text = getattr(event, "text", "")
        if text == "1a":
            one_holds_a.set()
            two_holds_b.wait(2)
        elif text == "2b":
            two_holds_b.set()
        return note

    def run_alone(delivery: WebhookDelivery, pages: Any) -> None:
        alone.append(delivery.pk)
        real_alone(delivery, pages)

    monkeypatch.setattr(services, "_handler", lambda: handler)
    monkeypatch.setattr(services, "_delivery_run_logged", run_alone)
    errors: list[BaseException] = []

    def worker(ids: list[int], after: threading.Event | None) -> None:
        try:
            if after is not None:
                after.wait(10)
            services.deliveries_process(delivery_ids=ids)
        except BaseException as exc:  # noqa: BLE001 -- reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(first, None)),
        threading.Thread(target=worker, args=(second, one_holds_a)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert alone == []  # no group was rolled back
    assert sorted(_texts()) == ["1a", "1b", "2a", "2b", "hi", "hi"]
    assert _statuses(*first, *second) == [("processed", 1)] * 4


# --- a task takes along the deliveries that wait for their own (a backlog) ------------


def test_a_task_takes_along_the_deliveries_waiting_for_their_own_which_then_find_nothing(
    page, clock, django_assert_num_queries
):
    ids = [
        _stored(payloads.user_message(f"m{n}", ts=clock(), mid=f"m_{n}"), channel="messaging")
        for n in range(4)
    ]

    assert services.deliveries_process(delivery_ids=ids[:1]) == 4

    assert _texts() == ["m0", "m1", "m2", "m3"]
    assert _statuses(*ids) == [("processed", 1)] * 4
    # Their own tasks come later: one statement each (the claim), nothing applied again.
    for delivery_id in ids[1:]:
        with django_assert_num_queries(1):
            assert services.deliveries_process(delivery_ids=[delivery_id]) == 0
    assert _texts() == ["m0", "m1", "m2", "m3"]
    assert WebhookEvent.objects.count() == 4
    assert _statuses(*ids) == [("processed", 1)] * 4


def test_a_task_takes_along_at_most_its_share_oldest_first_never_a_failed_or_running_one(
    page, clock, settings
):
    settings.WEBHOOK_TAKE_ALONG = 2
    oldest = _stored(payloads.user_message("oldest", ts=clock()))
    failed = _stored(payloads.user_message("failed before", ts=clock()))
    running = _stored(payloads.user_message("running elsewhere", ts=clock()))
    older = _stored(payloads.user_message("older", ts=clock()))
    newer = _stored(payloads.user_message("newer", ts=clock()))
    own = _stored(payloads.user_message("own", ts=clock()))
    WebhookDelivery.objects.filter(pk=failed).update(status="failed", attempts=1)
    WebhookDelivery.objects.filter(pk=running).update(running_since=timezone.now())

    assert services.deliveries_process(delivery_ids=[own]) == 3

    # The two oldest that wait, with its own, in the order they arrived; the failed one
    # is the re-drive's.
    assert _texts() == ["oldest", "older", "own"]
    assert _statuses(oldest, failed, running, older, newer, own) == [
        ("processed", 1),
        ("failed", 1),
        ("received", 0),
        ("processed", 1),
        ("received", 0),
        ("processed", 1),
    ]


def test_with_take_along_off_a_task_claims_only_its_own(page, clock, settings):
    settings.WEBHOOK_TAKE_ALONG = 0
    first = _stored(payloads.user_message("first", ts=clock()))
    second = _stored(payloads.user_message("second", ts=clock()))

    assert services.deliveries_process(delivery_ids=[second]) == 1

    assert _texts() == ["second"]
    assert _statuses(first, second) == [("received", 0), ("processed", 1)]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_another_worker_is_claiming_is_skipped_not_waited_for(page, clock):
    """PostgreSQL: a row locked by another claim (here held by a thread until this
    claim is over, or 30 s) is left to it (SKIP LOCKED): waiting for it would claim it
    once the lock goes, and two claims taking rows in different orders could deadlock."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    own = _stored(payloads.user_message("own", ts=clock()))
    locked = _stored(payloads.user_message("locked by another claim", ts=clock()))
    free = _stored(payloads.user_message("free", ts=clock()))
    holding, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_claim() -> None:
        try:
            with transaction.atomic():
                WebhookDelivery.objects.select_for_update().get(pk=locked)
                holding.set()
                done.wait(30)
        except BaseException as exc:  # noqa: BLE001 -- reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=other_claim)
    thread.start()
    assert holding.wait(30)
    try:
        claimed = services.deliveries_process(delivery_ids=[own])
    finally:
        done.set()
        thread.join(60)

    assert errors == []
    assert claimed == 2
    assert sorted(_texts()) == ["free", "own"]
    assert _statuses(own, locked, free) == [("processed", 1), ("received", 0), ("processed", 1)]


# --- what a group keeps until its flush (agents.services.group) -----------------------


def _timeline() -> list[tuple[str, str, int | None]]:
    return list(Message.objects.order_by("id").values_list("author_kind", "text", "ticket"))


def test_a_receipt_in_a_group_marks_the_bot_echo_an_earlier_event_of_the_group_stored(page, clock):
    # The echo's message is kept for the group's INSERT; the receipt after it must see
    # it (the group writes what it kept before a receipt reads messages).
    factories.conversation(page=page)
    sent_at = clock()
    ids = [
        _stored(payloads.echo("from the bot", ts=sent_at), channel="standby"),
        _stored(payloads.read(ts=clock(), watermark=sent_at), channel="standby"),
    ]

    assert services.deliveries_process(delivery_ids=ids) == 2

    assert list(Message.objects.values_list("text", "status")) == [("from the bot", "read")]
    assert _statuses(*ids) == [("processed", 1)] * 2


def test_a_pass_in_a_group_comes_after_the_messages_before_it_and_before_those_after(page, clock):
    conversation = factories.conversation(page=page, control_state=ControlState.BOT)
    ids = [
        _stored(payloads.user_message("hi", ts=clock()), channel="standby"),
        _stored(payloads.echo("what can I do?", ts=clock()), channel="standby"),
        _stored(payloads.pass_control(ts=clock()), channel="messaging"),
        _stored(payloads.user_message("a person please", ts=clock()), channel="messaging"),
    ]

    assert services.deliveries_process(delivery_ids=ids) == 4

    ticket = conversation.tickets.get()
    timeline = _timeline()
    # Whatever the pass writes itself comes between the bot's answer and the message
    # after the pass, in the events' order: ids follow the events.
    assert timeline[:2] == [("customer", "hi", None), ("bot", "what can I do?", None)]
    assert timeline[-1] == ("customer", "a person please", ticket.pk)
    assert all(author == "system" for author, _, _ in timeline[2:-1])
    assert _statuses(*ids) == [("processed", 1)] * 4


def test_a_group_moves_each_conversation_s_clocks_to_its_latest_event_never_back(page, clock):
    # A's messages out of order (the later one first), B's one message, C's clocks
    # ahead of its message already (a late delivery): one UPDATE for all, only forward.
    a = factories.conversation(page=page, psid="4100000000000001")
    b = factories.conversation(page=page, psid="4100000000000002")
    c = factories.conversation(page=page, psid="4100000000000003")
    early, late_c, b_at, a_at = clock(), clock(), clock(), clock()
    ahead = timezone.now() + timedelta(hours=1)
    Conversation.objects.filter(pk=c.pk).update(last_message_at=ahead, last_user_message_at=ahead)
    ids = [
        _stored(payloads.user_message("a later", ts=a_at, psid="4100000000000001")),
        _stored(payloads.user_message("a earlier", ts=early, psid="4100000000000001")),
        _stored(payloads.user_message("b", ts=b_at, psid="4100000000000002")),
        _stored(payloads.user_message("c late", ts=late_c, psid="4100000000000003")),
    ]

    assert services.deliveries_process(delivery_ids=ids) == 4

    def clocks(conversation: Conversation) -> tuple[Any, Any]:
        conversation.refresh_from_db()
        return conversation.last_message_at, conversation.last_user_message_at

    assert clocks(a) == (timestamp_to_datetime(a_at), timestamp_to_datetime(a_at))
    assert clocks(b) == (timestamp_to_datetime(b_at), timestamp_to_datetime(b_at))
    assert clocks(c) == (ahead, ahead)
    assert _texts() == ["a later", "a earlier", "b", "c late"]


def test_a_message_of_a_group_that_fails_is_not_stored_and_its_delivery_goes_alone(
    page, clock, failing_on
):
    # The kept messages go with the group's rollback: nothing of them is written twice
    # when the deliveries are applied one at a time after it.
    failing_on("boom")
    factories.conversation(page=page)
    ids = [
        _stored(payloads.user_message("kept", ts=clock())),
        _stored(payloads.user_message("boom", ts=clock())),
    ]

    services.deliveries_process(delivery_ids=ids)

    assert _texts() == ["kept"]
    assert _statuses(*ids) == [("processed", 1), ("partial", 1)]
