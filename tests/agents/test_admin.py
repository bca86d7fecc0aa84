"""Everything the loop stores is visible in Django admin, and the Page token never is.
Tickets change there only through the services: the ticket list's actions."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from agents.consumers import InboxConsumer
from agents.models import ControlState, Conversation, Team, Ticket, TicketEvent
from tests.support import factories, payloads
from webhooks.models import Page

pytestmark = pytest.mark.django_db


def test_every_model_of_both_apps_is_registered():
    missing = [
        m.__name__
        for app in ("agents", "webhooks")
        for m in apps.get_app_config(app).get_models()
        if not admin.site.is_registered(m)
    ]
    assert missing == []


def test_admin_pages_show_the_loop_and_never_the_token(client, page, deliver, clock, fake_graph):
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    deliver(payloads.pass_control(ts=clock(), metadata="handover"))
    ticket = Ticket.objects.get()
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")
    client.force_login(root)
    for app in ("agents", "webhooks"):
        for model in apps.get_app_config(app).get_models():
            name = model._meta.model_name
            listing = client.get(f"/admin/{app}/{name}/")
            assert listing.status_code == 200, name
            assert b"page-token-secret" not in listing.content, name
            first = model.objects.first()
            if first is not None:
                detail = client.get(f"/admin/{app}/{name}/{first.pk}/change/")
                assert detail.status_code == 200, name
                assert b"page-token-secret" not in detail.content, name
    # The page's own admin, searched too: its name is shown, its token never.
    for response in (
        client.get("/admin/webhooks/page/"),
        client.get(f"/admin/webhooks/page/{page.pk}/change/"),
        client.get("/admin/webhooks/page/", {"q": "Acme"}),
    ):
        assert response.status_code == 200
        assert b"Acme" in response.content
        assert b"page-token-secret" not in response.content
    shown = client.get(f"/admin/agents/ticket/{ticket.pk}/change/").content.decode()
    assert "handover" in shown and "opened" in shown
    transitions = client.get("/admin/agents/conversation/").content.decode()
    assert "helpdesk owns the thread" in transitions


# --- Tickets change through the services only ------------------------------------------

CHANGELIST = "/admin/agents/ticket/"


@pytest.fixture
def handed_over(page, deliver, clock, fake_graph):
    """A waiting ticket, through the pipeline: the customer talks to the bot, the bot
    passes the thread to the helpdesk."""
    deliver(payloads.user_message("I need help", ts=clock()), channel="standby")
    deliver(payloads.pass_control(ts=clock(), metadata="help"))
    return Ticket.objects.get()


def _action(admin_client, action, tickets, **data):
    return admin_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [t.pk for t in tickets], **data},
        follow=True,
    )


def _said(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _events(ticket) -> list[tuple[str, str | None, str]]:
    return [
        (e.kind, e.actor.username if e.actor else None, e.detail)
        for e in TicketEvent.objects.filter(ticket=ticket)
    ]


def test_closing_in_admin_hands_the_conversation_back_to_the_bot(
    admin_client, handed_over, fake_graph, django_capture_on_commit_callbacks
):
    shown = _action(admin_client, "close_and_hand_back", [handed_over])
    assert shown.status_code == 200
    html = shown.content.decode()
    assert f"Ticket {handed_over.pk}: Ada Lovelace on Acme, waiting" in html
    assert 'name="outcome"' in html and 'value="resolved"' in html
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    handed_over.refresh_from_db()
    assert handed_over.status == Ticket.Status.WAITING

    with django_capture_on_commit_callbacks(execute=True):
        response = _action(
            admin_client,
            "close_and_hand_back",
            [handed_over],
            confirm="yes",
            outcome="solved by phone",
            closing_message="",
        )

    assert _said(response) == [
        f"Ticket {handed_over.pk} closed; the conversation is being handed back to the bot."
    ]
    handed_over.refresh_from_db()
    assert (handed_over.status, handed_over.closing_note) == ("closed", "solved by phone")
    assert _events(handed_over)[1:] == [("closed", "admin", "solved by phone")]
    passes = fake_graph.calls_to("/me/pass_thread_control")
    assert len(passes) == 1
    assert passes[0].body["recipient"] == {"id": payloads.PSID}
    assert passes[0].body["target_app_id"] == payloads.BOT_APP_ID
    assert json.loads(passes[0].body["metadata"])["outcome"] == "solved by phone"
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_app_id) == (
        ControlState.BOT,
        payloads.BOT_APP_ID,
    )
    assert fake_graph.sends() == []  # no closing message was asked for


def test_closing_says_per_ticket_what_happened_and_refuses_a_closed_one(
    admin_client, page, fake_graph, django_capture_on_commit_callbacks
):
    closed = factories.ticket(page=page, psid="31", status=Ticket.Status.CLOSED)
    taken = factories.ticket(
        page=page,
        psid="32",
        conversation=factories.conversation(page=page, psid="32", control_state=ControlState.TAKEN),
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = _action(
            admin_client, "close_and_hand_back", [taken, closed], confirm="yes", outcome="done"
        )

    assert _said(response) == [
        f"Ticket {closed.pk} not closed: This ticket is already closed.",
        f"Ticket {taken.pk} closed. Nothing to hand back: the helpdesk did not own the "
        "conversation (taken by another app).",
    ]
    assert _events(closed) == []
    assert _events(taken) == [("closed", "admin", "done")]
    assert fake_graph.calls == []


def test_a_closing_message_the_helpdesk_cannot_send_refuses_the_close(
    admin_client, page, fake_graph, django_capture_on_commit_callbacks
):
    ticket = factories.ticket(
        page=page, conversation=factories.conversation(page=page, control_state=ControlState.BOT)
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = _action(
            admin_client,
            "close_and_hand_back",
            [ticket],
            confirm="yes",
            outcome="resolved",
            closing_message="Bye!",
        )

    assert _said(response) == [
        f"Ticket {ticket.pk} not closed: The closing message cannot be sent: The bot owns "
        "this conversation; request control to reply."
    ]
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.WAITING
    assert (_events(ticket), fake_graph.calls) == ([], [])


def test_a_bad_outcome_shows_the_form_again_and_closes_nothing(admin_client, handed_over):
    response = _action(
        admin_client, "close_and_hand_back", [handed_over], confirm="yes", outcome=" "
    )

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    handed_over.refresh_from_db()
    assert handed_over.status == Ticket.Status.WAITING


def test_the_ticket_page_cannot_change_its_state(admin_client, handed_over, fake_graph, agent):
    url = f"/admin/agents/ticket/{handed_over.pk}/change/"
    shown = admin_client.get(url).content.decode()
    events_before = _events(handed_over)
    # What a browser would send from that page, with the status and assignee changed.
    data = {**_form_fields(shown), "status": "closed", "assignee": str(agent.pk), "_save": "Save"}

    response = admin_client.post(url, data)

    assert response.status_code == 403
    assert '<select name="status"' not in shown and 'name="_save"' not in shown
    # What it offers instead: the list's actions, for this ticket.
    assert re.findall(r'<button type="submit" name="action" value="(\w+)"', shown) == [
        "close_and_hand_back",
        "assign",
        "request_control",
    ]
    assert f'<input type="hidden" name="_selected_action" value="{handed_over.pk}">' in shown
    assert 'formaction="/admin/agents/ticket/"' in shown
    handed_over.refresh_from_db()
    assert (handed_over.status, handed_over.assignee) == ("waiting", None)
    assert _events(handed_over) == events_before
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    assert admin_client.get("/admin/agents/ticket/add/").status_code == 403


def _form_fields(html: str) -> dict[str, str]:
    """The named fields of a page's change form and their current values."""
    fields: dict[str, str] = {}

    class Form(HTMLParser):
        select: str | None = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "input" and a.get("name") and a.get("type") not in ("submit", "checkbox"):
                fields[a["name"]] = a.get("value") or ""
            elif tag == "input" and a.get("type") == "checkbox" and "checked" in a:
                fields[a["name"]] = "on"
            elif tag == "select":
                self.select = a.get("name")
            elif tag == "option" and self.select and "selected" in a:
                fields[self.select] = a.get("value") or ""
            elif tag == "textarea" and a.get("name"):
                fields[a["name"]] = ""

        def handle_endtag(self, tag):
            if tag == "select":
                self.select = None

    Form().feed(html)
    return fields


@pytest.fixture
def teams(page, agent, agent2):
    """Acme is the Support team's (ana); bo is on Billing, with another page."""
    billing = factories.page(page_id="1000000000000011", name="Billing page")
    Team.objects.create(name="Support").pages.add(page)
    Team.objects.get(name="Support").members.add(agent)
    Team.objects.create(name="Billing").pages.add(billing)
    Team.objects.get(name="Billing").members.add(agent2)
    return billing


def test_assign_offers_the_agents_who_can_see_the_page_and_transfers(
    admin_client, admin_user, teams, agent, agent2, fake_graph
):
    ticket = factories.ticket(page=Page.objects.get(name="Acme"))

    shown = _action(admin_client, "assign", [ticket])
    options = re.findall(r'<option value="(\d+)"', shown.content.decode())
    forged = _action(admin_client, "assign", [ticket], confirm="yes", agent=agent2.pk)
    assigned = _action(admin_client, "assign", [ticket], confirm="yes", agent=agent.pk)

    assert sorted(map(int, options)) == sorted([admin_user.pk, agent.pk])
    assert "Select a valid choice" in forged.content.decode()
    assert _said(assigned) == [f"Ticket {ticket.pk} assigned to ana."]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == (Ticket.Status.OPEN, agent)
    assert _events(ticket) == [("transferred", "admin", "from nobody to ana")]
    assert fake_graph.calls == []


def test_assign_refuses_a_closed_ticket_and_says_who_had_the_others(
    admin_client, page, agent, agent2, fake_graph
):
    closed = factories.ticket(page=page, psid="41", status=Ticket.Status.CLOSED)
    bos = factories.ticket(page=page, psid="42", status=Ticket.Status.OPEN, assignee=agent2)

    response = _action(admin_client, "assign", [closed, bos], confirm="yes", agent=agent.pk)

    assert _said(response) == [
        f"Ticket {closed.pk} not assigned: This ticket is closed.",
        f"Ticket {bos.pk} assigned to ana (was bo).",
    ]
    assert _events(closed) == []
    assert _events(bos) == [("transferred", "admin", "from bo to ana")]


def test_a_lead_who_is_no_superuser_sees_and_assigns_within_their_teams(
    client, teams, agent, agent2, fake_graph
):
    lead = factories.agent("lead")  # on Support (Acme) with ana; may handle tickets
    lead.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_ticket", "change_ticket", "view_message"])
    )
    Team.objects.get(name="Support").members.add(lead)
    acme = factories.ticket(page=Page.objects.get(name="Acme"), psid="51")
    billing = factories.ticket(page=teams, psid="52")
    factories.message(ticket=billing, text="billing secret")
    client.force_login(lead)

    listing = client.get(CHANGELIST).content.decode()
    messages = client.get("/admin/agents/message/").content.decode()
    hidden = client.get(f"/admin/agents/ticket/{billing.pk}/change/")
    shown = _action(client, "assign", [acme, billing])
    options = re.findall(r'<option value="(\d+)"', shown.content.decode())
    done = _action(client, "assign", [acme, billing], confirm="yes", agent=agent.pk)

    assert f'value="{acme.pk}"' in listing and f'value="{billing.pk}"' not in listing
    assert "billing secret" not in messages
    assert hidden.status_code == 302  # "does not exist", as in the inbox
    assert sorted(map(int, options)) == sorted([lead.pk, agent.pk])
    assert _said(done) == [f"Ticket {acme.pk} assigned to ana."]
    assert (_events(acme), _events(billing)) == (
        [("transferred", "lead", "from nobody to ana")],
        [],
    )


def test_asking_for_control_again_goes_through_the_service(
    admin_client, handed_over, deliver, clock, fake_graph, django_capture_on_commit_callbacks
):
    deliver(payloads.take_control(ts=clock(), metadata="bot resumes"))
    owned = factories.ticket(page=handed_over.conversation.page, psid="61")

    with django_capture_on_commit_callbacks(execute=True):
        response = _action(admin_client, "request_control", [handed_over, owned])

    assert _said(response) == [
        f"Ticket {handed_over.pk}: the bot was asked for the conversation.",
        f"Ticket {owned.pk}, no request sent: The helpdesk already owns this conversation.",
    ]
    assert Conversation.objects.get(pk=handed_over.conversation_id).control_state == "requested"
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 1


def test_agents_who_may_only_view_tickets_get_no_actions(client, handed_over, fake_graph):
    viewer = factories.agent("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_ticket"))
    client.force_login(viewer)

    listing = client.get(CHANGELIST).content.decode()
    own_page = client.get(f"{CHANGELIST}{handed_over.pk}/change/").content.decode()
    response = client.post(
        CHANGELIST,
        {
            "action": "close_and_hand_back",
            "_selected_action": [handed_over.pk],
            "confirm": "yes",
            "outcome": "x",
        },
    )

    assert "close_and_hand_back" not in listing and 'name="_selected_action"' not in listing
    assert "close_and_hand_back" not in own_page and "Back to the tickets" in own_page
    assert response.status_code in (200, 302)
    handed_over.refresh_from_db()
    assert handed_over.status == Ticket.Status.WAITING
    assert fake_graph.calls_to("/me/pass_thread_control") == []


@pytest.mark.django_db(transaction=True)
def test_an_assignment_in_admin_reaches_the_agents_inbox_live(page, agent):
    ticket = factories.ticket(page=page)
    root = get_user_model().objects.create_superuser("root", "", "pw-12345678")
    async_to_sync(_live_assignment)(root, agent, ticket)


async def _live_assignment(root, agent, ticket):
    socket = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    socket.scope["user"] = agent
    assert (await socket.connect())[0]
    admin = Client()
    await database_sync_to_async(admin.force_login)(root)

    await database_sync_to_async(_action)(admin, "assign", [ticket], confirm="yes", agent=agent.pk)

    assert await socket.receive_json_from(timeout=5) == {
        "event": "ticket.updated",
        "ticket_id": ticket.pk,
        "conversation_id": ticket.conversation_id,
    }
    await socket.disconnect()


# --- Agents ----------------------------------------------------------------------------


def test_an_agent_with_unclosed_tickets_is_not_deleted(admin_client, page, agent, agent2):
    open_ticket = factories.ticket(page=page, status=Ticket.Status.OPEN, assignee=agent)
    factories.ticket(page=page, psid="71", status=Ticket.Status.CLOSED, assignee=agent2)

    confirm = admin_client.get(f"/admin/auth/user/{agent.pk}/delete/").content.decode()
    single = admin_client.post(f"/admin/auth/user/{agent.pk}/delete/", {"post": "yes"})
    bulk = admin_client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [agent.pk], "post": "yes"},
    )
    closed_only = admin_client.post(f"/admin/auth/user/{agent2.pk}/delete/", {"post": "yes"})

    assert f"ticket {open_ticket.pk} (open), assigned to ana: assign it to another agent" in (
        confirm
    )
    assert (single.status_code, bulk.status_code) == (200, 200)
    assert "protected related objects" in bulk.content.decode()
    open_ticket.refresh_from_db()
    assert (open_ticket.status, open_ticket.assignee) == (Ticket.Status.OPEN, agent)
    assert closed_only.status_code == 302
    assert list(
        get_user_model().objects.values_list("username", flat=True).order_by("username")
    ) == ["admin", "ana"]
