"""Transfer through the agent API: whom a ticket may go to (`GET
/tickets/{id}/transfer-targets`, the agents who may see its page, the rule the transfer
enforces), refusals that change nothing and do not tell whether an agent of another
team exists, and agents named by their full name."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from agents.models import Team, Ticket, TicketEvent
from tests.support import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(page):
    """Billing (Ana Lima, Bo Jensen, and Old who left) handles the page Acme; shipping
    (cy) a page of its own; dee is on no team; root is an admin on no team."""
    ana = factories.agent("ana", first_name="Ana", last_name="Lima")
    bo = factories.agent("bo", first_name="Bo", last_name="Jensen")
    cy, dee = factories.agent("cy"), factories.agent("dee")
    root = factories.agent("root", is_superuser=True)
    old = factories.agent("old", is_active=False)
    billing = Team.objects.create(name="billing")
    billing.pages.add(page)
    billing.members.add(ana, bo, old)
    shipping = Team.objects.create(name="shipping")
    shipping.pages.add(factories.page(page_id="1000000000000021", name="Shipping"))
    shipping.members.add(cy)
    return {"ana": ana, "bo": bo, "cy": cy, "dee": dee, "root": root, "old": old}


def _client(agent) -> Client:
    return Client(headers={"Authorization": f"Bearer {agent.api_token}"})


def _targets(agent, ticket) -> list[tuple[str, str]]:
    response = _client(agent).get(f"/api/v1/tickets/{ticket.pk}/transfer-targets")
    assert response.status_code == 200, response.content
    return [(row["username"], row["name"]) for row in response.json()]


def _transfer(agent, ticket, agent_id: int, capture) -> tuple[int, dict, list]:
    with capture(execute=True) as callbacks:
        response = _client(agent).post(
            f"/api/v1/tickets/{ticket.pk}/transfer",
            json.dumps({"agent_id": agent_id}),
            content_type="application/json",
        )
    return response.status_code, response.json(), callbacks


def _state(ticket) -> tuple:
    row = Ticket.objects.get(pk=ticket.pk)
    return row.status, row.assignee_id, row.updated_at, TicketEvent.objects.count()


def test_the_targets_are_the_agents_who_may_see_the_page_but_the_assignee(
    staff, page, fake_graph, post
):
    ticket = factories.ticket(page=page)

    # Waiting: billing's active members and the admin, by name; not cy (shipping), not
    # dee (on no team, and every page has one), not old (inactive).
    assert _targets(staff["ana"], ticket) == [
        ("ana", "Ana Lima"),
        ("bo", "Bo Jensen"),
        ("root", "root"),
    ]
    post(_client(staff["ana"]), f"/api/v1/tickets/{ticket.pk}/claim")
    assert _targets(staff["ana"], ticket) == [("bo", "Bo Jensen"), ("root", "root")]
    assert _targets(staff["root"], ticket) == [("bo", "Bo Jensen"), ("root", "root")]


def test_on_a_page_no_team_handles_every_active_agent_is_a_target(staff, fake_graph):
    general = factories.page(page_id="1000000000000022", name="General")
    ticket = factories.ticket(page=general)

    assert [username for username, _ in _targets(staff["dee"], ticket)] == [
        "ana",
        "bo",
        "cy",
        "dee",
        "root",
    ]


def test_the_targets_are_exactly_whom_the_transfer_accepts(
    staff, page, fake_graph, django_capture_on_commit_callbacks
):
    ticket = factories.ticket(page=page)
    listed = {username for username, _ in _targets(staff["root"], ticket)}
    accepted = set()
    for name, agent in staff.items():
        status, _, _ = _transfer(
            staff["root"], ticket, agent.pk, django_capture_on_commit_callbacks
        )
        if status == 200:
            accepted.add(name)
        # Back to waiting for the next try.
        Ticket.objects.filter(pk=ticket.pk).update(status="waiting", assignee=None)

    assert listed == accepted == {"ana", "bo", "root"}


def test_a_transfer_to_someone_who_may_not_see_the_page_is_refused_like_no_one(
    staff, page, fake_graph, post, django_capture_on_commit_callbacks
):
    ticket = factories.ticket(page=page)
    post(_client(staff["ana"]), f"/api/v1/tickets/{ticket.pk}/claim")
    before = _state(ticket)

    answers = {}
    for name, agent_id in [
        ("cy of shipping", staff["cy"].pk),
        ("dee on no team", staff["dee"].pk),
        ("old, inactive", staff["old"].pk),
        ("nobody", 999_999),
    ]:
        status, body, callbacks = _transfer(
            staff["ana"], ticket, agent_id, django_capture_on_commit_callbacks
        )
        # The same words whoever it is: only the id the caller sent differs.
        answers[name] = (status, body["detail"].replace(str(agent_id), "N"), len(callbacks))

    assert set(answers.values()) == {
        (400, "No active agent with id N works on this ticket's page.", 0)
    }
    assert _state(ticket) == before  # no change, no event, nothing broadcast


def test_only_the_assignee_or_an_admin_may_transfer_and_never_to_the_assignee(
    staff, page, fake_graph, post, django_capture_on_commit_callbacks
):
    ticket = factories.ticket(page=page)
    post(_client(staff["ana"]), f"/api/v1/tickets/{ticket.pk}/claim")
    before = _state(ticket)

    # bo is not the assignee: refused before the target is even looked at.
    for target in (staff["root"].pk, staff["cy"].pk, 999_999):
        status, body, callbacks = _transfer(
            staff["bo"], ticket, target, django_capture_on_commit_callbacks
        )
        assert (status, body, callbacks) == (
            403,
            {
                "detail": "This ticket is assigned to Ana Lima; "
                "only they or an admin can transfer it."
            },
            [],
        )
    status, body, _ = _transfer(
        staff["ana"], ticket, staff["ana"].pk, django_capture_on_commit_callbacks
    )
    assert (status, body) == (409, {"detail": "This ticket is already assigned to Ana Lima."})
    assert _state(ticket) == before
    # And cy, who may not see the ticket at all: 404, whatever the target.
    for target in (staff["bo"].pk, 999_999):
        status, body, _ = _transfer(staff["cy"], ticket, target, django_capture_on_commit_callbacks)
        assert (status, body) == (404, {"detail": f"Ticket {ticket.pk} does not exist."})
    assert (
        _client(staff["cy"]).get(f"/api/v1/tickets/{ticket.pk}/transfer-targets").status_code == 404
    )
    assert _state(ticket) == before


def test_can_transfer_says_who_may(staff, page, fake_graph, post):
    ticket = factories.ticket(page=page)
    path = f"/api/v1/tickets/{ticket.pk}"
    assert _client(staff["bo"]).get(path).json()["can_transfer"] is True  # waiting
    post(_client(staff["ana"]), f"{path}/claim")
    assert [_client(staff[n]).get(path).json()["can_transfer"] for n in ("ana", "bo", "root")] == [
        True,
        False,
        True,
    ]
    post(_client(staff["ana"]), f"{path}/close")
    assert _client(staff["ana"]).get(path).json()["can_transfer"] is False


def test_agents_are_named_by_their_full_name(staff, page, fake_graph, post):
    ticket = factories.ticket(page=page)
    ana, bo = _client(staff["ana"]), _client(staff["bo"])
    post(ana, f"/api/v1/tickets/{ticket.pk}/claim")

    assert post(bo, f"/api/v1/tickets/{ticket.pk}/claim").json() == {
        "detail": "This ticket was already claimed by Ana Lima."
    }
    moved = post(ana, f"/api/v1/tickets/{ticket.pk}/transfer", {"agent_id": staff["bo"].pk})
    assert moved.status_code == 200
    assert moved.json()["assignee"] == {"id": staff["bo"].pk, "username": "bo", "name": "Bo Jensen"}
    detail = ana.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert detail["lock_reason"] == "This ticket is assigned to Bo Jensen."
    assert [(e["kind"], e["actor"]["name"], e["detail"]) for e in detail["events"]] == [
        ("claimed", "Ana Lima", ""),
        ("transferred", "Ana Lima", "from Ana Lima to Bo Jensen"),
    ]
