"""Failed logins are throttled per account and per client address: while blocked, the
password is not even checked, and the answer is the same whether the account exists."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import authenticate
from django.test import Client
from django.utils import timezone

from agents.models import AuthFailures
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.django_db

BLOCKED = "Too many failed attempts; try again in 15 minutes."


def _login(username: str, password: str, address: str = "127.0.0.1") -> tuple[Client, str]:
    browser = Client(REMOTE_ADDR=address)
    response = browser.post("/login/", {"username": username, "password": password})
    if response.status_code == 302:
        return browser, "logged in"
    assert response.status_code == 200
    [message] = re.findall(r'<p class="form-error" role="alert">(.*?)</p>', response.text)
    return browser, message.replace("&#x27;", "'")


def _logged_in(browser: Client) -> bool:
    return "_auth_user_id" in browser.session


@pytest.fixture
def checks():
    """Counts the password checks (`authenticate` calls) of the login form."""
    with mock.patch("agents.forms.authenticate", wraps=authenticate) as spy:
        yield spy


def test_two_hundred_wrong_passwords_then_the_right_one_does_not_log_in(agent, checks):
    answers = [_login("ana", f"guess-{n}")[1] for n in range(200)]

    browser, answer = _login("ana", PASSWORD)

    assert answers[:5] == ["Your username and password didn't match. Please try again."] * 5
    assert answers[5:] == [BLOCKED] * 195
    assert answer == BLOCKED
    assert not _logged_in(browser)
    assert checks.call_count == 5  # the password was checked 5 times, not 201


def test_a_blocked_account_says_the_same_as_a_missing_one(agent, checks):
    for n in range(5):
        _login("ana", f"guess-{n}", address="10.0.0.1")
        _login("nobody", f"guess-{n}", address="10.0.0.2")

    assert _login("ana", "guess-6", address="10.0.0.1")[1] == BLOCKED
    assert _login("nobody", "guess-6", address="10.0.0.2")[1] == BLOCKED
    assert checks.call_count == 10


def test_the_block_is_per_account_not_for_everyone_at_that_address(agent, agent2):
    for n in range(5):
        _login("ana", f"guess-{n}")

    assert _login("ana", PASSWORD)[1] == BLOCKED
    browser, answer = _login("bo", PASSWORD)  # same address, another account
    assert answer == "logged in"
    assert _logged_in(browser)


def test_an_address_is_blocked_after_twenty_failures_whatever_the_accounts(agent, checks):
    for n in range(20):
        _login(f"user-{n}", "guess", address="203.0.113.9")

    assert _login("ana", PASSWORD, address="203.0.113.9")[1] == BLOCKED
    assert checks.call_count == 20
    assert _login("ana", PASSWORD, address="203.0.113.10")[1] == "logged in"


def test_ipv6_addresses_count_per_64(agent):
    for n in range(20):
        _login(f"user-{n}", "guess", address=f"2001:db8:1:2::{n + 1:x}")

    assert _login("ana", PASSWORD, address="2001:db8:1:2:ffff::1")[1] == BLOCKED
    assert _login("ana", PASSWORD, address="2001:db8:1:3::1")[1] == "logged in"


def test_a_success_resets_the_accounts_counter(agent):
    for n in range(4):
        _login("ana", f"guess-{n}")
    assert _login("ana", PASSWORD)[1] == "logged in"

    answers = [_login("ana", f"again-{n}")[1] for n in range(4)]

    assert BLOCKED not in answers  # 8 failures in all, but only 4 since the success
    assert _login("ana", PASSWORD)[1] == "logged in"


def test_after_the_block_the_account_may_log_in_again(agent):
    for n in range(5):
        _login("ana", f"guess-{n}")
    assert _login("ana", PASSWORD)[1] == BLOCKED

    past = timezone.now() - timedelta(seconds=1)
    AuthFailures.objects.update(window_ends_at=past, blocked_until=past)  # 15 minutes on

    assert _login("ana", PASSWORD)[1] == "logged in"
    assert list(AuthFailures.objects.values_list("scope", flat=True)) == ["login_address"]


def test_the_message_counts_whole_minutes_up(agent):
    for n in range(5):
        _login("ana", f"guess-{n}")
    row = AuthFailures.objects.get(scope="login_account")

    row.blocked_until = timezone.now() + timedelta(seconds=61)
    row.save()
    assert _login("ana", PASSWORD)[1] == ("Too many failed attempts; try again in 2 minutes.")
    row.blocked_until = timezone.now() + timedelta(seconds=30)
    row.save()
    assert _login("ana", PASSWORD)[1] == "Too many failed attempts; try again in 1 minute."


def test_limits_and_window_come_from_settings(agent, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 2
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 120

    answers = [_login("ana", f"guess-{n}")[1] for n in range(3)]

    assert answers[2] == "Too many failed attempts; try again in 2 minutes."


def test_failures_outside_the_window_do_not_add_up(agent):
    for n in range(4):
        _login("ana", f"guess-{n}")
    AuthFailures.objects.update(window_ends_at=timezone.now() - timedelta(seconds=1))

    assert _login("ana", "guess-5")[1] != BLOCKED
    assert AuthFailures.objects.get(scope="login_account").failures == 1


def test_counters_store_no_user_name_or_address(agent):
    _login("ana", "guess", address="198.51.100.7")

    rows = list(AuthFailures.objects.values_list("scope", "key", "failures"))

    assert sorted((scope, failures) for scope, _, failures in rows) == [
        ("login_account", 1),
        ("login_address", 1),
    ]
    for _, key, _ in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", key)
        assert "ana" not in key and "198.51.100.7" not in key
