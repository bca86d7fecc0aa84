"""Who may use the agent API and what they see: tokens, sessions and CSRF, teams; and
the OpenAPI document that describes it."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from agents.models import Team, Ticket

pytestmark = pytest.mark.django_db


def test_the_api_needs_a_valid_token_or_session(ticket, agent):
    assert Client().get("/api/v1/tickets").status_code == 401
    bad = Client(headers={"Authorization": "Bearer hd_not-a-token"})
    assert bad.get("/api/v1/tickets").status_code == 401
    agent.is_active = False
    agent.save()
    gone = Client(headers={"Authorization": f"Bearer {agent.api_token}"})
    assert gone.get("/api/v1/tickets").status_code == 401


def test_session_auth_needs_csrf_on_writes(handed_over, agent):
    ticket = handed_over()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(agent)
    assert browser.get("/api/v1/tickets").status_code == 200
    response = browser.post(f"/api/v1/tickets/{ticket.pk}/claim")
    assert response.status_code == 403
    assert Ticket.objects.get().status == "waiting"


def test_teams_limit_which_pages_an_agent_sees(handed_over, api, api2, agent2, page):
    ticket = handed_over()
    team = Team.objects.create(name="billing")
    team.pages.add(page)
    assert api.get("/api/v1/tickets").json() == []
    assert api.get("/api/v1/queues").json() == {
        "waiting": 0,
        "mine": 0,
        "all_open": 0,
        "closed": 0,
    }
    assert api.get(f"/api/v1/tickets/{ticket.pk}").status_code == 404
    assert api.post(f"/api/v1/tickets/{ticket.pk}/claim").status_code == 404
    team.members.add(agent2)
    assert [t["id"] for t in api2.get("/api/v1/tickets").json()] == [ticket.pk]
    assert api2.get("/api/v1/queues").json()["waiting"] == 1


def test_openapi_document_describes_the_api(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in [
        ("/api/v1/queues", "get"),
        ("/api/v1/tickets", "get"),
        ("/api/v1/tickets/{ticket_id}/messages", "get"),
        ("/api/v1/tickets/{ticket_id}/messages/{message_id}", "get"),
        ("/api/v1/tickets/{ticket_id}/claim", "post"),
        ("/api/v1/tickets/{ticket_id}/reply", "post"),
        ("/api/v1/tickets/{ticket_id}/close", "post"),
        ("/api/v1/tickets/{ticket_id}/transfer", "post"),
        ("/api/v1/tickets/{ticket_id}/typing", "post"),
    ]:
        assert method in paths[path], path
    queue = next(p for p in paths["/api/v1/tickets"]["get"]["parameters"] if p["name"] == "queue")
    assert "all_open" in json.dumps(queue)
    # the paginated lists name their cursor parameter and the headers of the next page
    for path, cursor in [
        ("/api/v1/tickets", "after"),
        ("/api/v1/tickets/{ticket_id}/messages", "before"),
    ]:
        operation = paths[path]["get"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert (
            parameters["limit"]["schema"]["default"],
            parameters["limit"]["schema"]["maximum"],
        ) == (50, 200)
        assert "X-Next-Cursor" in parameters[cursor]["description"]
        assert set(operation["responses"]["200"]["headers"]) == {"X-Next-Cursor", "Link"}
        assert "400" in operation["responses"]
    schemes = document["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} >= {"http", "apiKey"}


def test_every_operation_that_takes_input_documents_its_422(api, ticket):
    document = api.get("/api/v1/openapi.json").json()
    issue = document["components"]["schemas"]["ValidationIssue"]
    assert issue["required"] == ["type", "loc", "msg"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            takes_input = operation.get("parameters") or operation.get("requestBody")
            assert ("422" in operation["responses"]) == bool(takes_input), (method, path)
    # What Ninja answers has that shape.
    answer = api.get("/api/v1/tickets", {"limit": 0})
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert (problem["type"], problem["loc"]) == ("greater_than_equal", ["query", "limit"])
    assert set(issue["required"]) <= set(problem)
