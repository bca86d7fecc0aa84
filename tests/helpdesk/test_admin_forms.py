"""Every admin form of every registered model, walked with empty and bad input.

Setup (pages, triggers, teams, agents, permission groups) is added and changed in
admin: bad input gets the form back with its errors (200) and changes nothing, never a
500. Everything else is made by the product itself (tickets by the handover, history
by what happens): admin shows it and refuses to add or change it (403), and history
cannot be deleted either.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Model
from django.utils import timezone

from agents.models import (
    Csat,
    Holiday,
    OfficeHours,
    PageRouting,
    Persona,
    Tag,
    Team,
    TeamRouting,
    Ticket,
    TicketTag,
)
from agents.services import attachments, notes, personas, presence, replies
from agents.services.throttle import login_failure_record
from tests.support import factories, payloads
from webhooks.models import DataDeletionRequest

pytestmark = pytest.mark.django_db


def _label(model: type[Model]) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


REGISTERED = sorted(_label(model) for model in admin.site._registry)

# What admins set up: added and changed in admin.
SETUP = {
    "webhooks.page",
    "agents.trigger",
    "agents.team",
    "auth.user",
    "auth.group",
    "agents.agentprofile",
    "agents.tag",
    "agents.savedreply",
    # Issue 11: routing, office hours, holidays.
    "agents.teamrouting",
    "agents.pagerouting",
    "agents.officehours",
    "agents.holiday",
}
# Deleting one of these undoes nothing the product relies on: a token revoked, a
# sign-in block lifted, a page, trigger, team, agent or group removed. (A tag is
# deactivated, never deleted: tickets and their history keep it.)
DELETABLE = (SETUP - {"agents.tag"}) | {"agents.apitoken", "agents.authfailures"}
# (A saved reply deleted is gone from the pickers: nothing refers to it.)

# A team routing's add form as a browser posts it (its inlines' management forms).
ROUTING: dict[str, Any] = {
    "capacity": 3,
    "time_zone": "UTC",
    "queue_notice_after_seconds": 300,
    "queue_notice_interval_seconds": 600,
    "office_hours-TOTAL_FORMS": 0,
    "office_hours-INITIAL_FORMS": 0,
    "holidays-TOTAL_FORMS": 0,
    "holidays-INITIAL_FORMS": 0,
}

# Bad input for every add form, with the error it must answer.
BAD_ADDS: dict[str, list[tuple[dict[str, Any], str]]] = {
    "webhooks.page": [
        (
            {"page_id": "acme", "name": "Acme 2", "access_token": "t", "bot_app_id": "2"},
            "The page id must be numeric",
        ),
        (
            {"page_id": "77", "name": "Acme 2", "access_token": "t", "bot_app_id": "x1"},
            "The bot app id must be numeric",
        ),
        (
            {"page_id": "77", "name": "Acme 2", "access_token": "", "bot_app_id": "2"},
            "A new page needs its Page access token.",
        ),
        (
            {"page_id": "77", "name": "Acme 2", "access_token": "t", "bot_app_id": payloads.APP_ID},
            "this helpdesk&#x27;s own app id",
        ),
        (
            {"page_id": payloads.PAGE_ID, "name": "Again", "access_token": "t", "bot_app_id": "2"},
            "already exists",
        ),
    ],
    "agents.trigger": [
        ({"page": "999999", "kind": "keyword", "value": "help"}, "Select a valid choice"),
        ({"page": "{page}", "kind": "shouting", "value": "help"}, "Select a valid choice"),
        ({"page": "{page}", "kind": "keyword", "value": "   "}, "This field is required."),
        ({"page": "{page}", "kind": "keyword", "value": "talk to a human"}, "already exists"),
    ],
    "agents.team": [
        ({"name": "Billing"}, "already exists"),
        ({"name": "x" * 101}, "at most 100 characters"),
        ({"name": "Sales", "pages": ["999999"]}, "Select a valid choice"),
    ],
    "auth.user": [
        (
            {"username": "cy", "password1": "pw-12345678", "password2": "pw-87654321"},
            "The two password fields didn",
        ),
        ({"username": "ana", "password1": "pw-12345678", "password2": "pw-12345678"}, "exists"),
        ({"username": "no spaces", "password1": "p", "password2": "p"}, "Enter a valid username"),
    ],
    "auth.group": [({"name": "Supervisors"}, "already exists")],
    "agents.agentprofile": [
        ({"user": "{agent}", "picture_url": "http://pics.example/a.png"}, "public https://"),
        ({"user": "{agent}", "public_name": "x" * 101}, "at most 100 characters"),
    ],
    "agents.savedreply": [
        ({"title": "Hi", "shortcut": "two words", "body": "x", "owner": "{agent}"}, "is one word"),
    ],
    "agents.tag": [
        ({"name": "REFUND", "colour": "red"}, "A tag with this name already exists"),
        ({"name": "x" * 41, "colour": "red"}, "at most 40 characters"),
        ({"name": "vip", "colour": "gold"}, "Select a valid choice"),
    ],
    "agents.teamrouting": [
        ({"team": "999999", **ROUTING}, "Select a valid choice"),
        ({"team": "{free_team}", **ROUTING, "time_zone": "Mars/Olympus"}, "is not a time zone"),
        ({"team": "{free_team}", **ROUTING, "capacity": 0}, "greater than or equal to 1"),
    ],
    "agents.pagerouting": [
        ({"page": "{page}", "team": "{free_team}", "when_unavailable": "wait"}, "does not list"),
        (
            {"page": "{page}", "when_unavailable": "wait", "closed_message": "Back {{when}}"},
            "Only {opens} may be written in braces",
        ),
    ],
    "agents.officehours": [
        (
            {"routing": "{routing}", "weekday": 0, "opens": "17:00", "closes": "09:00"},
            "The closing time must be after the opening time",
        ),
        (
            {"routing": "{routing}", "weekday": 9, "opens": "9:00", "closes": "17:00"},
            "valid choice",
        ),
    ],
    "agents.holiday": [({"routing": "{routing}", "date": "soon"}, "Enter a valid date")],
}


@pytest.fixture
def world(page, deliver, clock, fake_graph, settings, tmp_path) -> dict[str, Any]:
    """At least one row of every registered model, mostly made the way the product
    makes them: a customer talks to the bot, control comes to the helpdesk (the page's
    team, Billing, queues the ticket)."""
    billing = Team.objects.create(name="Billing")
    billing.pages.add(page)
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    deliver(payloads.pass_control(ts=clock(), metadata="handover"))
    ana = factories.agent("ana")
    billing.members.add(ana)  # she works on the page (its team's): she may reply and note
    personas.profile_update(ana, public_name="Ana from Acme", picture_url="")
    Persona.objects.create(page=page, agent=ana, persona_id="77", name="Ana from Acme")
    Team.objects.create(name="Sales")  # a team without routing yet
    routing_row = TeamRouting.objects.create(team=billing)
    OfficeHours.objects.create(routing=routing_row, weekday=0, opens=time(9), closes=time(17))
    Holiday.objects.create(routing=routing_row, date=date(2026, 12, 25), name="Christmas")
    PageRouting.objects.create(page=page)
    presence.socket_open(user_id=ana.pk, channel_name="admin-test")
    presence.presence_set(user=ana, status="away")
    Group.objects.create(name="Supervisors")
    refund = Tag.objects.create(name="refund", colour=Tag.Colour.RED)
    TicketTag.objects.create(ticket=Ticket.objects.get(), tag=refund, applied_by=ana)
    login_failure_record(username="mallory", address="127.0.0.9")
    now = timezone.now()  # a rating asked at the close (CSAT), as agents.services.csat makes it
    Csat.objects.create(ticket=Ticket.objects.get(), asked_at=now, expires_at=now, score=4)
    # A reply with a caption and a file (issue 11, point 7): an attachment, a send order.
    settings.MEDIA_ROOT = str(tmp_path / "media")
    attachments.ticket_reply_files(
        ticket_id=Ticket.objects.get().pk,
        user=ana,
        files=[SimpleUploadedFile("a.pdf", b"%PDF-1.4", content_type="application/pdf")],
        text="Here",
    )
    # Saved replies and a note that mentions an agent (issue 11, points 1 and 2).
    billing.members.add(factories.agent("bo"))
    notes.note_add(ticket_id=Ticket.objects.get().pk, user=ana, text="Refund? @bo")
    replies.saved_reply_create(user=ana, title="Greeting", shortcut="hi", body="Hi {first_name}")
    # A data deletion request Meta sent, done (issue 13, point 6).
    DataDeletionRequest.objects.create(
        confirmation_code="0123456789abcdef01234567",
        user_digest="0" * 64,
        status=DataDeletionRequest.Status.DONE,
        counts={"contacts": 0},
    )
    empty = [label for label in REGISTERED if not _model(label).objects.exists()]
    assert empty == []
    return {"page": page, "agent": ana, "team": billing, "routing": routing_row}


def _model(label: str) -> type[Model]:
    return next(model for model in admin.site._registry if _label(model) == label)


def _url(label: str, view: str, pk: Any = None) -> str:
    app, name = label.split(".")
    return f"/admin/{app}/{name}/" + (f"{pk}/{view}/" if pk is not None else f"{view}/")


def _changelist(label: str) -> str:
    app, name = label.split(".")
    return f"/admin/{app}/{name}/"


def _snapshot(label: str) -> list[dict[str, Any]]:
    return list(_model(label).objects.order_by("pk").values())


def _errors(html: str) -> bool:
    return 'class="errornote"' in html and "errorlist" in html


def test_every_registered_model_has_a_policy():
    assert set(BAD_ADDS) == SETUP
    assert set(REGISTERED) >= SETUP


@pytest.mark.parametrize("label", REGISTERED)
def test_the_add_form_validates_or_is_refused(label, world, admin_client):
    before = _snapshot(label)

    shown = admin_client.get(_url(label, "add"))
    empty = admin_client.post(_url(label, "add"), {})

    if label in SETUP:
        assert shown.status_code == 200
        assert empty.status_code == 200
        assert _errors(empty.content.decode())
    else:
        assert (shown.status_code, empty.status_code) == (403, 403)
    assert _snapshot(label) == before


@pytest.mark.parametrize(
    ("label", "data", "error"),
    [(label, data, error) for label, cases in BAD_ADDS.items() for data, error in cases],
)
def test_bad_values_in_an_add_form_answer_the_form_with_the_error(
    label, data, error, world, admin_client
):
    data = {
        key: value.format(
            page=world["page"].pk,
            agent=world["agent"].pk,
            team=world["team"].pk,
            routing=world["routing"].pk,
            free_team=Team.objects.get(name="Sales").pk,
        )
        if isinstance(value, str)
        else value
        for key, value in data.items()
    }
    before = _snapshot(label)

    response = admin_client.post(_url(label, "add"), data)

    assert response.status_code == 200
    html = response.content.decode()
    assert _errors(html)
    assert error in html
    assert _snapshot(label) == before


@pytest.mark.parametrize("label", REGISTERED)
def test_the_change_form_validates_or_is_view_only(label, world, admin_client):
    first = _model(label).objects.order_by("pk").first()
    before = _snapshot(label)

    shown = admin_client.get(_url(label, "change", first.pk))
    empty = admin_client.post(_url(label, "change", first.pk), {})

    assert shown.status_code == 200
    if label in SETUP:
        assert empty.status_code == 200
        assert _errors(empty.content.decode())
    else:
        assert 'name="_save"' not in shown.content.decode()
        assert empty.status_code == 403
    assert _snapshot(label) == before


@pytest.mark.parametrize("label", REGISTERED)
def test_only_setup_tokens_and_sign_in_blocks_can_be_deleted(label, world, admin_client):
    first = _model(label).objects.order_by("pk").first()
    before = _snapshot(label)

    confirm = admin_client.get(_url(label, "delete", first.pk))
    listing = admin_client.get(_changelist(label))

    if label in DELETABLE:
        assert confirm.status_code == 200
        assert "delete_selected" in listing.content.decode()
    else:
        assert confirm.status_code == 403
        assert (
            admin_client.post(_url(label, "delete", first.pk), {"post": "yes"}).status_code == 403
        )
        assert "delete_selected" not in listing.content.decode()
    assert _snapshot(label) == before
