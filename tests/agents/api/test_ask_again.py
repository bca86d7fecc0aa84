"""Asking for the conversation again from a closed ticket (`POST
/tickets/{id}/request-control`): the request a trigger makes, one request_thread_control,
only while the 24-hour window is open and the customer has no unclosed ticket; when the
bot passes the thread, the ticket reopens."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import ControlState, ControlTransition, Conversation, Ticket
from tests.support import factories, payloads

pytestmark = pytest.mark.django_db


def test_a_closed_ticket_asks_for_the_conversation_again_once(
    handed_over, api, post, fake_graph, deliver, clock
):
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    post(api, f"/api/v1/tickets/{ticket.pk}/close", {"outcome": "resolved"})
    assert Conversation.objects.get().control_state == ControlState.BOT
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert (shown["status"], shown["can_request_control"]) == ("closed", True)

    response = post(api, f"/api/v1/tickets/{ticket.pk}/request-control")

    assert response.status_code == 202
    assert (response.json()["control_state"], response.json()["can_request_control"]) == (
        "requested",
        False,
    )
    [asked] = fake_graph.calls_to("/me/request_thread_control")
    assert asked.body["recipient"] == {"id": payloads.PSID}
    assert json.loads(asked.body["metadata"]) == {
        "source": "helpdesk",
        "reason": "agent ana asked for the conversation again",
    }
    [transition] = ControlTransition.objects.filter(to_state=ControlState.REQUESTED)
    assert (transition.from_state, transition.cause) == ("bot", "agent")

    again = post(api, f"/api/v1/tickets/{ticket.pk}/request-control")
    assert (again.status_code, again.json()) == (
        409,
        {"detail": "Control was already requested; waiting for the bot."},
    )
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 1

    # The bot passes the thread: the closed ticket waits again.
    deliver(payloads.pass_control(ts=clock(), metadata="here you go"))
    reopened = Ticket.objects.get()
    assert (reopened.pk, reopened.status, reopened.assignee) == (ticket.pk, "waiting", None)


def _refused(api, post, fake_graph, ticket, detail: str) -> None:
    before = (
        Conversation.objects.get(pk=ticket.conversation_id).control_state,
        ControlTransition.objects.count(),
    )
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["can_request_control"] is False
    response = post(api, f"/api/v1/tickets/{ticket.pk}/request-control")
    assert (response.status_code, response.json()) == (409, {"detail": detail})
    assert fake_graph.calls == []
    after = (
        Conversation.objects.get(pk=ticket.conversation_id).control_state,
        ControlTransition.objects.count(),
    )
    assert after == before


def test_not_once_the_24_hour_window_is_closed(page, api, post, fake_graph):
    conversation = factories.conversation(
        page=page, last_user_message_at=timezone.now() - timedelta(hours=24, minutes=1)
    )
    ticket = factories.ticket(conversation=conversation, status=Ticket.Status.CLOSED)

    _refused(
        api,
        post,
        fake_graph,
        ticket,
        "The 24-hour window is closed: the conversation can only be asked for again "
        "after the customer writes.",
    )


def test_not_while_the_customer_has_an_unclosed_ticket(page, api, post, fake_graph):
    conversation = factories.conversation(page=page, control_state=ControlState.AGENT)
    closed = factories.ticket(conversation=conversation, status=Ticket.Status.CLOSED)
    factories.ticket(conversation=conversation)  # waiting, newer

    _refused(
        api,
        post,
        fake_graph,
        closed,
        "This customer has an open ticket: ask for the conversation there.",
    )


def test_not_while_the_conversation_is_being_handed_back(page, api, post, fake_graph):
    conversation = factories.conversation(page=page, control_state=ControlState.RETURNING)
    ticket = factories.ticket(conversation=conversation, status=Ticket.Status.CLOSED)

    _refused(api, post, fake_graph, ticket, "The conversation is being passed back to the bot.")
