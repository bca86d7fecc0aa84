"""`manage.py create_agent`: an agent, their teams, and an API token shown once."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from agents.models import ApiToken, Team

pytestmark = pytest.mark.django_db


def _create_agent(*args: str) -> tuple[str, str]:
    out = StringIO()
    call_command("create_agent", *args, stdout=out)
    output = out.getvalue()
    prefix = "API token (shown once): "
    [line] = [line for line in output.splitlines() if line.startswith(prefix)]
    return line.removeprefix(prefix), output


def test_create_agent_prints_a_token_that_authenticates():
    token, output = _create_agent("ana", "--password", "pw-12345678")

    assert output.startswith("Created agent ana.")
    ok = Client().get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    wrong = Client().get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}x"})
    anonymous = Client().get("/api/v1/tickets")
    assert (ok.status_code, ok.json()) == (200, [])
    assert wrong.status_code == 401
    assert anonymous.status_code == 401


def test_create_agent_stores_only_the_tokens_digest():
    token, _ = _create_agent("ana", "--password", "pw-12345678")

    record = ApiToken.objects.get()
    assert record.user.username == "ana"
    assert record.digest == hashlib.sha256(token.encode()).hexdigest()
    row = ApiToken.objects.filter(pk=record.pk).values().get()
    assert all(token not in str(value) for value in row.values())
    # The prefix is a short label to tell tokens apart, never enough to use the token.
    assert len(record.prefix) <= 8
    assert len(token) > 32


def test_create_agent_user_is_staff_with_the_password():
    _create_agent("ana", "--password", "pw-12345678", "--email", "ana@example.org")

    user = get_user_model().objects.get(username="ana")
    assert (user.is_staff, user.is_superuser, user.is_active) == (True, False, True)
    assert user.email == "ana@example.org"
    assert user.check_password("pw-12345678")


def test_create_agent_without_password_has_an_unusable_password():
    _create_agent("ana")

    assert get_user_model().objects.get(username="ana").has_usable_password() is False


def test_create_agent_teams_are_created_or_joined():
    billing = Team.objects.create(name="Billing")
    other = get_user_model().objects.create_user("bo")
    billing.members.add(other)

    _create_agent("ana", "--team", "Billing", "--team", "Support")

    ana = get_user_model().objects.get(username="ana")
    assert set(Team.objects.values_list("name", flat=True)) == {"Billing", "Support"}
    assert set(ana.teams.values_list("name", flat=True)) == {"Billing", "Support"}
    assert set(billing.members.values_list("username", flat=True)) == {"ana", "bo"}


def test_create_agent_admin_is_a_superuser():
    _create_agent("root", "--password", "pw-12345678", "--admin")

    user = get_user_model().objects.get(username="root")
    assert (user.is_staff, user.is_superuser) == (True, True)


def test_create_agent_again_issues_a_new_token_and_keeps_one_user():
    first, _ = _create_agent("ana", "--password", "pw-12345678")

    second, output = _create_agent("ana")

    assert output.startswith("Updated agent ana.")
    assert first != second
    assert get_user_model().objects.filter(username="ana").count() == 1
    assert ApiToken.objects.count() == 2
    assert get_user_model().objects.get(username="ana").check_password("pw-12345678")


def test_create_agent_refuses_a_short_password_and_creates_nothing():
    with pytest.raises(CommandError, match="at least 8 characters"):
        call_command("create_agent", "ana", "--password", "short", "--team", "Support")

    assert get_user_model().objects.count() == 0
    assert ApiToken.objects.count() == 0
    assert Team.objects.count() == 0


def test_create_agent_refuses_an_empty_username():
    with pytest.raises(CommandError):
        call_command("create_agent", "  ", "--password", "pw-12345678")

    assert get_user_model().objects.count() == 0
    assert ApiToken.objects.count() == 0
