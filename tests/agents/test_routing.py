"""Presence and routing (issue 11, point 6): auto-assignment to the online member with
the fewest open tickets under capacity, the team's first-in first-out queue, presence
from sockets and the toggle."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from agents.consumers import InboxConsumer
from agents.models import (
    AgentPresence,
    AgentProfile,
    AgentSocket,
    PageRouting,
    Presence,
    Team,
    TeamRouting,
    Ticket,
)
from agents.services import presence, routing, tickets
from tests.support import factories, payloads

pytestmark = pytest.mark.django_db

_channels = itertools.count(1)


def online(agent) -> str:
    """An open inbox socket of the agent (as the consumer records one)."""
    name = f"test.socket.{next(_channels)}"
    presence.socket_open(user_id=agent.pk, channel_name=name)
    return name


@pytest.fixture
def team(page, agent, agent2):
    team = Team.objects.create(name="Support")
    team.pages.add(page)
    team.members.add(agent, agent2)
    TeamRouting.objects.create(team=team, capacity=2)
    return team


_psids = itertools.count(5001)


def arrive(deliver, clock) -> Ticket:
    """A customer's conversation is passed to the helpdesk: a ticket opens."""
    psid = str(next(_psids))
    deliver(payloads.pass_control(ts=clock(), psid=psid))
    return Ticket.objects.get(conversation__contact__psid=psid)


def assigned(ticket: Ticket) -> tuple[str, str | None]:
    ticket.refresh_from_db()
    return ticket.status, ticket.assignee.username if ticket.assignee else None


def test_a_new_ticket_goes_to_the_online_member_with_the_fewest_open_tickets(
    team, agent, agent2, deliver, clock, fake_graph
):
    online(agent), online(agent2)
    factories.ticket(page=team.pages.get(), psid="4001", status="open", assignee=agent)

    ticket = arrive(deliver, clock)

    assert assigned(ticket) == ("open", "bo")
    events = list(ticket.events.values_list("kind", "actor", "detail"))
    assert events == [
        ("opened", None, ""),
        ("assigned", None, "auto-assigned: fewest open tickets, to bo"),
    ]
    assert fake_graph.sends() == []  # routing says nothing to the customer here


def test_of_two_agents_as_busy_the_one_given_a_ticket_longest_ago_gets_the_next(
    team, agent, agent2, deliver, clock, fake_graph
):
    online(agent), online(agent2)
    AgentPresence.objects.create(user=agent2, last_assigned_at=timezone.now() - timedelta(hours=2))
    AgentPresence.objects.create(user=agent, last_assigned_at=timezone.now() - timedelta(hours=1))

    first, second = arrive(deliver, clock), arrive(deliver, clock)

    assert assigned(first) == ("open", "bo")  # waited longer
    assert assigned(second) == ("open", "ana")  # now fewer open tickets than bo


def test_capacity_is_respected_and_the_queue_is_assigned_first_in_first_out(
    team, agent, deliver, clock, fake_graph, run_on_commit
):
    TeamRouting.objects.filter(team=team).update(capacity=1)
    online(agent)

    first, second, third = (arrive(deliver, clock) for _ in range(3))

    assert [assigned(t) for t in (first, second, third)] == [
        ("open", "ana"),
        ("waiting", None),
        ("waiting", None),
    ]
    assert routing.queue_position(second) == 1
    assert routing.queue_position(third) == 2

    run_on_commit(tickets.ticket_close, ticket_id=first.pk, user=agent)

    assert [assigned(t) for t in (second, third)] == [("open", "ana"), ("waiting", None)]
    assert routing.queue_position(third) == 1


def test_a_capacity_override_on_the_profile_wins_over_the_teams(
    team, agent, deliver, clock, fake_graph
):
    AgentProfile.objects.create(user=agent, capacity=1)
    online(agent)

    first, second = arrive(deliver, clock), arrive(deliver, clock)

    assert [assigned(t) for t in (first, second)] == [("open", "ana"), ("waiting", None)]


def test_away_and_offline_agents_are_skipped(team, agent, agent2, deliver, clock, fake_graph):
    carol = factories.agent("cy")
    team.members.add(carol)
    online(agent)
    presence.presence_set(user=agent, status="away")
    # bo has no socket: offline
    online(carol)

    ticket = arrive(deliver, clock)

    assert assigned(ticket) == ("open", "cy")
    assert presence.presence_of([agent.pk, agent2.pk, carol.pk]) == {
        agent.pk: Presence.AWAY,
        agent2.pk: Presence.OFFLINE,
        carol.pk: Presence.ONLINE,
    }


def test_nobody_online_the_ticket_waits_and_goes_to_the_first_agent_who_comes_online(
    team, agent, deliver, clock, fake_graph, run_on_commit
):
    ticket = arrive(deliver, clock)
    assert assigned(ticket) == ("waiting", None)

    run_on_commit(online, agent)

    assert assigned(ticket) == ("open", "ana")


def test_an_agent_back_from_away_gets_the_queue(
    team, agent, api, deliver, clock, fake_graph, django_capture_on_commit_callbacks
):
    online(agent)
    presence.presence_set(user=agent, status="away")
    ticket = arrive(deliver, clock)
    assert assigned(ticket) == ("waiting", None)

    with django_capture_on_commit_callbacks(execute=True):
        response = _put(api, "/api/v1/me/presence", {"status": "online"})

    assert response.status_code == 200
    assert response.json() == {"status": "online", "presence": "online"}
    assert assigned(ticket) == ("open", "ana")


def _put(client, url, data):
    return client.put(url, json.dumps(data), content_type="application/json")


def test_bad_presence_is_refused_and_changes_nothing(agent, api):
    response = _put(api, "/api/v1/me/presence", {"status": "offline"})
    assert response.status_code == 422
    assert not AgentPresence.objects.exists()


def test_a_stale_socket_counts_offline_and_the_sweep_removes_it(team, agent, deliver, clock):
    name = online(agent)
    AgentSocket.objects.filter(channel_name=name).update(
        seen_at=timezone.now() - timedelta(minutes=5)
    )

    assert presence.presence_of([agent.pk]) == {agent.pk: Presence.OFFLINE}
    ticket = arrive(deliver, clock)
    assert assigned(ticket) == ("waiting", None)

    assert presence.sockets_sweep() == 1
    assert not AgentSocket.objects.exists()


def test_the_beat_sweep_assigns_what_the_queue_holds(team, agent, clock):
    ticket = factories.ticket(page=team.pages.get(), psid="4100")
    AgentSocket.objects.create(user=agent, channel_name="x", seen_at=timezone.now())

    routing.routing_sweep()

    assert assigned(ticket) == ("open", "ana")


def test_auto_assignment_off_leaves_tickets_waiting(team, agent, deliver, clock, fake_graph):
    TeamRouting.objects.filter(team=team).update(auto_assign=False)
    online(agent)

    ticket = arrive(deliver, clock)

    assert assigned(ticket) == ("waiting", None)
    assert list(ticket.events.values_list("kind", flat=True)) == ["opened"]


def test_a_claim_past_capacity_is_the_agents_choice(
    team, agent, agent2, deliver, clock, fake_graph, run_on_commit
):
    TeamRouting.objects.filter(team=team).update(capacity=1)
    online(agent)
    first = arrive(deliver, clock)
    AgentPresence.objects.filter(user=agent).update(status=Presence.AWAY)
    second = arrive(deliver, clock)
    assert assigned(first) == ("open", "ana")
    assert assigned(second) == ("waiting", None)

    run_on_commit(tickets.ticket_claim, ticket_id=second.pk, user=agent)

    assert assigned(second) == ("open", "ana")  # two open tickets, capacity 1: allowed
    assert AgentPresence.objects.get(user=agent).last_assigned_at is not None


def test_a_transfer_frees_room_for_the_queue(
    team, agent, agent2, deliver, clock, fake_graph, run_on_commit
):
    TeamRouting.objects.filter(team=team).update(capacity=1)
    online(agent)
    first, second = arrive(deliver, clock), arrive(deliver, clock)
    assert [assigned(t) for t in (first, second)] == [("open", "ana"), ("waiting", None)]

    run_on_commit(tickets.ticket_transfer, ticket_id=first.pk, user=agent, to_user_id=agent2.pk)

    assert [assigned(t) for t in (first, second)] == [("open", "bo"), ("open", "ana")]


def test_a_page_routes_to_one_team_its_routing_names_else_the_first(page, agent, agent2):
    first = Team.objects.create(name="First")
    second = Team.objects.create(name="Second")
    first.pages.add(page)
    second.pages.add(page)

    assert routing.page_team_id(page.pk) == first.pk
    PageRouting.objects.create(page=page, team=second)
    assert routing.page_team_id(page.pk) == second.pk
    second.pages.remove(page)  # a team that no longer lists the page is not its team
    assert routing.page_team_id(page.pk) == first.pk
    assert routing.team_page_ids(second.pk) == []


def test_another_teams_queue_is_not_assigned_to_the_agent(page, agent, deliver, clock, fake_graph):
    other_page = factories.page(page_id="1000000000000077", name="Other")
    mine = Team.objects.create(name="Mine")
    mine.pages.add(page)
    mine.members.add(agent)
    TeamRouting.objects.create(team=mine)
    theirs = Team.objects.create(name="Theirs")
    theirs.pages.add(other_page)
    TeamRouting.objects.create(team=theirs)
    online(agent)
    ticket = factories.ticket(page=other_page, psid="4200")

    routing.routing_sweep()

    assert assigned(ticket) == ("waiting", None)


# --- presence from the real consumer ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_presence_follows_the_agents_sockets_and_is_told_to_followers(agent, agent2):
    async_to_sync(_sockets)(agent, agent2)


async def _connect(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _sockets(agent, agent2):
    of = database_sync_to_async(presence.presence_of)
    watcher = await _connect(agent2)
    await watcher.send_json_to({"type": "presence.follow"})
    await watcher.send_json_to({"type": "ping"})
    assert await watcher.receive_json_from(timeout=2) == {"type": "pong"}

    first = await _connect(agent)
    assert await of([agent.pk]) == {agent.pk: Presence.ONLINE}
    assert await watcher.receive_json_from(timeout=2) == {
        "event": "presence.changed",
        "user_id": agent.pk,
    }
    second = await _connect(agent)  # a second tab: no change to tell
    await first.disconnect()
    assert await of([agent.pk]) == {agent.pk: Presence.ONLINE}
    assert await watcher.receive_nothing(timeout=0.3)

    await second.disconnect()
    assert await of([agent.pk]) == {agent.pk: Presence.OFFLINE}
    assert await watcher.receive_json_from(timeout=2) == {
        "event": "presence.changed",
        "user_id": agent.pk,
    }
    await watcher.disconnect()
    assert await database_sync_to_async(AgentSocket.objects.count)() == 0


@pytest.mark.django_db(transaction=True)
def test_a_ping_moves_the_sockets_heartbeat(agent):
    async_to_sync(_heartbeat)(agent)


async def _heartbeat(agent):
    socket = await _connect(agent)
    old = timezone.now() - timedelta(minutes=5)
    rows = AgentSocket.objects.filter(user=agent)
    await database_sync_to_async(rows.update)(seen_at=old)
    assert await database_sync_to_async(presence.presence_of)([agent.pk]) == {
        agent.pk: Presence.OFFLINE
    }

    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=2) == {"type": "pong"}

    assert await database_sync_to_async(presence.presence_of)([agent.pk]) == {
        agent.pk: Presence.ONLINE
    }
    await socket.disconnect()


def test_the_presence_list_shows_each_agent(team, agent, agent2, api):
    online(agent)
    presence.presence_set(user=agent, status="away")

    response = api.get("/api/v1/presence")

    assert response.status_code == 200
    assert [(row["username"], row["presence"]) for row in response.json()] == [
        ("ana", "away"),
        ("bo", "offline"),
    ]
