"""One person's data: export it, erase it (issue 13, point 6).

A person is a contact of one page (page id + PSID: PSIDs are per page). What is theirs:
their contact row (profile, the agents' note on them), their conversation and its
thread-control history, their tickets (history, tags, rating, the agents' internal
notes: they are about the person, so they are exported and erased with them), their
messages and the files agents sent them, the raw webhook events stored under their
PSID, the webhook deliveries that hold those events, and the Graph call records made
for them (a profile answer holds their name).

`manage.py contact_export` and `contact_erase` call these; so does Meta's data deletion
callback (`user_erase` is settings.MESSENGER_DATA_DELETION_HANDLER, `webhooks.deletion`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import IntegerField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from agents import realtime
from agents.locks import conversation_lock_by_psid
from agents.models import (
    Attachment,
    Contact,
    ControlState,
    ControlTransition,
    Conversation,
    Csat,
    Message,
    Note,
    Ticket,
    TicketEvent,
    TicketTag,
    agent_name,
)
from webhooks.deletion import ErasureDeferred, id_digest
from webhooks.models import GraphCall, Page, WebhookDelivery, WebhookEvent

logger = logging.getLogger(__name__)

EXPORT_FORMAT = 1
# The helpdesk holds the conversation, or is getting or giving it back: an erase now
# would strand the customer mid-conversation.
_HELD = (ControlState.AGENT, ControlState.REQUESTED, ControlState.RETURNING)
_SENDING = (Message.Status.PENDING, Message.Status.SENDING, Message.Status.CONFIRMING)
_CHANNELS = ("messaging", "standby")


class PrivacyInputError(ValueError):
    """Bad input (an unknown page, an empty PSID): nothing was read or changed."""


class EraseRefused(ErasureDeferred):
    """The person's data cannot be erased now (an open ticket, a reply on its way, a
    webhook still being applied); nothing was changed. The message says why and what to
    do, in words, and names no personal data."""


@dataclass
class ErasePlan:
    """What an erase deletes (or deleted), by kind of record, and why it would be
    refused now (empty: it would not)."""

    counts: dict[str, int] = field(default_factory=dict)
    refusal: str = ""

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())


def _page(page_id: str) -> Page:
    page_id = page_id.strip()
    if not page_id:
        raise PrivacyInputError("The page id is empty.")
    page = Page.objects.filter(page_id=page_id).first()
    if page is None:
        raise PrivacyInputError(f"No page with id {page_id} is connected.")
    return page


def _psid(psid: str) -> str:
    psid = psid.strip()
    if not psid:
        raise PrivacyInputError("The PSID is empty.")
    if len(psid) > 64:
        raise PrivacyInputError("The PSID is longer than any of Meta's (64 characters).")
    return psid


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- Export -------------------------------------------------------------------------


def contact_export(*, page_id: str, psid: str) -> dict[str, Any]:
    """Everything stored about the person (page id + PSID) as one JSON-ready document.
    Never includes a page's token or anything of agents' accounts but the names the
    customer saw. Raises PrivacyInputError on bad input, and LookupError when nothing
    at all is stored about them."""
    page = _page(page_id)
    psid = _psid(psid)
    contact = Contact.objects.filter(page=page, psid=psid).first()
    conversation = Conversation.objects.filter(contact=contact).first() if contact else None
    events = WebhookEvent.objects.filter(page_id=page.page_id, psid=psid).order_by(
        "timestamp", "pk"
    )
    calls = GraphCall.objects.filter(page=page, psid=psid).order_by("pk")
    if contact is None and not events.exists() and not calls.exists():
        raise LookupError(f"Nothing is stored about PSID {psid} on page {page.page_id}.")
    return {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now().isoformat(),
        "page": {"page_id": page.page_id, "name": page.name},
        "contact": _contact_out(contact) if contact else None,
        "conversation": _conversation_out(conversation) if conversation else None,
        "tickets": _tickets_out(conversation) if conversation else [],
        "messages": _messages_out(conversation) if conversation else [],
        "control_transitions": _transitions_out(conversation) if conversation else [],
        "webhook_events": [
            {
                "kind": event.kind,
                "channel": event.channel,
                "timestamp": event.timestamp,
                "stored_at": _iso(event.created_at),
                "payload": event.payload,
            }
            for event in events
        ],
        "graph_calls": [
            {"kind": call.kind, "status": call.status, "made_at": _iso(call.created_at)}
            for call in calls
        ],
    }


def _contact_out(contact: Contact) -> dict[str, Any]:
    return {
        "psid": contact.psid,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "profile_pic": contact.profile_pic,
        "profile_fetched_at": _iso(contact.profile_fetched_at),
        "created_at": _iso(contact.created_at),
        # The agents' note on the customer: about them, so theirs to see.
        "agents_note": contact.note,
        "agents_note_updated_at": _iso(contact.note_updated_at),
    }


def _conversation_out(conversation: Conversation) -> dict[str, Any]:
    return {
        "control_state": conversation.control_state,
        "owner": conversation.owner_role,
        "created_at": _iso(conversation.created_at),
        "last_user_message_at": _iso(conversation.last_user_message_at),
        "last_message_at": _iso(conversation.last_message_at),
    }


def _tickets_out(conversation: Conversation) -> list[dict[str, Any]]:
    tickets = (
        Ticket.objects.filter(conversation=conversation)
        .select_related("assignee")
        .prefetch_related("tags", "events", "notes__author")
        .order_by("opened_at", "pk")
    )
    csats = {csat.ticket_id: csat for csat in Csat.objects.filter(ticket__in=tickets)}
    out = []
    for ticket in tickets:
        csat = csats.get(ticket.pk)
        out.append(
            {
                "id": ticket.pk,
                "status": ticket.status,
                "opened_at": _iso(ticket.opened_at),
                "closed_at": _iso(ticket.closed_at),
                "outcome": ticket.closing_note,
                "agent": agent_name(ticket.assignee) if ticket.assignee else None,
                "tags": sorted(tag.name for tag in ticket.tags.all()),
                "rating": None
                if csat is None
                else {
                    "status": csat.status,
                    "score": csat.score,
                    "asked_at": _iso(csat.asked_at),
                    "answered_at": _iso(csat.answered_at),
                },
                "history": [
                    {"kind": event.kind, "detail": event.detail, "at": _iso(event.created_at)}
                    for event in ticket.events.all()
                ],
                # Internal notes agents wrote about the person (never sent to them).
                "internal_notes": [
                    {
                        "text": note.text,
                        "author": agent_name(note.author) if note.author else None,
                        "timestamp": note.timestamp,
                    }
                    for note in ticket.notes.all()
                ],
            }
        )
    return out


def _messages_out(conversation: Conversation) -> list[dict[str, Any]]:
    messages = (
        Message.objects.filter(conversation=conversation)
        .select_related("attachment_file")
        .order_by("timestamp", "pk")
    )
    out = []
    for message in messages:
        file = getattr(message, "attachment_file", None)
        out.append(
            {
                "id": message.pk,
                "ticket_id": message.ticket_id,
                "direction": message.direction,
                "author": message.author_kind,
                "text": message.text,
                "timestamp": message.timestamp,
                "status": message.status,
                "quick_reply_payload": message.quick_reply_payload,
                "postback_title": message.postback_title,
                "attachments": [
                    {"type": item.get("type", ""), "title": item.get("title", "")}
                    for item in message.attachments
                    if isinstance(item, dict)
                ],
                "file": None
                if file is None
                else {
                    "name": file.name,
                    "content_type": file.content_type,
                    "size": file.size,
                    "kind": file.kind,
                },
            }
        )
    return out


def _transitions_out(conversation: Conversation) -> list[dict[str, Any]]:
    return [
        {
            "from": row.from_state,
            "to": row.to_state,
            "cause": row.cause,
            "detail": row.detail,
            "owner": row.owner_role,
            "at": row.at,
        }
        for row in ControlTransition.objects.filter(conversation=conversation)
    ]


# --- Erase --------------------------------------------------------------------------


def contact_erase(*, page_id: str, psid: str, dry_run: bool = False) -> ErasePlan:
    """Delete everything stored about the person (page id + PSID; module docstring),
    in one transaction, with their conversation locked; the files agents sent them are
    deleted from storage after commit. Deliveries whose every event is theirs are
    deleted; a delivery that also holds other people's events is rewritten without
    theirs (its digest stays the one of the body Meta sent, so that a byte-identical
    redelivery is still recognised and ignored). An audit line is logged at INFO: the
    page id, a keyed digest of the PSID, the counts; never the PSID or any text.

    `dry_run`: only count, change nothing. Raises PrivacyInputError on bad input and
    EraseRefused (nothing changed) while the person has an unclosed ticket, the
    helpdesk holds or is moving the conversation, a reply to them is being sent, or a
    webhook with their events is still to be applied. Idempotent: a second erase finds
    nothing (`ErasePlan.empty`)."""
    page = _page(page_id)
    psid = _psid(psid)
    with transaction.atomic():
        plan = _erase(page, psid, dry_run=dry_run)
    if not dry_run and not plan.empty:
        line = json.dumps(plan.counts, sort_keys=True)
        who = id_digest(psid)[:16]
        # Once it is committed: an erase rolled back (by a caller's transaction) says nothing.
        transaction.on_commit(
            lambda: logger.info(
                "privacy: erased the data of user %s on page %s: %s", who, page.page_id, line
            )
        )
    return plan


def contact_erase_plan(*, page_id: str, psid: str) -> ErasePlan:
    """What `contact_erase` would delete now, and why it would refuse; changes nothing."""
    return contact_erase(page_id=page_id, psid=psid, dry_run=True)


def user_erase(*, user_id: str) -> dict[str, int]:
    """settings.MESSENGER_DATA_DELETION_HANDLER: erase the person Meta's data deletion
    callback names, on every page where a contact, webhook event or Graph call is
    stored under that id (`webhooks.deletion` on app- and page-scoped ids). Raises
    EraseRefused (an ErasureDeferred: the request waits and is tried again) when any of
    them cannot be erased now; then nothing is erased. Returns the counts, summed."""
    page_ids = set(Contact.objects.filter(psid=user_id).values_list("page__page_id", flat=True))
    page_ids |= set(WebhookEvent.objects.filter(psid=user_id).values_list("page_id", flat=True))
    page_ids |= set(
        GraphCall.objects.filter(psid=user_id, page__isnull=False).values_list(
            "page__page_id", flat=True
        )
    )
    totals: dict[str, int] = {}
    with transaction.atomic():
        for page in Page.objects.filter(page_id__in=page_ids).order_by("pk"):
            plan = contact_erase(page_id=page.page_id, psid=user_id)
            for kind, count in plan.counts.items():
                totals[kind] = totals.get(kind, 0) + count
    return totals


def _erase(page: Page, psid: str, *, dry_run: bool) -> ErasePlan:
    """The erase itself (`contact_erase`); inside its transaction."""
    if dry_run:
        conversation = (
            Conversation.objects.select_related("contact")
            .filter(page=page, contact__page=page, contact__psid=psid)
            .first()
        )
    else:
        conversation = conversation_lock_by_psid(page_pk=page.pk, psid=psid)
    contact = Contact.objects.filter(page=page, psid=psid).first()
    holding = list(_deliveries_holding(page.page_id, psid))
    plan = ErasePlan(
        counts=_counts(page, psid, contact, conversation, holding),
        refusal=_refusal(conversation, holding),
    )
    if dry_run:
        return plan
    if plan.refusal:
        raise EraseRefused(plan.refusal)
    files: list[str] = []
    tickets: list[int] = []
    if conversation is not None:
        files = [
            name
            for name in Attachment.objects.filter(message__conversation=conversation).values_list(
                "file", flat=True
            )
            if name
        ]
        tickets = list(
            Ticket.objects.filter(conversation=conversation).values_list("pk", flat=True)
        )
    WebhookEvent.objects.filter(page_id=page.page_id, psid=psid).delete()
    for delivery, body in holding:
        if body is None:
            WebhookDelivery.objects.filter(pk=delivery.pk).delete()
        else:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(body=body)
    GraphCall.objects.filter(page=page, psid=psid).delete()
    if contact is not None:
        # The conversation, its tickets (their history, tags, rating, notes, queue
        # place), messages (their files' rows, send order) and thread-control history go
        # with it (foreign keys on delete cascade).
        contact.delete()
    transaction.on_commit(lambda: _files_delete(files))
    for ticket_id in tickets:
        # Open inboxes refetch the ticket, find it gone and drop it.
        assert conversation is not None
        realtime.broadcast_on_commit(
            "ticket.updated", page_pk=page.pk, ticket_id=ticket_id, conversation_id=conversation.pk
        )
    return plan


def _counts(
    page: Page,
    psid: str,
    contact: Contact | None,
    conversation: Conversation | None,
    holding: list[tuple[WebhookDelivery, bytes | None]],
) -> dict[str, int]:
    in_conversation = Q(conversation=conversation) if conversation else Q(pk__in=[])
    in_tickets = Q(ticket__conversation=conversation) if conversation else Q(pk__in=[])
    return {
        "contacts": int(contact is not None),
        "conversations": int(conversation is not None),
        "tickets": Ticket.objects.filter(in_conversation).count(),
        "ticket_events": TicketEvent.objects.filter(in_tickets).count(),
        "ticket_tags": TicketTag.objects.filter(in_tickets).count(),
        "ratings": Csat.objects.filter(in_tickets).count(),
        "notes": Note.objects.filter(in_conversation).count(),
        "messages": Message.objects.filter(in_conversation).count(),
        "files": Attachment.objects.filter(
            Q(message__conversation=conversation) if conversation else Q(pk__in=[])
        ).count(),
        "control_transitions": ControlTransition.objects.filter(in_conversation).count(),
        "webhook_events": WebhookEvent.objects.filter(page_id=page.page_id, psid=psid).count(),
        "webhook_deliveries_deleted": sum(1 for _, body in holding if body is None),
        "webhook_deliveries_rewritten": sum(1 for _, body in holding if body is not None),
        "graph_calls": GraphCall.objects.filter(page=page, psid=psid).count(),
    }


def _refusal(
    conversation: Conversation | None, holding: list[tuple[WebhookDelivery, bytes | None]]
) -> str:
    """Why the erase cannot run now, in words; empty when it can."""
    if conversation is not None:
        unclosed = (
            Ticket.objects.filter(conversation=conversation)
            .exclude(status=Ticket.Status.CLOSED)
            .values_list("pk", flat=True)
            .first()
        )
        if unclosed is not None:
            return (
                f"Ticket {unclosed} is not closed: close it (the conversation goes back to "
                "the bot), then erase."
            )
        if conversation.control_state in _HELD:
            state = ControlState(conversation.control_state).label
            return (
                f"The conversation is not back with the bot yet ({state}): wait until it "
                "is, then erase."
            )
        if Message.objects.filter(conversation=conversation, status__in=_SENDING).exists():
            return "A reply to this person is being sent: wait until it is sent or failed."
    if any(_applying(delivery) for delivery, _ in holding):
        return (
            "A webhook with this person's events is still being applied: try again in a "
            "few minutes."
        )
    return ""


def _applying(delivery: WebhookDelivery) -> bool:
    """Still to be applied (the re-drive takes it): received, or failed fewer than
    WEBHOOK_MAX_ATTEMPTS times. Its body is read again when it is applied."""
    if delivery.status == WebhookDelivery.Status.RECEIVED:
        return True
    return (
        delivery.status == WebhookDelivery.Status.FAILED
        and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS
    )


def _deliveries_holding(page_id: str, psid: str) -> Iterator[tuple[WebhookDelivery, bytes | None]]:
    """The stored deliveries that hold an event of the person, each with its body
    rewritten without those events, or None when no other event is left in it.

    Found by the PSID's bytes in the body (a scan: erasing is rare), then checked event
    by event: the PSID is the sender of what the person sends and the recipient of what
    the page sends them. A body that is not JSON but holds the PSID's digits cannot be
    told apart: it is deleted (it never applied, and never will)."""
    needle = psid.encode()
    position = "position(%s in body)" if connection.vendor == "postgresql" else "instr(body, %s)"
    candidates = (
        WebhookDelivery.objects.alias(
            # No input in the SQL itself: the PSID is a parameter.
            hit=RawSQL(position, (needle,), output_field=IntegerField())  # noqa: S611
        )
        .filter(hit__gt=0)
        .only("pk", "status", "attempts", "body")
        .order_by("pk")
    )
    for delivery in candidates.iterator(chunk_size=100):
        try:
            payload = json.loads(bytes(delivery.body))
        except (ValueError, UnicodeDecodeError, RecursionError):
            yield delivery, None
            continue
        found, rest = _without_person(payload, page_id, psid)
        if found:
            yield delivery, rest


def _without_person(payload: Any, page_id: str, psid: str) -> tuple[bool, bytes | None]:
    """Whether the payload holds an event of the person on the page, and the payload
    without those events (None when nothing else is left)."""
    entries = payload.get("entry") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        return False, None
    found = False
    left = 0
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            if key in ("id", "time"):
                continue
            if key in _CHANNELS and isinstance(value, list):
                if str(entry.get("id")) == page_id:
                    kept = [event for event in value if not _persons(event, psid)]
                    if len(kept) != len(value):
                        found = True
                        entry[key] = kept
                    value = kept
                left += len(value)
            else:
                left += 1  # anything else Meta sent stays
    if not found:
        return False, None
    if not left:
        return True, None
    return True, json.dumps(payload, ensure_ascii=True).encode()


def _persons(event: Any, psid: str) -> bool:
    if not isinstance(event, dict):
        return False
    for side in ("sender", "recipient"):
        party = event.get(side)
        if isinstance(party, dict) and str(party.get("id")) == psid:
            return True
    return False


def _files_delete(names: list[str]) -> None:
    """Delete the erased attachments' files (after commit: a rolled-back erase keeps
    them). A file already gone is no error; one that cannot be deleted is logged by
    its storage name (random, not the customer's)."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("privacy: could not delete the stored file %s", name)
