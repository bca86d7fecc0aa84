"""The typing indicator: an agent typing shows Messenger's "typing…" to the customer,
throttled, and never while the agent could not reply."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Conversation, Persona, Team
from agents.services import outbound
from agents.services.state import Outcome
from tests.support import payloads
from tests.support.fakegraph import Scripted

pytestmark = pytest.mark.django_db


def test_a_burst_of_typing_sends_one_throttled_typing_indicator(handed_over, api, post, fake_graph):
    ticket = handed_over()
    url = f"/api/v1/tickets/{ticket.pk}/typing"
    answers = [post(api, url) for _ in range(12)]
    assert [a.status_code for a in answers] == [202] * 12
    assert [a.json()["sent"] for a in answers] == [True] + [False] * 11
    [call] = fake_graph.sender_actions()
    assert call.path == "/me/messages"
    assert call.body == {
        "recipient": {"id": payloads.PSID},
        "sender_action": "typing_on",
        "persona_id": Persona.objects.get().persona_id,  # the typing agent's
    }

    # once the throttle has passed, the next keystroke sends again
    Conversation.objects.update(typing_sent_at=timezone.now() - timedelta(seconds=11))
    assert post(api, url).json() == {"sent": True}
    assert len(fake_graph.sender_actions()) == 2


def test_no_typing_indicator_while_the_composer_is_locked(
    ticket, api, api2, post, deliver, clock, fake_graph, page, agent2
):
    url = f"/api/v1/tickets/{ticket.pk}/typing"
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    assert post(api2, url).json() == {"sent": False}  # someone else's ticket
    deliver(payloads.take_control(ts=clock()))
    assert post(api, url).json() == {"sent": False}  # the bot has the thread
    assert fake_graph.sender_actions() == []
    assert Conversation.objects.get().typing_sent_at is None

    team = Team.objects.create(name="billing")
    team.pages.add(page)
    assert post(api2, url).status_code == 404


def test_the_typing_task_sends_nothing_once_control_is_gone(ticket, fake_graph, deliver, clock):
    deliver(payloads.take_control(ts=clock()))
    outcome = outbound.typing_send(conversation_id=ticket.conversation_id)
    assert outcome == Outcome.SKIPPED
    assert fake_graph.sender_actions() == []


def test_a_failed_typing_indicator_is_not_retried(ticket, api, post, fake_graph):
    fake_graph.fail_next("/me/messages", Scripted(503, {}))
    assert post(api, f"/api/v1/tickets/{ticket.pk}/typing").json() == {"sent": True}
    assert len(fake_graph.sender_actions()) == 1
