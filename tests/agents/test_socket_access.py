"""A socket's groups follow its agent's access without a reconnect: deactivation and
logout close it, team changes make it re-follow; each change is announced after commit
from where it happens (admin, logout, create_agent)."""

from __future__ import annotations

from importlib import import_module
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from agents.consumers import InboxConsumer
from agents.models import Team
from agents.realtime import broadcast
from tests.support import factories

BILLING_PAGE = "1000000000000041"
CLOSED = {"type": "websocket.close", "code": 4401}
REFETCH = {"event": "pages.changed"}


async def _connect(user, session_key: str | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    communicator.scope["user"] = user
    if session_key is not None:
        store = import_module(settings.SESSION_ENGINE).SessionStore
        communicator.scope["session"] = await database_sync_to_async(store)(session_key)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _alive(communicator: WebsocketCommunicator) -> bool:
    await communicator.send_json_to({"type": "ping"})
    return await communicator.receive_json_from(timeout=2) == {"type": "pong"}


def _admin() -> Client:
    get_user_model().objects.create_superuser("root", "root@example.org", "pw-12345678")
    client = Client()
    client.login(username="root", password="pw-12345678")
    return client


def _user_form(user, **changes) -> dict:
    form = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": "2025-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2025-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def _team_form(team, *, pages, members) -> dict:
    return {"name": team.name, "pages": [p.pk for p in pages], "members": [m.pk for m in members]}


@pytest.fixture
def billing(fake_graph):
    """A team with a page (and a conversation on it) and no members yet."""
    page = factories.page(page_id=BILLING_PAGE, access_token="token", name="Billing")
    team = Team.objects.create(name="billing")
    team.pages.add(page)
    return {"team": team, "page": page, "conversation": factories.conversation(page=page).pk}


async def _hears_billing(communicator, billing) -> bool:
    """Whether an event about billing's conversation reaches this socket (consumed)."""
    await database_sync_to_async(broadcast)(
        "conversation.updated", conversation_id=billing["conversation"]
    )
    if await communicator.receive_nothing(timeout=0.2):
        return False
    assert await communicator.receive_json_from(timeout=1) == {
        "event": "conversation.updated",
        "conversation_id": billing["conversation"],
    }
    return True


# --- deactivation and logout ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_deactivating_an_agent_in_admin_closes_their_sockets_only(agent, agent2):
    admin = _admin()
    async_to_sync(_deactivation)(admin, agent, agent2)


async def _deactivation(admin, agent, agent2):
    ana1, ana2, bo = await _connect(agent), await _connect(agent), await _connect(agent2)

    response = await database_sync_to_async(admin.post)(
        f"/admin/auth/user/{agent.pk}/change/", _user_form(agent, is_active=None)
    )

    assert response.status_code == 302
    assert await ana1.receive_output(timeout=2) == CLOSED
    assert await ana2.receive_output(timeout=2) == CLOSED
    assert await bo.receive_nothing(timeout=0.2)
    assert await _alive(bo)
    await bo.disconnect()


@pytest.mark.django_db(transaction=True)
def test_logging_out_closes_that_sessions_sockets_not_the_other_browsers(agent):
    here, there = Client(), Client()
    here.force_login(agent)
    there.force_login(agent)
    async_to_sync(_logout)(agent, here, there)


async def _logout(agent, here, there):
    tab = await _connect(agent, here.session.session_key)
    laptop = await _connect(agent, there.session.session_key)

    response = await database_sync_to_async(here.post)("/logout/")

    assert response.status_code == 302
    assert await tab.receive_output(timeout=2) == CLOSED
    assert await laptop.receive_json_from(timeout=2) == REFETCH  # checked, still valid
    assert await _alive(laptop)
    await laptop.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_new_password_set_in_admin_closes_the_sessions_sockets(agent):
    browser = Client()
    browser.force_login(agent)
    admin = _admin()
    async_to_sync(_new_password)(agent, browser, admin)


async def _new_password(agent, browser, admin):
    socket = await _connect(agent, browser.session.session_key)

    response = await database_sync_to_async(admin.post)(
        f"/admin/auth/user/{agent.pk}/password/",
        {"password1": "new-pw-987654", "password2": "new-pw-987654"},
    )

    assert response.status_code == 302
    assert await socket.receive_output(timeout=2) == CLOSED


# --- teams --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_team_members_added_and_removed_in_admin_re_follow(billing, agent, agent2):
    admin = _admin()
    async_to_sync(_members)(admin, billing, agent, agent2)


async def _members(admin, billing, agent, agent2):
    ana, bo = await _connect(agent), await _connect(agent2)
    assert not await _hears_billing(ana, billing)
    change = f"/admin/agents/team/{billing['team'].pk}/change/"

    await database_sync_to_async(admin.post)(
        change, _team_form(billing["team"], pages=[billing["page"]], members=[agent])
    )

    assert await ana.receive_json_from(timeout=2) == REFETCH
    assert await bo.receive_nothing(timeout=0.2)  # not concerned: not even told
    assert await _hears_billing(ana, billing)

    await database_sync_to_async(admin.post)(
        change, _team_form(billing["team"], pages=[billing["page"]], members=[])
    )

    assert await ana.receive_json_from(timeout=2) == REFETCH
    assert not await _hears_billing(ana, billing)
    await ana.disconnect()
    await bo.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_teams_pages_changed_in_admin_re_follow_everyone(billing, agent, agent2):
    billing["team"].members.add(agent)
    admin = _admin()
    async_to_sync(_pages)(admin, billing, agent, agent2)


async def _pages(admin, billing, agent, agent2):
    ana, bo = await _connect(agent), await _connect(agent2)
    assert not await _hears_billing(bo, billing)
    assert await ana.receive_json_from(timeout=2) == {
        "event": "conversation.updated",
        "conversation_id": billing["conversation"],
    }

    # The page leaves the team: it is on no team now, so everyone's.
    await database_sync_to_async(admin.post)(
        f"/admin/agents/team/{billing['team'].pk}/change/",
        _team_form(billing["team"], pages=[], members=[agent]),
    )

    assert await ana.receive_json_from(timeout=2) == REFETCH
    assert await bo.receive_json_from(timeout=2) == REFETCH
    assert await _hears_billing(bo, billing)
    assert await _hears_billing(ana, billing)
    await ana.disconnect()
    await bo.disconnect()


@pytest.mark.django_db(transaction=True)
def test_create_agent_adding_a_team_re_follows_the_agents_sockets(billing, agent):
    async_to_sync(_create_agent)(billing, agent)


async def _create_agent(billing, agent):
    ana = await _connect(agent)
    assert not await _hears_billing(ana, billing)

    await database_sync_to_async(call_command)(
        "create_agent", "ana", "--team", "billing", stdout=mock.Mock()
    )

    assert await ana.receive_json_from(timeout=2) == REFETCH
    assert await _hears_billing(ana, billing)
    await ana.disconnect()


# --- after commit, and only then ----------------------------------------------------------


@pytest.mark.django_db
def test_admin_saves_announce_access_changes_only_after_commit(
    agent, django_capture_on_commit_callbacks
):
    admin = _admin()
    with mock.patch("agents.realtime.access_changed") as sent:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            admin.post(f"/admin/auth/user/{agent.pk}/change/", _user_form(agent, is_active=None))
            sent.assert_not_called()
        for callback in callbacks:
            callback()

    sent.assert_called_once_with([agent.pk])
