"""The customer context panel through the API: `GET /tickets/{id}/context` (who the
customer is, since when, their earlier tickets with outcome and agent, the agents'
note) and `PUT /tickets/{id}/context/note` (validated, who and when, live to the page's
agents); another team's customer is a 404 that changes and tells nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import Contact, Team, Ticket, TicketEvent
from agents.services.state import now_ms
from tests.support import factories

pytestmark = pytest.mark.django_db

HIDDEN_PAGE_ID = "1000000000000031"


def _client(agent) -> Client:
    return Client(headers={"Authorization": f"Bearer {agent.api_token}"})


def _ms(value: datetime | None) -> datetime | None:
    """A time as the API writes it: to the millisecond."""
    return None if value is None else value.replace(microsecond=value.microsecond // 1000 * 1000)


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@pytest.fixture
def story(page, agent, agent2):
    """Ada's conversation on Acme: a ticket Ana closed as "refunded", one the bot took
    back (closed by nobody) that Bo had, and the open one now; her first message came
    before the helpdesk made her contact. Grace, another customer, has a ticket too."""
    agent.first_name, agent.last_name = "Ana", "Lima"
    agent.save()
    conversation = factories.conversation(page=page)
    contact = conversation.contact
    first_ts = now_ms() - 10 * 86_400_000
    factories.message(conversation=conversation, text="hi bot", timestamp=first_ts)
    opened = timezone.now() - timedelta(days=5)
    first = factories.ticket(
        conversation=conversation,
        status=Ticket.Status.CLOSED,
        assignee=agent,
        closing_note="refunded",
        closed_at=opened + timedelta(hours=1),
    )
    TicketEvent.objects.create(ticket=first, kind=TicketEvent.Kind.CLOSED, actor=agent)
    second = factories.ticket(
        conversation=conversation,
        status=Ticket.Status.CLOSED,
        assignee=agent2,
        closed_at=opened + timedelta(days=1, hours=1),
    )
    now = factories.ticket(conversation=conversation, status=Ticket.Status.OPEN, assignee=agent)
    # opened_at is auto_now_add: put the tickets where the story has them.
    Ticket.objects.filter(pk=first.pk).update(opened_at=opened)
    Ticket.objects.filter(pk=second.pk).update(opened_at=opened + timedelta(days=1))
    grace = factories.ticket(page=page, psid="3000000000000777")
    return {
        "contact": contact,
        "first": Ticket.objects.get(pk=first.pk),
        "second": Ticket.objects.get(pk=second.pk),
        "now": now,
        "grace": grace,
        "first_ts": first_ts,
    }


def test_the_context_of_a_ticket_field_by_field(api, agent, agent2, story, page):
    contact: Contact = story["contact"]
    first, second = story["first"], story["second"]

    response = api.get(f"/api/v1/tickets/{story['now'].pk}/context")

    assert response.status_code == 200, response.content
    body = response.json()
    times = {
        "first_seen": _when(body.pop("first_seen")),
        "earlier": [
            (_when(t.pop("opened_at")), _when(t.pop("closed_at"))) for t in body["earlier_tickets"]
        ],
    }
    assert body == {
        "ticket_id": story["now"].pk,
        "conversation_id": story["now"].conversation_id,
        "contact_id": contact.pk,
        "contact": {"psid": contact.psid, "name": "Ada Lovelace", "profile_pic": ""},
        "page_id": page.page_id,
        "page_name": "Acme",
        "earlier_tickets": [
            {
                "id": second.pk,
                "status": "closed",
                "outcome": "",
                "agent": {"id": agent2.pk, "username": "bo", "name": "bo"},
                "closed_by": None,
            },
            {
                "id": first.pk,
                "status": "closed",
                "outcome": "refunded",
                "agent": {"id": agent.pk, "username": "ana", "name": "Ana Lima"},
                "closed_by": {"id": agent.pk, "username": "ana", "name": "Ana Lima"},
            },
        ],
        "earlier_tickets_more": False,
        "note": {"text": "", "updated_by": None, "updated_at": None},
    }
    # First seen: her first message, which came before the contact was made here.
    assert times["first_seen"] == datetime.fromtimestamp(
        story["first_ts"] / 1000, tz=times["first_seen"].tzinfo
    )
    assert times["earlier"] == [
        (_ms(second.opened_at), _ms(second.closed_at)),
        (_ms(first.opened_at), _ms(first.closed_at)),
    ]


def test_only_earlier_tickets_of_the_same_customer_are_listed(api, story):
    # From the first ticket: nothing came before it; Grace's ticket is never Ada's.
    first = api.get(f"/api/v1/tickets/{story['first'].pk}/context").json()
    assert first["earlier_tickets"] == []
    second = api.get(f"/api/v1/tickets/{story['second'].pk}/context").json()
    assert [t["id"] for t in second["earlier_tickets"]] == [story["first"].pk]
    grace = api.get(f"/api/v1/tickets/{story['grace'].pk}/context").json()
    assert (grace["contact"]["name"], grace["earlier_tickets"]) == ("Ada Lovelace", [])
    assert grace["contact"]["psid"] == "3000000000000777"


def test_first_seen_is_the_contact_when_it_came_before_any_message(api, ticket):
    body = api.get(f"/api/v1/tickets/{ticket.pk}/context").json()
    contact = Contact.objects.get(pk=ticket.conversation.contact_id)
    assert _when(body["first_seen"]) == _ms(contact.created_at)


def test_the_context_costs_the_same_queries_however_many_tickets(
    api, story, django_assert_max_num_queries
):
    url = f"/api/v1/tickets/{story['now'].pk}/context"
    with django_assert_max_num_queries(9):
        assert len(api.get(url).json()["earlier_tickets"]) == 2
    conversation = story["now"].conversation
    for _ in range(5):
        closed = factories.ticket(conversation=conversation, status=Ticket.Status.CLOSED)
        TicketEvent.objects.create(ticket=closed, kind=TicketEvent.Kind.CLOSED)
    later = Ticket.objects.filter(conversation=conversation).order_by("-pk").first()
    with django_assert_max_num_queries(9):
        assert len(api.get(f"/api/v1/tickets/{later.pk}/context").json()["earlier_tickets"]) == 7


# --- the note ----------------------------------------------------------------------------


def _put(client: Client, ticket, text, capture):
    with mock.patch("agents.realtime.broadcast") as sent, capture(execute=True) as callbacks:
        response = client.put(
            f"/api/v1/tickets/{ticket.pk}/context/note",
            json.dumps({"text": text}),
            content_type="application/json",
        )
    return response, [(c.args, c.kwargs) for c in sent.call_args_list], callbacks


def _note(ticket) -> tuple:
    contact = Contact.objects.get(pk=ticket.conversation.contact_id)
    return contact.note, contact.note_updated_by_id, contact.note_updated_at


def test_saving_the_note_records_who_and_when_and_tells_the_page(
    api, agent, ticket, django_capture_on_commit_callbacks
):
    before = timezone.now()
    response, sent, _ = _put(
        api, ticket, "  Prefers French. Refund #88 done.\n", django_capture_on_commit_callbacks
    )

    assert response.status_code == 200, response.content
    body = response.json()
    saved_at = _when(body.pop("updated_at"))
    assert body == {
        "text": "Prefers French. Refund #88 done.",
        "updated_by": {"id": agent.pk, "username": "ana", "name": "ana"},
    }
    note, by, at = _note(ticket)
    assert (note, by, _ms(at)) == ("Prefers French. Refund #88 done.", agent.pk, saved_at)
    assert at is not None and at >= before
    assert sent == [(("contact.updated",), {"conversation_id": ticket.conversation_id})]
    # Every ticket of the customer shows it.
    context = api.get(f"/api/v1/tickets/{ticket.pk}/context").json()
    assert context["note"]["text"] == "Prefers French. Refund #88 done."
    assert context["note"]["updated_by"]["username"] == "ana"


def test_an_empty_note_clears_it(api, ticket, django_capture_on_commit_callbacks):
    _put(api, ticket, "something", django_capture_on_commit_callbacks)
    response, _, _ = _put(api, ticket, "   ", django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert _note(ticket)[0] == ""


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("x" * 2001, "The note is too long: 2,001 characters, at most 2,000."),
        ("nul\x00byte", "The note contains a NUL character, which cannot be stored."),
    ],
)
def test_a_bad_note_is_refused_in_words_and_changes_nothing(
    api, ticket, text, detail, django_capture_on_commit_callbacks
):
    _put(api, ticket, "kept", django_capture_on_commit_callbacks)
    before = _note(ticket)

    response, sent, callbacks = _put(api, ticket, text, django_capture_on_commit_callbacks)

    assert (response.status_code, response.json()) == (400, {"detail": detail})
    assert (_note(ticket), sent, callbacks) == (before, [], [])


def test_a_note_of_2000_characters_is_kept_whole(api, ticket, django_capture_on_commit_callbacks):
    response, _, _ = _put(api, ticket, "é" * 2000, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert _note(ticket)[0] == "é" * 2000


# --- visibility --------------------------------------------------------------------------


@pytest.fixture
def hidden(page, agent, agent2):
    """A ticket on a page that only billing (bo) handles; ana is in sales (Acme)."""
    hidden_page = factories.page(page_id=HIDDEN_PAGE_ID, name="Hidden", access_token="t")
    billing, sales = Team.objects.create(name="billing"), Team.objects.create(name="sales")
    billing.pages.add(hidden_page)
    billing.members.add(agent2)
    sales.pages.add(page)
    sales.members.add(agent)
    return factories.ticket(page=hidden_page, psid="3000000000000991")


def test_another_teams_customer_is_404_and_the_note_unchanged(
    api, api2, hidden, django_capture_on_commit_callbacks
):
    _put(api2, hidden, "billing's note", django_capture_on_commit_callbacks)
    before = _note(hidden)

    got = api.get(f"/api/v1/tickets/{hidden.pk}/context")
    response, sent, callbacks = _put(api, hidden, "overwrite", django_capture_on_commit_callbacks)

    missing = {"detail": f"Ticket {hidden.pk} does not exist."}
    assert (got.status_code, got.json()) == (404, missing)
    assert (response.status_code, response.json()) == (404, missing)
    assert (_note(hidden), sent, callbacks) == (before, [], [])
    assert "billing's note" not in got.content.decode()
    # The team's own agent sees it.
    theirs = api2.get(f"/api/v1/tickets/{hidden.pk}/context").json()
    assert theirs["note"]["text"] == "billing's note"


def test_a_ticket_that_does_not_exist_is_the_same_404(api, ticket):
    got = api.get("/api/v1/tickets/999999/context")
    assert (got.status_code, got.json()) == (404, {"detail": "Ticket 999999 does not exist."})
