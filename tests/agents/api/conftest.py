from __future__ import annotations

from collections.abc import Callable

import pytest

from agents.models import Ticket
from tests.support import factories, payloads


@pytest.fixture
def handed_over(page, deliver, clock, fake_graph) -> Callable[..., Ticket]:
    """Through the whole pipeline: a customer talks to the bot on standby, then the bot
    passes the thread (two signed webhooks). Returns the waiting ticket."""

    def make(psid: str = payloads.PSID, text: str = "I need help") -> Ticket:
        deliver(payloads.user_message(text, ts=clock(), psid=psid), channel="standby")
        deliver(payloads.pass_control(ts=clock(), psid=psid, metadata="help"))
        return Ticket.objects.get(conversation__contact__psid=psid)

    return make


@pytest.fixture
def ticket(page, fake_graph) -> Ticket:
    """A waiting ticket in a conversation the helpdesk owns, made by the factories."""
    return factories.ticket(page=page)
