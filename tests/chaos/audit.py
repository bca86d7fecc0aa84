"""After the storm: wait until the helpdesk has settled, then count, from the database
and from the emulator, and check the invariants.

Webhooks: every event the helpdesk acknowledged (a 2xx to the emulator's POST) has its
`WebhookEvent` row (applied or ignored; failed ones are listed), none twice; every
acknowledged message, echo and postback is one `Message` row (by mid); no customer text
is stored twice. Replies: every agent message (API 201s, closing messages, and those
whose answer the agent never got) reached the customer exactly once (the emulator's
transcript, by the `helpdesk:message=<id>` metadata of the send), or is failed with its
reason; nothing is left pending, sending or confirming, no delivery unprocessed under
the attempt cap, no conversation `returning`.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.database import Database
from tests.chaos.ledger import Ledger
from tests.chaos.load import Replies
from tests.support import payloads
from tests.support.polling import eventually
from webhooks.emulator import Emulator

MAX_ATTEMPTS = 10  # WEBHOOK_MAX_ATTEMPTS: the helpdesk's default, not changed by the run
UNSETTLED_MESSAGES = ("pending", "sending", "confirming")
OWN_METADATA = re.compile(r"^helpdesk:message=(\d+)$")
MAY_NOT_HAVE_BEEN_DELIVERED = "may not have been delivered"
QUIET_SECONDS = 3.0  # nothing changed in the database for this long: settled


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    title: str
    sections: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    # Timelines of the replies that failed (other than unconfirmed) or broke a rule.
    explain: str = ""
    faults: dict[str, int] = field(default_factory=dict)  # injected, by plan name

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str, ok: bool, detail: Any = "") -> None:
        self.checks.append(Check(name, ok, "" if ok else str(detail)[:1500]))

    def table(self) -> str:
        width = max(
            [len(label) for _, rows in self.sections for label, _ in rows]
            + [len(c.name) for c in self.checks]
        )
        lines = [self.title, ""]
        for heading, rows in self.sections:
            lines.append(heading)
            lines += [f"  {label:<{width}}  {_number(value)}" for label, value in rows]
            lines.append("")
        lines.append("invariants")
        for c in self.checks:
            lines.append(f"  {c.name:<{width}}  {'ok' if c.ok else 'BROKEN'}")
            if c.detail:
                lines.append(f"      {c.detail}")
        lines.append("")
        lines.append("result: " + ("PASSED" if not self.failures else "FAILED"))
        return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


# --- settling -----------------------------------------------------------------------


def unsettled(db: Database) -> dict[str, int]:
    """What still has to happen, by the database."""
    states = ", ".join(f"'{s}'" for s in UNSETTLED_MESSAGES)
    return {
        "deliveries not processed": db.value(
            "SELECT count(*) FROM webhooks_webhookdelivery WHERE status IN ('received', 'failed')"
            f" AND attempts < {MAX_ATTEMPTS}"
        ),
        "messages pending/sending/confirming": db.value(
            f"SELECT count(*) FROM agents_message WHERE status IN ({states})"
        ),
        "conversations returning": db.value(
            "SELECT count(*) FROM agents_conversation WHERE control_state = 'returning'"
        ),
    }


def _fingerprint(db: Database) -> tuple[Any, ...]:
    return tuple(
        db.rows(
            "SELECT (SELECT count(*) FROM webhooks_webhookevent),"
            " (SELECT count(*) FROM agents_message),"
            " (SELECT count(*) FROM agents_message WHERE status = 'sent'),"
            " (SELECT count(*) FROM agents_message WHERE status = 'failed'),"
            " (SELECT count(*) FROM agents_controltransition)"
        )[0]
    )


def settle(emulator: Emulator, db: Database, *, timeout: float) -> float:
    """Wait until the emulator has delivered everything and the database is quiet with
    nothing unsettled. Returns the seconds it took; raises AssertionError on timeout."""
    started = time.monotonic()
    seen: dict[str, Any] = {"fingerprint": None, "since": time.monotonic(), "left": {}}

    def quiet() -> bool:
        if not emulator.wait_idle(timeout=1.0):
            seen["left"] = {"webhooks still in the emulator": 1}
            return False
        fingerprint = _fingerprint(db)
        if fingerprint != seen["fingerprint"]:
            seen.update(fingerprint=fingerprint, since=time.monotonic())
        seen["left"] = {k: v for k, v in unsettled(db).items() if v}
        return not seen["left"] and time.monotonic() - seen["since"] >= QUIET_SECONDS

    eventually(
        quiet, timeout=timeout, interval=0.5, what=lambda: f"the helpdesk to settle: {seen['left']}"
    )
    return time.monotonic() - started


# --- counting -------------------------------------------------------------------------


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def webhooks_audit(report: Report, db: Database, ledger: Ledger, emulator: Emulator) -> None:
    rows = db.rows("SELECT key, outcome, kind, error, payload FROM webhooks_webhookevent")
    outcome = {key: o for key, o, *_ in rows}
    failed = [(key, kind, error) for key, o, kind, error, _ in rows if o == "failed"]
    payload_copies = Counter(json.dumps(_json(payload), sort_keys=True) for *_, payload in rows)
    doubled_events = sum(n - 1 for n in payload_copies.values() if n > 1)
    lost = [key for key in ledger.acked if key not in outcome]
    counts = emulator.dispatcher.counts(payloads.APP_ID)
    deliveries = dict(
        db.rows("SELECT status, count(*) FROM webhooks_webhookdelivery GROUP BY status")
    )
    at_cap = db.value(
        "SELECT count(*) FROM webhooks_webhookdelivery WHERE status IN ('received', 'failed')"
        f" AND attempts >= {MAX_ATTEMPTS}"
    )
    stuck_deliveries = unsettled(db)["deliveries not processed"]
    stored_mids = Counter(
        mid for (mid,) in db.rows("SELECT mid FROM agents_message WHERE mid IS NOT NULL")
    )
    missing_mids = [mid for mid in ledger.mids if stored_mids[mid] != 1]
    applied = Counter(o for o in outcome.values())
    report.sections.append(
        (
            "webhook events (emulator → helpdesk)",
            [
                ("POSTs answered 2xx", ledger.posts_acked),
                ("events acknowledged (with repeats)", counts.events_acked),
                ("distinct events acknowledged", len(ledger.acked)),
                ("  by kind", ", ".join(f"{k} {n}" for k, n in ledger.kinds.most_common())),
                ("events in POSTs that failed for good", counts.events_failed),
                ("WebhookEvent rows", len(rows)),
                ("  applied", applied["applied"]),
                ("  ignored", applied["ignored"]),
                ("  failed (kept for replay)", applied["failed"]),
                ("stored but never acknowledged", len(set(outcome) - set(ledger.acked))),
                ("lost (acknowledged, no row)", len(lost)),
                ("doubled (same event in two rows)", doubled_events),
                ("deliveries stored", sum(deliveries.values())),
                ("  by status", ", ".join(f"{k} {n}" for k, n in sorted(deliveries.items()))),
                ("  left at the attempt cap", at_cap),
            ],
        )
    )
    report.check("0 webhook events lost", not lost, lost[:10])
    report.check("0 webhook events doubled", doubled_events == 0, doubled_events)
    report.check(
        "acknowledged messages/echoes stored once by mid", not missing_mids, missing_mids[:10]
    )
    report.check("no webhook event failed", not failed, failed[:5])
    report.check("no delivery left unprocessed", stuck_deliveries == 0, stuck_deliveries)


def customers_audit(report: Report, db: Database, texts: list[str]) -> None:
    stored = Counter(
        text
        for (text,) in db.rows(
            "SELECT text FROM agents_message WHERE author_kind = 'customer' AND text LIKE '[c%'"
        )
    )
    doubled = [t for t, n in stored.items() if n > 1]
    report.sections.append(
        (
            "customers",
            [
                ("texts typed", len(texts)),
                ("stored", len(stored)),
                ("stored twice or more", len(doubled)),
            ],
        )
    )
    report.check("no customer message stored twice", not doubled, doubled[:5])


def replies_audit(
    report: Report, db: Database, replies: Replies, emulator: Emulator, psids: list[str]
) -> None:
    rows = db.rows(
        "SELECT id, text, status, error, author_id FROM agents_message"
        f" WHERE direction = 'out' AND author_kind = 'agent' AND app_id = '{payloads.APP_ID}'"
    )
    messages = {pk: (text, status, error) for pk, text, status, error, author in rows if author}
    # An echo of ours that matched no message becomes a message of its own: a double.
    echo_rows = [pk for pk, *_, author in rows if not author]
    sends: Counter[int] = Counter()
    strangers = 0
    for psid in psids:
        for entry in emulator.transcript(psid):
            if entry.get("kind") != "message" or entry.get("app_id") != payloads.APP_ID:
                continue
            match = OWN_METADATA.match(entry.get("metadata") or "")
            if match and int(match.group(1)) in messages:
                sends[int(match.group(1))] += 1
            else:
                strangers += 1
    by_text = {text: pk for pk, (text, _, _) in messages.items()}
    lost_after_201 = [pk for pk in replies.requested if pk not in messages]
    unknown_created = [t for t in replies.unknown + replies.closing_unknown if t in by_text]
    closing_stored = [t for t in replies.closing if t in by_text]
    once, failed, failed_delivered, doubled, lost, stuck, unexplained = ([] for _ in range(7))
    for pk, (_, status, error) in messages.items():
        sent = sends[pk]
        if sent > 1:
            doubled.append(pk)
        if status in UNSETTLED_MESSAGES:
            stuck.append(pk)
        elif status == "failed":
            failed.append(pk)
            if not error.strip():
                unexplained.append(pk)
            elif sent and MAY_NOT_HAVE_BEEN_DELIVERED not in error:
                unexplained.append(pk)  # said failed for sure, but it reached the user
            elif sent:
                failed_delivered.append(pk)
        elif sent == 1:
            once.append(pk)
        elif sent == 0:
            lost.append(pk)
    reasons = Counter(_reason(messages[pk][2]) for pk in failed)
    by_echo = db.value(
        "SELECT count(*) FROM webhooks_graphcall WHERE key LIKE 'message:%'"
        " AND CAST(response AS TEXT) LIKE '%confirmed_by%echo%'"
    )
    report.sections.append(
        (
            "agent replies (helpdesk → emulator)",
            [
                ("replies requested (API 201)", len(replies.requested)),
                ("closing messages (close 200)", len(closing_stored)),
                ("no answer or a 5xx, stored anyway", len(unknown_created)),
                (
                    "no answer or a 5xx, not stored",
                    len(replies.unknown + replies.closing_unknown) - len(unknown_created),
                ),
                ("refused (409)", sum(replies.refused.values())),
                ("agent messages stored", len(messages)),
                ("delivered exactly once", len(once)),
                ("  of which confirmed by their echo (answer lost)", by_echo),
                ("failed, shown with the reason", len(failed)),
                ("  of which reached the user anyway", len(failed_delivered)),
                *[(f"  {reason}", n) for reason, n in reasons.most_common()],
                ("doubled (delivered twice or more)", len(doubled)),
                ("stuck pending/sending/confirming", len(stuck)),
                ("tickets claimed / closed", f"{replies.claims} / {replies.closes}"),
            ],
        )
    )
    report.check("every 201 reply is stored", not lost_after_201, lost_after_201[:10])
    report.check("0 replies doubled", not doubled and not echo_rows, (doubled + echo_rows)[:10])
    report.check("0 replies lost (sent, not delivered)", not lost, lost[:10])
    report.check("0 replies stuck", not stuck, stuck[:10])
    report.check("every failed reply says why", not unexplained, unexplained[:10])
    report.check("no send without its message", strangers == 0, strangers)
    odd = [pk for pk in failed if _reason(messages[pk][2]) != "may not have been delivered"]
    ids = ", ".join(str(int(pk)) for pk in sorted(set(odd + doubled + lost + stuck + unexplained)))
    conversation_ids = [
        pk
        for (pk,) in db.rows(
            f"SELECT DISTINCT conversation_id FROM agents_message WHERE id IN ({ids or '0'})"
        )
    ]
    report.explain = timelines(db, conversation_ids)


def _reason(error: str) -> str:
    """An error in a few words, for the table's breakdown."""
    if MAY_NOT_HAVE_BEEN_DELIVERED in error:
        return "may not have been delivered"
    if error.startswith("Gave up"):
        return "gave up after retries"
    return re.split(r"[.;(]", error, maxsplit=1)[0].strip()[:70]


def conversations_audit(report: Report, db: Database, emulator: Emulator, psids: list[str]) -> None:
    states = dict(
        db.rows("SELECT control_state, count(*) FROM agents_conversation GROUP BY control_state")
    )
    tickets = dict(db.rows("SELECT status, count(*) FROM agents_ticket GROUP BY status"))
    ours = dict(
        db.rows(
            "SELECT c.psid, v.control_state FROM agents_conversation v"
            " JOIN agents_contact c ON c.id = v.contact_id"
        )
    )
    # Who owns each thread, by the platform, against what the helpdesk believes: it must
    # not think it owns a thread it lost (agents type into the void), nor miss one it
    # got (nobody answers the customer).
    wrong, wrong_psids = [], []
    for psid in psids:
        owner, state = emulator.owner(psid), ours.get(psid, "none")
        if (owner == payloads.APP_ID) != (state == "agent"):
            wrong.append(f"{psid}: owner {owner}, helpdesk {state}")
            wrong_psids.append(psid)
    report.sections.append(
        (
            "conversations and tickets",
            [
                (
                    "conversations by state",
                    ", ".join(f"{k} {n}" for k, n in sorted(states.items())),
                ),
                ("tickets by status", ", ".join(f"{k} {n}" for k, n in sorted(tickets.items()))),
                ("control state not the platform's", len(wrong)),
            ],
        )
    )
    returning = states.get("returning", 0)
    report.check("no conversation stuck returning", returning == 0, returning)
    report.check("every control state is the platform's", not wrong, wrong[:5])
    for psid in wrong_psids[:5]:
        report.explain += "\n" + owner_timeline(db, emulator, psid)


def owner_timeline(db: Database, emulator: Emulator, psid: str) -> str:
    """A conversation whose control state is not the platform's: the helpdesk's timeline,
    then the platform's transcript (messages and control events, the last 40)."""
    found = db.rows(
        "SELECT v.id FROM agents_conversation v JOIN agents_contact c ON c.id = v.contact_id"
        f" WHERE c.psid = '{int(psid)}'"
    )
    ours = timelines(db, [pk for (pk,) in found]) if found else f"no conversation for {psid}"
    platform = [
        f"  {entry.get('timestamp')}  {entry.get('author', '?'):<12} {entry.get('text', '')}"
        for entry in emulator.transcript(psid)
    ]
    return "\n".join([ours, f"the platform's thread {psid}:", *platform[-40:]])


def timelines(db: Database, conversation_ids: list[int]) -> str:
    """What happened in these conversations, in order: control transitions, ticket
    events and agent messages (for a reader of a failed run)."""
    out = []
    for conversation_id in conversation_ids:
        conversation_id = int(conversation_id)
        rows = db.rows(
            "SELECT created_at, 'control', from_state || ' -> ' || to_state || ' (' || cause"
            " || ') ' || detail FROM agents_controltransition"
            f" WHERE conversation_id = {conversation_id}"
            " UNION ALL SELECT e.created_at, 'ticket ' || e.ticket_id, e.kind || ' ' || e.detail"
            " FROM agents_ticketevent e JOIN agents_ticket t ON t.id = e.ticket_id"
            f" WHERE t.conversation_id = {conversation_id}"
            " UNION ALL SELECT created_at, 'message ' || id, status || ' ' || text || ' | '"
            " || error FROM agents_message WHERE author_kind IN ('agent', 'system')"
            f" AND conversation_id = {conversation_id}"
            " ORDER BY 1"
        )
        out.append(f"conversation {conversation_id}:")
        out += [f"  {at}  {what:<12} {detail}" for at, what, detail in rows]
    return "\n".join(out)
