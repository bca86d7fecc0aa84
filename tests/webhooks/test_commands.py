"""`manage.py connect_page`: a page, its default triggers, and a token never shown."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import Trigger
from tests.support import payloads
from webhooks.crypto import token_unseal
from webhooks.models import Page

pytestmark = pytest.mark.django_db

TOKEN = "EAAB-page-token-do-not-leak"
DEFAULT_TRIGGERS = {
    (Trigger.Kind.POSTBACK_TITLE, "Talk to a human", True),
    (Trigger.Kind.QUICK_REPLY_PAYLOAD, "TALK_TO_HUMAN", True),
    (Trigger.Kind.KEYWORD, "talk to a human", True),
}


def _connect(
    *,
    page_id: str = payloads.PAGE_ID,
    token: str = TOKEN,
    bot_app_id: str = payloads.BOT_APP_ID,
    name: str = "Acme",
    extra: tuple[str, ...] = (),
) -> str:
    out, err = StringIO(), StringIO()
    call_command(
        "connect_page",
        "--page-id",
        page_id,
        "--access-token",
        token,
        "--bot-app-id",
        bot_app_id,
        "--name",
        name,
        *extra,
        stdout=out,
        stderr=err,
    )
    return out.getvalue() + err.getvalue()


def _pages() -> list[tuple]:
    return list(
        Page.objects.order_by("pk").values_list(
            "pk", "page_id", "access_token", "bot_app_id", "name", "human_agent_enabled"
        )
    )


def _triggers(page: Page) -> set[tuple[str, str, bool]]:
    return set(page.triggers.values_list("kind", "value", "active"))


# --- connect_page --------------------------------------------------------------------


def test_connect_page_creates_the_page_with_default_triggers():
    output = _connect(extra=("--human-agent",))

    page = Page.objects.get()
    assert (page.page_id, token_unseal(page.access_token), page.bot_app_id, page.name) == (
        payloads.PAGE_ID,
        TOKEN,
        payloads.BOT_APP_ID,
        "Acme",
    )
    assert page.human_agent_enabled is True
    assert _triggers(page) == DEFAULT_TRIGGERS
    assert Trigger.objects.count() == 3
    assert output.startswith(f"Connected page Acme ({payloads.PAGE_ID})")
    assert TOKEN not in output


def test_connect_page_twice_updates_in_place():
    _connect()
    first = Page.objects.get()

    output = _connect(token="EAAB-rotated-token", name="Acme Support")

    page = Page.objects.get()
    assert page.pk == first.pk
    assert (token_unseal(page.access_token), page.name) == ("EAAB-rotated-token", "Acme Support")
    assert _triggers(page) == DEFAULT_TRIGGERS
    assert Trigger.objects.count() == 3
    assert output.startswith("Updated page Acme Support")
    assert "EAAB-rotated-token" not in output


def test_connect_page_again_keeps_the_admins_trigger_edits():
    _connect()
    page = Page.objects.get()
    page.triggers.filter(kind=Trigger.Kind.KEYWORD).delete()
    Trigger.objects.create(page=page, kind=Trigger.Kind.KEYWORD, value="agent please")

    _connect()

    assert _triggers(page) == {
        (Trigger.Kind.POSTBACK_TITLE, "Talk to a human", True),
        (Trigger.Kind.QUICK_REPLY_PAYLOAD, "TALK_TO_HUMAN", True),
        (Trigger.Kind.KEYWORD, "agent please", True),
    }


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"page_id": "acme"}, id="page-id-not-numeric"),
        pytest.param({"page_id": "1000-01"}, id="page-id-with-dash"),
        pytest.param({"page_id": ""}, id="page-id-empty"),
        pytest.param({"bot_app_id": "bot"}, id="bot-app-id-not-numeric"),
        pytest.param({"token": ""}, id="token-empty"),
        pytest.param({"token": "   "}, id="token-blank"),
        pytest.param({"name": "  "}, id="name-blank"),
        pytest.param({"bot_app_id": payloads.APP_ID}, id="bot-is-the-helpdesk"),
        pytest.param(
            {"page_id": "\u0661\u0662\u0663"},
            id="page-id-non-ascii-digits",
        ),
    ],
)
def test_connect_page_refuses_bad_input_and_changes_nothing(overrides):
    _connect()
    before_pages, before_triggers = _pages(), list(Trigger.objects.values_list())
    arguments = {"token": "EAAB-new-token", "name": "Renamed", **overrides}

    with pytest.raises(CommandError) as info:
        _connect(**arguments)

    assert _pages() == before_pages
    assert list(Trigger.objects.values_list()) == before_triggers
    assert TOKEN not in str(info.value)
    assert "EAAB-new-token" not in str(info.value)


def test_connect_page_refuses_its_own_app_id_with_a_clear_message():
    with pytest.raises(CommandError, match="MESSENGER_APP_ID"):
        _connect(bot_app_id=payloads.APP_ID)

    assert Page.objects.count() == 0
    assert Trigger.objects.count() == 0
