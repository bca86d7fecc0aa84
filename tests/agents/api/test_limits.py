"""API authentication failures answer 401 (not a CSRF 403), bad tokens are throttled
per address, and every token (or session user) has a request rate limit."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client

from agents.auth import token_create
from agents.models import Ticket

pytestmark = pytest.mark.django_db

UNAUTHENTICATED = {"detail": "Authentication required: a valid bearer token or a session."}


# --- 401, not 403 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer hd_not-a-token"}, {"Authorization": "Basic YTpi"}],
    ids=["no token", "bad token", "other scheme"],
)
def test_a_write_without_valid_credentials_is_401_not_a_csrf_403(ticket, headers):
    response = Client(enforce_csrf_checks=True, headers=headers).post(
        f"/api/v1/tickets/{ticket.pk}/claim"
    )

    assert (response.status_code, response.json()) == (401, UNAUTHENTICATED)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert Ticket.objects.get().status == "waiting"


def test_a_read_without_credentials_is_401_with_detail():
    response = Client().get("/api/v1/tickets")

    assert (response.status_code, response.json()) == (401, UNAUTHENTICATED)


def test_a_session_write_without_csrf_is_still_403(ticket, agent):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(agent)

    response = browser.post(f"/api/v1/tickets/{ticket.pk}/claim")

    assert (response.status_code, response.json()) == (403, {"detail": "CSRF check Failed"})
    assert Ticket.objects.get().status == "waiting"


def test_a_token_write_needs_no_csrf(ticket, agent):
    api = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {agent.api_token}"})

    assert api.post(f"/api/v1/tickets/{ticket.pk}/claim").status_code == 200


# --- bad tokens, per address ------------------------------------------------------------


@pytest.fixture
def window_start():
    """The bad-token counters' 15-minute window has just begun."""
    with mock.patch("agents.services.throttle.time.time", return_value=900 * 2_000.0):
        yield


def test_twenty_bad_tokens_block_token_checks_from_that_address(agent, window_start):
    bad = Client(headers={"Authorization": "Bearer hd_guess"}, REMOTE_ADDR="192.0.2.1")
    assert [bad.get("/api/v1/agents").status_code for _ in range(20)] == [401] * 20

    with mock.patch("agents.api.endpoints.token_user") as lookup:
        good = Client(
            headers={"Authorization": f"Bearer {agent.api_token}"}, REMOTE_ADDR="192.0.2.1"
        )
        response = good.get("/api/v1/agents")
        lookup.assert_not_called()  # blocked: the token is not even looked up

    assert response.status_code == 429
    assert response.json() == {"detail": "Too many failed attempts; try again in 15 minutes."}
    assert response["Retry-After"] == "900"
    elsewhere = Client(
        headers={"Authorization": f"Bearer {agent.api_token}"}, REMOTE_ADDR="192.0.2.2"
    )
    assert elsewhere.get("/api/v1/agents").status_code == 200
    session = Client(REMOTE_ADDR="192.0.2.1")
    session.force_login(agent)
    assert session.get("/api/v1/agents").status_code == 200  # sessions are not tokens


def test_good_tokens_do_not_count_as_failures(agent, settings):
    settings.API_TOKEN_FAILURES_PER_ADDRESS = 2
    api = Client(headers={"Authorization": f"Bearer {agent.api_token}"})
    bad = Client(headers={"Authorization": "Bearer hd_guess"})

    statuses = [api.get("/api/v1/agents").status_code for _ in range(5)]
    statuses += [bad.get("/api/v1/agents").status_code]

    assert statuses == [200] * 5 + [401]
    assert api.get("/api/v1/agents").status_code == 200


# --- the rate limit ---------------------------------------------------------------------


@pytest.fixture
def frozen_minute():
    """Every request in the same minute, 20 s before its end."""
    with mock.patch("agents.api.throttles.time.time", return_value=60 * 1_000_000 + 40.0):
        yield


def test_over_the_rate_a_token_gets_429_with_retry_after(
    ticket, agent, agent2, settings, frozen_minute
):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    api = Client(headers={"Authorization": f"Bearer {agent.api_token}"})

    statuses = [api.get("/api/v1/queues").status_code for _ in range(3)]
    with mock.patch("agents.api.endpoints.tickets.ticket_claim") as claim:
        refused = api.post(f"/api/v1/tickets/{ticket.pk}/claim")
        claim.assert_not_called()

    assert statuses == [200, 200, 200]
    assert (refused.status_code, refused.json()) == (429, {"detail": "Too many requests."})
    assert refused["Retry-After"] == "20"
    other = Client(headers={"Authorization": f"Bearer {agent2.api_token}"})
    assert other.get("/api/v1/queues").status_code == 200


def test_each_token_has_its_own_count_and_sessions_count_per_user(agent, settings, frozen_minute):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    second_token = Client(headers={"Authorization": f"Bearer {_another_token(agent)}"})
    first_token = Client(headers={"Authorization": f"Bearer {agent.api_token}"})
    tab1, tab2 = Client(), Client()
    tab1.force_login(agent)
    tab2.force_login(agent)

    assert [first_token.get("/api/v1/queues").status_code for _ in range(3)] == [200, 200, 429]
    assert [second_token.get("/api/v1/queues").status_code for _ in range(2)] == [200, 200]
    assert [tab1.get("/api/v1/queues").status_code, tab2.get("/api/v1/queues").status_code] == [
        200,
        200,
    ]
    assert tab1.get("/api/v1/queues").status_code == 429  # one count for the user's sessions


def test_the_count_starts_again_each_minute(agent, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    api = Client(headers={"Authorization": f"Bearer {agent.api_token}"})

    with mock.patch("agents.api.throttles.time.time", return_value=6_000_000.0):
        assert [api.get("/api/v1/queues").status_code for _ in range(2)] == [200, 429]
    with mock.patch("agents.api.throttles.time.time", return_value=6_000_060.0):
        assert api.get("/api/v1/queues").status_code == 200


def _another_token(agent) -> str:
    return token_create(user=agent)
