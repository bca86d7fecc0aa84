"""Issue 10, points 1 and 8, from `manage.py connect_page`: how the helpdesk gets control
(`--control-mode`), how closing hands back (`--handback`, `--handback-notice`), how long
control is kept while an agent works (`--extend-max-hours`), bad values refused without
a change; and a page paused for its token sends what waited by itself once the token is
replaced (`services.page_connect`, which the command and the Page admin both use)."""

from __future__ import annotations

from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from agents.models import Message, Ticket, Trigger
from tests.support import payloads
from tests.support.fakegraph import graph_error
from webhooks.crypto import token_unseal
from webhooks.management.commands.connect_page import Command
from webhooks.models import Page
from webhooks.services import page_connect

pytestmark = pytest.mark.django_db

TOKEN = "EAAB-page-token"
NOTICE = "You're now chatting with our assistant again."
REQUIRED = (
    "--page-id",
    payloads.PAGE_ID,
    "--bot-app-id",
    payloads.BOT_APP_ID,
    "--name",
    "Acme",
)
# Page fields issue 10 adds to connect_page, as they are read back.
MODES = ("control_mode", "handback", "handback_notice", "control_extend_max_hours")


def _connect(*extra: str, token: str = TOKEN) -> str:
    out = StringIO()
    call_command("connect_page", *REQUIRED, "--access-token", token, *extra, stdout=out)
    return out.getvalue()


def _modes(page: Page) -> tuple[Any, ...]:
    page.refresh_from_db()
    return tuple(getattr(page, name) for name in MODES)


def _row() -> dict[str, Any]:
    """The page's whole row (its token still encrypted, `updated_at` included)."""
    return Page.objects.values().get()


# --- the options set the page -----------------------------------------------------------------


def test_without_the_options_a_page_asks_then_takes_passes_back_and_keeps_control_72_hours():
    _connect()

    assert _modes(Page.objects.get()) == ("auto", "pass", "", 72)


@pytest.mark.parametrize("mode", ["request", "take", "auto"])
def test_the_control_mode_option_sets_how_the_page_gets_control(mode):
    output = _connect("--control-mode", mode)

    page = Page.objects.get()
    assert page.control_mode == mode
    # Only the mode: the other settings keep their defaults.
    assert _modes(page)[1:] == ("pass", "", 72)
    assert output.startswith(f"Connected page Acme ({payloads.PAGE_ID})")


@pytest.mark.parametrize("handback", ["pass", "release"])
def test_the_handback_option_sets_how_closing_hands_back(handback):
    _connect("--handback", handback)

    assert Page.objects.get().handback == handback


def test_the_notice_and_the_extend_maximum_are_set_as_given():
    # The notice is trimmed (as the Page admin trims it); 168 hours is Meta's 7 days.
    _connect("--handback-notice", f"  {NOTICE} ", "--extend-max-hours", "168")

    assert _modes(Page.objects.get()) == ("auto", "pass", NOTICE, 168)


def test_zero_hours_means_never_extend_and_is_accepted():
    _connect("--extend-max-hours", "0")

    assert Page.objects.get().control_extend_max_hours == 0


def test_connecting_again_changes_the_modes_of_the_same_page_in_place():
    _connect("--control-mode", "take", "--handback", "release", "--handback-notice", NOTICE)
    first = Page.objects.get()

    output = _connect("--control-mode", "request", "--handback", "pass", "--extend-max-hours", "24")

    page = Page.objects.get()
    assert page.pk == first.pk
    assert _modes(page) == ("request", "pass", "", 24)
    assert output.startswith("Updated page Acme")
    assert Trigger.objects.filter(page=page).count() == 3  # the defaults, not made twice


# --- bad values: a clear error, nothing changed ---------------------------------------------

BAD = [
    pytest.param(("--control-mode", "grab"), "invalid choice: 'grab'", id="unknown-mode"),
    pytest.param(("--handback", "drop"), "invalid choice: 'drop'", id="unknown-handback"),
    pytest.param(
        ("--extend-max-hours", "169"), "Control can be kept for 0 to 168 hours.", id="169-hours"
    ),
    pytest.param(
        ("--extend-max-hours", "200"), "Control can be kept for 0 to 168 hours.", id="200-hours"
    ),
    pytest.param(
        ("--extend-max-hours", "-1"), "Control can be kept for 0 to 168 hours.", id="negative"
    ),
    pytest.param(("--extend-max-hours", "ten"), "invalid int value: 'ten'", id="not-a-number"),
    pytest.param(
        ("--handback-notice", "x" * 641),
        "The hand-back notice is longer than 640 characters.",
        id="notice-too-long",
    ),
]


@pytest.mark.parametrize(("bad", "error"), BAD)
def test_a_bad_value_connects_no_new_page(bad, error):
    with pytest.raises(CommandError, match=error) as refused:
        _connect(*bad)

    assert refused.value.returncode == 1
    assert Page.objects.count() == 0
    assert Trigger.objects.count() == 0


@pytest.mark.parametrize(("bad", "error"), BAD)
def test_a_bad_value_leaves_a_connected_page_as_it_was(bad, error):
    _connect("--control-mode", "take", "--handback", "release", "--handback-notice", NOTICE)
    before = _row()

    # Everything else on the line is a change the command would make: none is made.
    with pytest.raises(CommandError, match=error):
        _connect("--name", "Renamed", *bad, token="EAAB-another-token")

    assert _row() == before
    assert token_unseal(Page.objects.get().access_token) == TOKEN


@pytest.mark.parametrize(
    ("bad", "exit_code", "words"),
    [
        # argparse refuses it: usage and the reason, exit status 2.
        (("--control-mode", "grab"), 2, "argument --control-mode: invalid choice: 'grab'"),
        # The service refuses it: the reason, exit status 1.
        (("--extend-max-hours", "200"), 1, "CommandError: Control can be kept for 0 to 168 hours."),
    ],
)
def test_on_the_command_line_a_bad_value_exits_non_zero_with_the_reason(
    bad, exit_code, words, capsys
):
    argv = ["manage.py", "connect_page", *REQUIRED, "--access-token", TOKEN, "--skip-checks"]
    # run_from_argv closes the database connections on its way out, which would end the
    # test's transaction: they stay open here.
    with (
        mock.patch("django.core.management.base.connections"),
        pytest.raises(SystemExit) as exited,
    ):
        Command().run_from_argv([*argv, *bad])

    assert exited.value.code == exit_code
    assert words in capsys.readouterr().err
    assert Page.objects.count() == 0


# --- point 8: a new token resumes a page paused for its token, by itself ---------------------


def _ticket_with_a_reply_waiting(api, post, deliver, clock, fake_graph, *texts: str) -> Ticket:
    """The bot passed the conversation; the agent's first reply was refused with an
    expired token (190), which paused the page: every reply in `texts` waits."""
    deliver(payloads.user_message("I need help", ts=clock()), channel="standby")
    deliver(payloads.pass_control(ts=clock(), metadata="help"))
    ticket = Ticket.objects.get()
    fake_graph.fail_next(
        "/me/messages",
        graph_error(190, 463, "Error validating access token: Session has expired"),
    )
    for text in texts:
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": text})
    page = Page.objects.get()
    assert (page.outbox_paused_code, page.outbox_paused_at is not None) == ("token", True)
    replies = Message.objects.filter(author_kind="agent").order_by("id")
    assert [(m.text, m.status) for m in replies] == [(t, "pending") for t in texts]
    # Only the first was tried (and refused); the others waited without a call.
    assert [s.body["message"]["text"] for s in fake_graph.sends()] == [texts[0]]
    fake_graph.calls.clear()
    return ticket


def _sent(fake_graph) -> list[tuple[str, str]]:
    return [
        (c.body["message"]["text"], c.headers["Authorization"]) for c in fake_graph.business_calls()
    ]


def test_a_new_token_through_page_connect_sends_the_waiting_reply_once_by_itself(
    page, api, post, deliver, clock, fake_graph, django_capture_on_commit_callbacks
):
    _ticket_with_a_reply_waiting(api, post, deliver, clock, fake_graph, "hello")

    # No outbox_resume here: replacing the token is all an admin does.
    with django_capture_on_commit_callbacks(execute=True):
        page_connect(
            page_id=page.page_id,
            access_token="EAAB-new-token",
            bot_app_id=page.bot_app_id,
            name="Acme",
        )

    page.refresh_from_db()
    assert (page.outbox_paused_reason, page.outbox_paused_code, page.outbox_paused_at) == (
        "",
        "",
        None,
    )
    # One call, the waiting reply, with the new token: nothing else, nothing twice.
    assert [c.path for c in fake_graph.business_calls()] == ["/me/messages"]
    assert _sent(fake_graph) == [("hello", "Bearer EAAB-new-token")]
    assert [m.status for m in Message.objects.filter(author_kind="agent")] == ["sent"]


def test_a_new_token_through_connect_page_sends_every_waiting_reply_in_order_once(
    page, api, post, deliver, clock, fake_graph, django_capture_on_commit_callbacks
):
    _ticket_with_a_reply_waiting(api, post, deliver, clock, fake_graph, "one", "two")

    with django_capture_on_commit_callbacks(execute=True):
        _connect(token="EAAB-new-token")

    assert _sent(fake_graph) == [
        ("one", "Bearer EAAB-new-token"),
        ("two", "Bearer EAAB-new-token"),
    ]
    assert [m.status for m in Message.objects.filter(author_kind="agent").order_by("id")] == [
        "sent",
        "sent",
    ]
    assert Page.objects.get().outbox_paused_reason == ""


def test_connecting_again_with_the_same_token_leaves_the_page_paused_and_sends_nothing(
    page, api, post, deliver, clock, fake_graph, django_capture_on_commit_callbacks
):
    _ticket_with_a_reply_waiting(api, post, deliver, clock, fake_graph, "hello")
    reason = Page.objects.get().outbox_paused_reason

    with django_capture_on_commit_callbacks(execute=True):
        page_connect(
            page_id=page.page_id,
            access_token="page-token-secret",  # the token the page has (factories.page)
            bot_app_id=page.bot_app_id,
            name="Acme",
        )

    page.refresh_from_db()
    assert (page.outbox_paused_code, page.outbox_paused_reason) == ("token", reason)
    assert fake_graph.calls == []
    assert [m.status for m in Message.objects.filter(author_kind="agent")] == ["pending"]
