"""`manage.py demo_seed`, which `make run` calls: the demo page and agent, one API token
that every run prints again, and no ticket of a user the emulator no longer has."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from agents.auth import token_create
from agents.models import (
    ApiToken,
    Contact,
    Conversation,
    Message,
    OfficeHours,
    PageRouting,
    SavedReply,
    Team,
    TeamRouting,
    Ticket,
)
from tests.support import factories
from webhooks.emulator import Emulator, EmulatorConfig
from webhooks.models import Page

pytestmark = pytest.mark.django_db

GONE = "4999999999999999"  # a user of an earlier emulator world


def seed(*args: str) -> list[str]:
    out = StringIO()
    call_command("demo_seed", *args, stdout=out)
    return out.getvalue().splitlines()


def token_of(lines: list[str]) -> str:
    [token] = [line.removeprefix("API token: ") for line in lines if line.startswith("API token")]
    return token


@pytest.fixture
def emulator():
    with Emulator(EmulatorConfig.demo(port=0, helpdesk_callback_url=None)) as emulator:
        yield emulator


def test_two_runs_make_one_token_and_print_the_same_one():
    first = seed()
    second = seed()

    assert token_of(first) == token_of(second)
    demo = get_user_model().objects.get(username="demo")
    assert ApiToken.objects.filter(user=demo).count() == 1
    assert (demo.is_staff, demo.is_superuser, demo.check_password("demo-password")) == (
        True,
        True,
        True,
    )
    response = Client().get(
        "/api/v1/queues", headers={"Authorization": f"Bearer {token_of(second)}"}
    )
    assert response.status_code == 200
    assert second == [
        "Demo page: Demo Page (1000000000000001), bot app 200000000000002.",
        "Ratings: closing a ticket asks the customer for a rating (1 to 5), and the bot gets "
        "the conversation back after the answer or 10 minutes.",
        "Demo login: demo / demo-password (admin).",
        f"API token: {token_of(first)}",
        "Routing: Demo Page goes to the Support team (auto-assignment, 3 open tickets per "
        "agent, Monday to Friday 9:00-18:00 Europe/Paris); a second team, Billing, has its "
        "own settings.",
    ]


def test_the_tokens_earlier_runs_made_are_removed_and_others_agents_kept():
    seed()
    demo = get_user_model().objects.get(username="demo")
    for _ in range(3):  # what `make run` used to do: a new token each run
        token_create(user=demo)
    ana = factories.agent("ana")

    lines = seed()

    assert "Removed 3 older API token(s) of demo." in lines
    assert ApiToken.objects.filter(user=demo).count() == 1
    assert ApiToken.objects.filter(user=ana).count() == 1


def test_contacts_the_emulator_does_not_know_are_removed_with_their_tickets(emulator):
    seed()
    page = Page.objects.get(page_id="1000000000000001")
    ada = next(u for u in emulator.platform.users.values() if u.first_name == "Ada")
    kept = factories.ticket(page=page, psid=ada.psid)
    gone = factories.ticket(page=page, psid=GONE)
    factories.message(ticket=gone, text="from an earlier world")
    other_page = factories.page(page_id="1000000000000002", name="Other")
    elsewhere = factories.ticket(page=other_page, psid=GONE)

    lines = seed("--emulator-url", emulator.base_url)

    assert (
        "The emulator does not know 1 contact(s) of Demo Page (its state was reset): removed "
        f"them with their conversations and tickets (PSIDs {GONE})."
    ) in lines
    assert list(Ticket.objects.order_by("pk")) == [kept, elsewhere]
    assert not Contact.objects.filter(page=page, psid=GONE).exists()
    assert not Conversation.objects.filter(contact__page=page, contact__psid=GONE).exists()
    assert not Message.objects.filter(text="from an earlier world").exists()
    # Every ticket left on the demo page is a user the emulator has.
    users = {u["psid"] for u in emulator.state()["users"]}
    assert (
        set(
            Ticket.objects.filter(conversation__page=page).values_list(
                "conversation__contact__psid", flat=True
            )
        )
        <= users
    )


def test_an_emulator_that_does_not_answer_is_a_clear_error_and_changes_nothing(emulator):
    url = emulator.base_url
    emulator.stop()

    with pytest.raises(CommandError, match=rf"^the emulator at {url} did not say who its users"):
        seed("--emulator-url", url)

    assert not Page.objects.exists()
    assert not get_user_model().objects.exists()


def test_the_demo_page_asks_for_a_rating_and_keeps_an_admins_texts():
    seed()
    page = Page.objects.get(page_id="1000000000000001")
    assert page.csat_enabled is True
    assert page.csat_question == "How did we do? Tap a number: 1 is poor, 5 is great."
    Page.objects.filter(pk=page.pk).update(csat_question="Rate us!", csat_wait_minutes=3)
    seed()
    page.refresh_from_db()
    assert (page.csat_enabled, page.csat_question, page.csat_wait_minutes) == (True, "Rate us!", 3)


def test_the_demo_has_saved_replies_made_once():
    first = seed()
    seed()
    assert "Saved replies: type / in the reply box (e.g. /refund)." in first
    demo = get_user_model().objects.get(username="demo")
    rows = Client().get(
        "/api/v1/saved-replies", headers={"Authorization": f"Bearer {token_of(first)}"}
    )
    assert [(r["shortcut"], r["scope"]) for r in rows.json()] == [
        ("bye", "personal"),
        ("hi", "everyone"),
        ("order", "everyone"),
        ("refund", "everyone"),
    ]
    assert SavedReply.objects.filter(created_by=demo).count() == 4


def test_the_demo_routes_its_page_to_a_team_with_office_hours_and_has_a_second_team():
    lines = seed()
    seed()  # idempotent

    assert sorted(Team.objects.values_list("name", flat=True)) == ["Billing", "Support"]
    support = Team.objects.get(name="Support")
    assert list(support.members.values_list("username", flat=True)) == ["demo"]
    assert PageRouting.objects.get(page=Page.objects.get()).team == support
    routing = TeamRouting.objects.get(team=support)
    assert (routing.auto_assign, routing.capacity, routing.time_zone) == (
        True,
        3,
        "Europe/Paris",
    )
    assert OfficeHours.objects.filter(routing=routing).count() == 5
    assert TeamRouting.objects.get(team__name="Billing").auto_assign is False
    assert lines[-1].startswith("Routing: Demo Page goes to the Support team")
