"""One person's data (issue 13, point 6): `contact_export` and `contact_erase`."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from agents.models import (
    Attachment,
    Contact,
    ControlState,
    ControlTransition,
    Conversation,
    Csat,
    Message,
    Note,
    NoteMention,
    Tag,
    Ticket,
    TicketEvent,
    TicketTag,
)
from agents.services.state import now_ms
from tests.support import factories, payloads
from webhooks.deletion import id_digest
from webhooks.models import GraphCall, Page, WebhookDelivery, WebhookEvent

pytestmark = pytest.mark.django_db

ADA = payloads.PSID
BOB = "3000000000000099"
OTHER_PAGE_ID = "1000000000000777"
ADA_COUNTS = (
    "contacts: 1, conversations: 1, tickets: 1, ticket events: 1, ticket tags: 1, "
    "ratings: 1, notes: 1, messages: 3, files: 1, control transitions: 1, webhook events: 3, "
    "webhook deliveries deleted: 1, webhook deliveries rewritten: 1, graph calls: 1."
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@dataclass
class Person:
    conversation: Conversation
    ticket: Ticket
    file_name: str


def _stored_delivery(
    *events: dict[str, Any],
    status: str = WebhookDelivery.Status.PROCESSED,
    page_id: str = payloads.PAGE_ID,
) -> WebhookDelivery:
    body = payloads.body_bytes(payloads.delivery(*events, page_id=page_id))
    return WebhookDelivery.objects.create(
        body=body, digest=hashlib.sha256(body).hexdigest(), status=status, attempts=1
    )


def _event_row(
    delivery: WebhookDelivery, raw: dict[str, Any], *, psid: str, page_id: str = payloads.PAGE_ID
) -> WebhookEvent:
    return WebhookEvent.objects.create(
        key=f"mid:{raw['message']['mid']}",
        delivery=delivery,
        kind="message",
        channel="messaging",
        page_id=page_id,
        psid=psid,
        timestamp=raw["timestamp"],
        outcome=WebhookEvent.Outcome.APPLIED,
        payload=raw,
    )


def _person(page: Page, psid: str, name: str, agent) -> Person:
    """A contact with a closed ticket and one of everything stored about a person."""
    ticket = factories.ticket(page=page, psid=psid, status=Ticket.Status.CLOSED, assignee=agent)
    conversation = ticket.conversation
    Contact.objects.filter(pk=conversation.contact_id).update(
        first_name=name, note=f"{name} prefers mornings"
    )
    factories.message(ticket=ticket, text=f"{name}: my order is late")
    factories.message(ticket=ticket, text=f"reply to {name}", author_kind=Message.Author.AGENT)
    file_message = factories.message(
        ticket=ticket,
        text="",
        author_kind=Message.Author.AGENT,
        attachments=[{"type": "file", "url": "", "title": f"{name}-invoice.pdf"}],
    )
    attachment = Attachment(
        message=file_message,
        name=f"{name}-invoice.pdf",
        content_type="application/pdf",
        size=3,
        kind=Attachment.Kind.FILE,
    )
    attachment.file.save(f"{name}.pdf", ContentFile(b"pdf"), save=False)
    attachment.save()
    note = Note.objects.create(
        ticket=ticket,
        conversation=conversation,
        author=agent,
        text=f"{name} is a VIP",
        timestamp=now_ms(),
    )
    NoteMention.objects.create(note=note, agent=agent)
    tag, _ = Tag.objects.get_or_create(name="vip")
    TicketTag.objects.create(ticket=ticket, tag=tag, applied_by=agent)
    Csat.objects.create(
        ticket=ticket,
        status=Csat.Status.ANSWERED,
        asked_at=timezone.now(),
        expires_at=timezone.now(),
        score=4,
        answered_at=timezone.now(),
    )
    TicketEvent.objects.create(ticket=ticket, kind=TicketEvent.Kind.CLOSED, actor=agent)
    ControlTransition.objects.create(
        conversation=conversation,
        from_state=ControlState.AGENT,
        to_state=ControlState.BOT,
        cause=ControlTransition.Cause.API,
    )
    GraphCall.objects.create(
        key=f"profile:{psid}:{page.page_id}",
        kind="profile",
        page=page,
        psid=psid,
        status=GraphCall.Status.SUCCEEDED,
        response={"first_name": name},
    )
    return Person(conversation, ticket, attachment.file.name)


@pytest.fixture
def world(page, agent) -> dict[str, Any]:
    """Ada and Bob on the page; on another page, someone whose PSID is Ada's digits
    (another person: PSIDs are per page). Ada's webhooks: one delivery hers alone, one
    shared with Bob."""
    other_page = factories.page(page_id=OTHER_PAGE_ID, name="Other")
    ada = _person(page, ADA, "Ada", agent)
    bob = _person(page, BOB, "Bob", agent)
    twin = _person(other_page, ADA, "Twin", agent)
    ada_only = payloads.user_message("Ada's secret", ts=payloads.T0, psid=ADA)
    ada_echo = payloads.echo("to Ada", ts=payloads.T0 + 1, psid=ADA)
    ada_shared = payloads.user_message("Ada again", ts=payloads.T0 + 2, psid=ADA)
    bob_shared = payloads.user_message("Bob here", ts=payloads.T0 + 3, psid=BOB)
    twin_raw = payloads.user_message(
        "Twin writes", ts=payloads.T0 + 4, psid=ADA, page_id=OTHER_PAGE_ID
    )
    only = _stored_delivery(ada_only, ada_echo)
    shared = _stored_delivery(ada_shared, bob_shared)
    twins = _stored_delivery(twin_raw, page_id=OTHER_PAGE_ID)
    _event_row(only, ada_only, psid=ADA)
    _event_row(only, ada_echo, psid=ADA)
    _event_row(shared, ada_shared, psid=ADA)
    _event_row(shared, bob_shared, psid=BOB)
    _event_row(twins, twin_raw, psid=ADA, page_id=OTHER_PAGE_ID)
    return {"ada": ada, "bob": bob, "twin": twin, "only": only, "shared": shared, "twins": twins}


def _snapshot() -> dict[str, list[Any]]:
    """Every row of every table a person's data is in."""
    models = (
        Contact,
        Conversation,
        Ticket,
        TicketEvent,
        TicketTag,
        Csat,
        Note,
        NoteMention,
        Message,
        Attachment,
        ControlTransition,
        WebhookEvent,
        WebhookDelivery,
        GraphCall,
    )
    return {m.__name__: sorted(map(repr, m.objects.values())) for m in models}


def _rows_of(conversation: Conversation) -> dict[str, int]:
    return {
        "messages": Message.objects.filter(conversation=conversation).count(),
        "tickets": Ticket.objects.filter(conversation=conversation).count(),
        "notes": Note.objects.filter(conversation=conversation).count(),
        "csat": Csat.objects.filter(ticket__conversation=conversation).count(),
        "tags": TicketTag.objects.filter(ticket__conversation=conversation).count(),
        "transitions": ControlTransition.objects.filter(conversation=conversation).count(),
        "files": Attachment.objects.filter(message__conversation=conversation).count(),
    }


def _erase(*args: str, capture) -> str:
    out = StringIO()
    with capture(execute=True):
        call_command("contact_erase", *args, stdout=out)
    return out.getvalue()


def _export(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("contact_export", *args, stdout=out)
    return json.loads(out.getvalue())


# --- export ---------------------------------------------------------------------------


def test_export_holds_exactly_the_persons_data(world):
    document = _export("--page-id", payloads.PAGE_ID, "--psid", ADA)

    assert document["page"] == {"page_id": payloads.PAGE_ID, "name": "Acme"}
    assert document["contact"]["psid"] == ADA
    assert document["contact"]["first_name"] == "Ada"
    assert document["contact"]["agents_note"] == "Ada prefers mornings"
    assert [m["text"] for m in document["messages"]] == [
        "Ada: my order is late",
        "reply to Ada",
        "",
    ]
    assert document["messages"][2]["file"] == {
        "name": "Ada-invoice.pdf",
        "content_type": "application/pdf",
        "size": 3,
        "kind": "file",
    }
    assert document["messages"][2]["attachments"] == [{"type": "file", "title": "Ada-invoice.pdf"}]
    [ticket] = document["tickets"]
    assert ticket["id"] == world["ada"].ticket.pk
    assert ticket["tags"] == ["vip"]
    assert ticket["rating"]["score"] == 4
    assert [n["text"] for n in ticket["internal_notes"]] == ["Ada is a VIP"]
    assert [h["kind"] for h in ticket["history"]] == ["closed"]
    assert [(t["from"], t["to"]) for t in document["control_transitions"]] == [("agent", "bot")]
    assert sorted(e["payload"]["message"]["text"] for e in document["webhook_events"]) == [
        "Ada again",
        "Ada's secret",
        "to Ada",
    ]
    assert [c["kind"] for c in document["graph_calls"]] == ["profile"]
    text = json.dumps(document)
    for foreign in ("Bob", "Twin", "page-token-secret", "pw-12345678", "pbkdf2", "md5$"):
        assert foreign not in text


def test_export_to_a_file(world, tmp_path):
    target = tmp_path / "ada.json"
    err = StringIO()
    call_command(
        "contact_export",
        "--page-id",
        payloads.PAGE_ID,
        "--psid",
        ADA,
        "--output",
        str(target),
        stderr=err,
    )

    assert json.loads(target.read_text())["contact"]["psid"] == ADA
    assert err.getvalue().strip() == f"Wrote the export to {target}."


def test_export_of_nobody_or_an_unknown_page_is_refused_in_words(page):
    with pytest.raises(CommandError, match="Nothing is stored about PSID 42 on page"):
        _export("--page-id", payloads.PAGE_ID, "--psid", "42")
    with pytest.raises(CommandError, match="No page with id 999 is connected"):
        _export("--page-id", "999", "--psid", ADA)
    with pytest.raises(CommandError, match="--psid"):
        _export("--page-id", payloads.PAGE_ID)


# --- erase ----------------------------------------------------------------------------


def test_erase_removes_exactly_the_persons_data(
    world, media, django_capture_on_commit_callbacks, caplog
):
    ada, bob, twin = world["ada"], world["bob"], world["twin"]
    bob_rows, twin_rows = _rows_of(bob.conversation), _rows_of(twin.conversation)
    others_events = sorted(
        WebhookEvent.objects.exclude(page_id=payloads.PAGE_ID, psid=ADA).values_list(
            "pk", flat=True
        )
    )
    shared_digest = world["shared"].digest
    assert (media / ada.file_name).exists()

    with caplog.at_level(logging.INFO, logger="agents.services.privacy"):
        output = _erase(
            "--page-id",
            payloads.PAGE_ID,
            "--psid",
            ADA,
            "--yes",
            capture=django_capture_on_commit_callbacks,
        )

    assert output.startswith("Erased. " + ADA_COUNTS)
    assert not Contact.objects.filter(page__page_id=payloads.PAGE_ID, psid=ADA).exists()
    assert _rows_of(ada.conversation) == dict.fromkeys(_rows_of(ada.conversation), 0)
    assert not NoteMention.objects.filter(note__conversation=ada.conversation).exists()
    assert not (media / ada.file_name).exists()
    # Everybody else's rows and files are as they were.
    assert _rows_of(bob.conversation) == bob_rows
    assert _rows_of(twin.conversation) == twin_rows
    assert (media / bob.file_name).exists() and (media / twin.file_name).exists()
    assert sorted(WebhookEvent.objects.values_list("pk", flat=True)) == others_events
    assert set(GraphCall.objects.values_list("psid", "page__page_id")) == {
        (BOB, payloads.PAGE_ID),
        (ADA, OTHER_PAGE_ID),
    }
    # The delivery that was Ada's alone is gone; the shared one holds Bob's event only,
    # under the digest of what Meta sent (a byte-identical redelivery is still ignored).
    assert not WebhookDelivery.objects.filter(pk=world["only"].pk).exists()
    shared = WebhookDelivery.objects.get(pk=world["shared"].pk)
    assert shared.digest == shared_digest
    body = json.loads(bytes(shared.body))
    assert [e["message"]["text"] for e in body["entry"][0]["messaging"]] == ["Bob here"]
    assert ADA not in bytes(shared.body).decode()
    assert WebhookDelivery.objects.filter(pk=world["twins"].pk).exists()
    # The audit line: the page, a digest of the PSID, the counts; never the PSID or text.
    [line] = [r.getMessage() for r in caplog.records if r.name == "agents.services.privacy"]
    assert payloads.PAGE_ID in line and id_digest(ADA)[:16] in line and '"messages": 3' in line
    assert ADA not in line and "Ada" not in line

    # Idempotent: a second erase finds nothing.
    again = _erase(
        "--page-id",
        payloads.PAGE_ID,
        "--psid",
        ADA,
        "--yes",
        capture=django_capture_on_commit_callbacks,
    )
    assert again.strip() == "Nothing is stored about this person on this page: nothing to erase."


def test_without_yes_it_says_what_would_go_and_changes_nothing(
    world, media, django_capture_on_commit_callbacks
):
    before = _snapshot()

    output = _erase(
        "--page-id", payloads.PAGE_ID, "--psid", ADA, capture=django_capture_on_commit_callbacks
    )

    assert output.splitlines() == [
        "Would erase: " + ADA_COUNTS,
        "Nothing was changed. Run again with --yes to erase.",
    ]
    assert _snapshot() == before
    assert (media / world["ada"].file_name).exists()


def test_an_open_ticket_refuses_the_erase_and_names_it(page, django_capture_on_commit_callbacks):
    ticket = factories.ticket(page=page, psid=ADA)  # waiting; the helpdesk has the thread
    factories.message(ticket=ticket, text="help")
    before = _snapshot()

    with pytest.raises(CommandError, match=f"Nothing was erased. Ticket {ticket.pk} is not closed"):
        _erase(
            "--page-id",
            payloads.PAGE_ID,
            "--psid",
            ADA,
            "--yes",
            capture=django_capture_on_commit_callbacks,
        )

    assert _snapshot() == before
    dry = _erase(
        "--page-id", payloads.PAGE_ID, "--psid", ADA, capture=django_capture_on_commit_callbacks
    )
    assert f"It would be refused now: Ticket {ticket.pk} is not closed" in dry


def test_a_conversation_the_helpdesk_still_holds_refuses_the_erase(
    page, django_capture_on_commit_callbacks
):
    factories.ticket(page=page, psid=ADA, status=Ticket.Status.CLOSED)
    Conversation.objects.update(control_state=ControlState.RETURNING)

    with pytest.raises(CommandError, match="not back with the bot yet"):
        _erase(
            "--page-id",
            payloads.PAGE_ID,
            "--psid",
            ADA,
            "--yes",
            capture=django_capture_on_commit_callbacks,
        )

    assert Contact.objects.filter(psid=ADA).exists()


def test_a_webhook_still_to_apply_refuses_the_erase(page, django_capture_on_commit_callbacks):
    factories.ticket(page=page, psid=ADA, status=Ticket.Status.CLOSED)
    _stored_delivery(
        payloads.user_message("hi", ts=payloads.T0, psid=ADA),
        status=WebhookDelivery.Status.RECEIVED,
    )
    before = _snapshot()

    with pytest.raises(CommandError, match="still being applied"):
        _erase(
            "--page-id",
            payloads.PAGE_ID,
            "--psid",
            ADA,
            "--yes",
            capture=django_capture_on_commit_callbacks,
        )

    assert _snapshot() == before


def test_an_unknown_person_has_nothing_to_erase(page, django_capture_on_commit_callbacks):
    before = _snapshot()

    output = _erase(
        "--page-id",
        payloads.PAGE_ID,
        "--psid",
        "42",
        "--yes",
        capture=django_capture_on_commit_callbacks,
    )

    assert output.strip() == "Nothing is stored about this person on this page: nothing to erase."
    assert _snapshot() == before


def test_bad_input_is_refused_in_words(page, django_capture_on_commit_callbacks):
    with pytest.raises(CommandError, match="No page with id 999 is connected"):
        _erase(
            "--page-id", "999", "--psid", ADA, "--yes", capture=django_capture_on_commit_callbacks
        )
    with pytest.raises(CommandError, match="The PSID is empty"):
        _erase(
            "--page-id",
            payloads.PAGE_ID,
            "--psid",
            " ",
            "--yes",
            capture=django_capture_on_commit_callbacks,
        )
    with pytest.raises(CommandError, match="--page-id"):
        _erase("--psid", ADA, capture=django_capture_on_commit_callbacks)
