"""`GET /api/v1/agents` names only the agents the caller works with: their teams'
members, themselves, and the agents on no team while some page is on no team;
admins see every active agent. Transfer still refuses whoever cannot see the page."""

from __future__ import annotations

import pytest
from django.test import Client

from agents.models import Team
from tests.support import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(page):
    """Billing (ana, bo) has the page Acme; shipping (cy) a page of its own; dee is on
    no team; root is an admin on no team; old left."""
    ana, bo, cy, dee = (factories.agent(name) for name in ("ana", "bo", "cy", "dee"))
    root = factories.agent("root", is_superuser=True)
    factories.agent("old", is_active=False)
    billing = Team.objects.create(name="billing")
    billing.pages.add(page)
    billing.members.add(ana, bo)
    shipping = Team.objects.create(name="shipping")
    shipping.pages.add(factories.page(page_id="1000000000000021", name="Shipping"))
    shipping.members.add(cy)
    return {"ana": ana, "bo": bo, "cy": cy, "dee": dee, "root": root}


def _listed(agent) -> list[str]:
    response = Client(headers={"Authorization": f"Bearer {agent.api_token}"}).get("/api/v1/agents")
    assert response.status_code == 200
    return [row["username"] for row in response.json()]


def test_agents_see_their_teams_and_themselves_when_every_page_has_a_team(staff):
    assert _listed(staff["ana"]) == ["ana", "bo"]
    assert _listed(staff["cy"]) == ["cy"]
    assert _listed(staff["dee"]) == ["dee"]


def test_an_admin_sees_every_active_agent(staff):
    assert _listed(staff["root"]) == ["ana", "bo", "cy", "dee", "root"]


def test_while_a_page_has_no_team_the_agents_on_no_team_are_listed_too(staff):
    factories.page(page_id="1000000000000022", name="General")  # on no team: all see it

    assert _listed(staff["ana"]) == ["ana", "bo", "dee", "root"]
    assert _listed(staff["cy"]) == ["cy", "dee", "root"]
    assert _listed(staff["dee"]) == ["dee", "root"]


def test_an_agent_in_two_teams_is_listed_once(staff):
    Team.objects.get(name="shipping").members.add(staff["bo"])

    assert _listed(staff["ana"]) == ["ana", "bo"]
    assert _listed(staff["cy"]) == ["bo", "cy"]


def test_transfer_still_refuses_a_target_who_cannot_see_the_page(staff, page, fake_graph):
    ticket = factories.ticket(page=page)
    api = Client(headers={"Authorization": f"Bearer {staff['ana'].api_token}"})

    response = api.post(
        f"/api/v1/tickets/{ticket.pk}/transfer",
        {"agent_id": staff["cy"].pk},
        content_type="application/json",
    )

    assert (response.status_code, response.json()) == (
        400,
        {"detail": f"No active agent with id {staff['cy'].pk} works on this ticket's page."},
    )
    ticket.refresh_from_db()
    assert ticket.assignee is None
