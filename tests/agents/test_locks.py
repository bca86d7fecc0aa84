"""Row locks lock only their own row: conversations of one page never queue behind
each other (PostgreSQL; SQLite has no row locks and serialises writers instead)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection, transaction

from agents.locks import conversation_lock
from agents.models import Contact, Conversation, Message
from tests.support import factories, payloads
from webhooks.models import Page, WebhookDelivery
from webhooks.services import delivery_process

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers instead")


@contextmanager
def held(conversation: Conversation) -> Iterator[None]:
    """Another connection holds the conversation's lock until the block ends."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                conversation_lock(conversation.pk)
                holding.set()
                release.wait(60)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(30), "the other connection never got the lock"
    try:
        yield
    finally:
        release.set()
        thread.join(60)


def _lock_timeout(seconds: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{seconds}s'")


def test_a_conversation_lock_leaves_its_page_and_contact_unlocked(page):
    first, second = (
        factories.conversation(page=page, psid="1001"),
        factories.conversation(page=page, psid="1002"),
    )
    with held(first), transaction.atomic():
        _lock_timeout(5)
        assert conversation_lock(second.pk).pk == second.pk  # did not wait for `first`
        Page.objects.select_for_update(nowait=True).get(pk=page.pk)
        Contact.objects.select_for_update(nowait=True).get(pk=first.contact_id)
        # The held row itself is locked: this test can tell the difference.
        with pytest.raises(OperationalError), transaction.atomic():
            Conversation.objects.select_for_update(nowait=True).get(pk=first.pk)


def test_two_conversations_of_one_page_are_processed_concurrently(page, clock):
    first = factories.conversation(page=page, psid="1001")
    factories.conversation(page=page, psid="1002")
    body = payloads.body_bytes(
        payloads.delivery(
            payloads.user_message("hello", ts=clock(), psid="1002"), channel="standby"
        )
    )
    delivery = WebhookDelivery.objects.create(body=body, digest=hashlib.sha256(body).hexdigest())
    with held(first):
        _lock_timeout(5)  # a wait for `first`'s page row would fail the processing
        try:
            assert delivery_process(delivery_id=delivery.pk) is True
        finally:
            _lock_timeout(0)
    assert list(Message.objects.values_list("conversation__contact__psid", "text")) == [
        ("1002", "hello")
    ]


def test_a_read_receipt_and_the_sends_confirmation_at_the_same_moment_end_read(page):
    """The receipt has moved the watermark but not committed (the message was still
    being sent, so it changed no row); the send's confirmation waits for it and reads the
    new watermark: the message ends Read, not Sent for ever."""
    from agents.services.inbound import receipt_apply  # noqa: PLC0415
    from agents.services.outbound import outbound_confirm  # noqa: PLC0415
    from webhooks.events import ReadEvent  # noqa: PLC0415

    conversation = factories.conversation(page=page, psid="1001")
    message = Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        author_kind=Message.Author.AGENT,
        text="hi",
        timestamp=1_000,
        status=Message.Status.SENDING,
    )
    read = ReadEvent(
        page_id=page.page_id,
        psid="1001",
        timestamp=2_000,
        channel="standby",
        raw={},
        watermark=2_000,
    )
    applied, release, done = threading.Event(), threading.Event(), threading.Event()

    def receipt() -> None:
        try:
            with transaction.atomic():
                receipt_apply(page, read)
                applied.set()
                release.wait(60)
        finally:
            connection.close()

    def confirm() -> None:
        try:
            outbound_confirm(message.pk, mid="m_1")
        finally:
            done.set()
            connection.close()

    receiving = threading.Thread(target=receipt)
    receiving.start()
    assert applied.wait(30)
    confirming = threading.Thread(target=confirm)
    confirming.start()
    # The confirmation waits for the receipt's transaction (the conversation's lock).
    assert not done.wait(1)
    release.set()
    receiving.join(60)
    confirming.join(60)
    message.refresh_from_db()
    assert (message.status, message.mid) == (Message.Status.READ, "m_1")
