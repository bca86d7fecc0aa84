"""The chaos run's checks catch what they are there for: an acknowledged event with no
row, a reply delivered twice, a message left pending, a failure without a reason, a
conversation left returning, a control state that is not the platform's. (A chaos run
that passes proves something only if these can fail.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection

from agents.models import ControlState, Message
from tests.chaos.audit import Report, conversations_audit, replies_audit, webhooks_audit
from tests.chaos.database import Database
from tests.chaos.ledger import Ledger
from tests.chaos.load import Replies
from tests.support import factories, payloads
from webhooks.emulator.delivery_records import Delivery, DeliveryCounts
from webhooks.models import WebhookDelivery, WebhookEvent

NOW = 1_800_000_000_000


@pytest.fixture
def database(transactional_db) -> Database:
    """The test database, read through its own connection (rows must be committed)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return Database(f"sqlite:///{db['NAME']}", patience=0)
    return Database(
        f"postgresql://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        patience=0,
    )


class FakeEmulator:
    """What the audit reads from the emulator: counts, transcripts, owners."""

    def __init__(self, *, transcripts=None, owners=None, acked: int = 0) -> None:
        self._transcripts = transcripts or {}
        self._owners = owners or {}
        self.dispatcher = SimpleNamespace(counts=lambda app_id: DeliveryCounts(events_acked=acked))

    def transcript(self, psid):
        return self._transcripts.get(psid, [])

    def owner(self, psid):
        return self._owners.get(psid)


def broken(report: Report) -> dict[str, str]:
    return {c.name: c.detail for c in report.failures}


def test_an_acknowledged_event_without_its_row_is_lost(database, page):
    # Given two messages acknowledged in one POST, and only the first one applied
    ledger = Ledger(payloads.APP_ID)
    first = payloads.user_message("one", ts=NOW, mid="m_one")
    second = payloads.user_message("two", ts=NOW + 1, mid="m_two")
    body = payloads.body_bytes(payloads.delivery(first, second, channel="standby"))
    ledger.observe(Delivery(1, payloads.APP_ID, body, [], 0, status="delivered", size=2))
    delivery = WebhookDelivery.objects.create(body=body, digest="d", status="processed")
    WebhookEvent.objects.create(
        key="message:m_one",
        delivery=delivery,
        kind="message",
        channel="standby",
        timestamp=NOW,
        outcome="applied",
        payload=first,
    )
    factories.message(conversation=factories.conversation(page=page), text="one", mid="m_one")
    report = Report(title="")

    # When the webhooks are audited
    webhooks_audit(report, database, ledger, FakeEmulator(acked=2))

    # Then the second one is lost, and its message missing
    assert broken(report) == {
        "0 webhook events lost": "['message:m_two']",
        "acknowledged messages/echoes stored once by mid": "['m_two']",
    }


def test_replies_delivered_twice_lost_stuck_or_failed_silently_are_caught(database, page, agent):
    ticket = factories.ticket(page=page, assignee=agent, status="open")

    def reply(text: str, status: str, error: str = "") -> Message:
        return factories.message(
            ticket=ticket,
            text=text,
            author_kind=Message.Author.AGENT,
            author=agent,
            app_id=payloads.APP_ID,
            status=status,
            error=error,
        )

    once, twice = reply("once", "sent"), reply("twice", "sent")
    lost, stuck = reply("lost", "sent"), reply("stuck", "confirming")
    silent, honest = reply("silent", "failed"), reply("honest", "failed", "Not sent: the bot")
    sends = [
        {"kind": "message", "app_id": payloads.APP_ID, "metadata": f"helpdesk:message={m.pk}"}
        for m in (once, twice, twice)
    ]
    replies = Replies(requested={m.pk: m.text for m in (once, twice, lost, stuck, silent, honest)})
    report = Report(title="")

    replies_audit(
        report, database, replies, FakeEmulator(transcripts={payloads.PSID: sends}), [payloads.PSID]
    )

    assert broken(report) == {
        "0 replies doubled": f"[{twice.pk}]",
        "0 replies lost (sent, not delivered)": f"[{lost.pk}]",
        "0 replies stuck": f"[{stuck.pk}]",
        "every failed reply says why": f"[{silent.pk}]",
    }
    counts = dict(report.sections[0][1])
    assert (counts["delivered exactly once"], counts["failed, shown with the reason"]) == (1, 2)


def test_a_conversation_left_returning_or_wrong_about_its_owner_is_caught(database, page):
    factories.conversation(page=page, psid="1", control_state=ControlState.RETURNING)
    factories.conversation(page=page, psid="2", control_state=ControlState.AGENT)
    factories.conversation(page=page, psid="3", control_state=ControlState.BOT)
    owners = {"1": payloads.BOT_APP_ID, "2": payloads.BOT_APP_ID, "3": payloads.BOT_APP_ID}
    report = Report(title="")

    conversations_audit(report, database, FakeEmulator(owners=owners), ["1", "2", "3"])

    assert broken(report) == {
        "no conversation stuck returning": "1",
        "every control state is the platform's": (
            f"['2: owner {payloads.BOT_APP_ID}, helpdesk agent']"
        ),
    }
    assert "the platform's thread 2:" in report.explain
    assert "the platform's thread 3:" not in report.explain
