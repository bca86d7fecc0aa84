"""Auto-assignment under concurrency (PostgreSQL): two tickets arriving together never
put an agent past capacity. SQLite serialises writers, so the race cannot happen there."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from agents.models import (
    AgentSocket,
    Message,
    PageRouting,
    Team,
    TeamRouting,
    Ticket,
    TicketWait,
)
from agents.services import routing
from helpdesk import clock
from tests.support import factories

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 15


@pytest.fixture(autouse=True)
def postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers instead")


def _arrive_and_assign(page, psid: str, team_id: int, start: threading.Barrier, out: list) -> None:
    """One worker: its ticket arrives (committed), then it runs the team's assignment at
    the same moment as the other worker, on its own connection."""
    try:
        ticket = factories.ticket(page=page, psid=psid)
        TicketWait.objects.create(ticket=ticket, since=clock.now())
        start.wait(30)
        out.extend(routing.team_assign(team_id=team_id))
    finally:
        connection.close()


def test_two_tickets_at_once_with_capacity_one_one_is_assigned_one_queued():
    page = factories.page()
    agent = factories.agent("ana")
    team = Team.objects.create(name="Support")
    team.pages.add(page)
    team.members.add(agent)
    TeamRouting.objects.create(team=team, capacity=1)
    AgentSocket.objects.create(user=agent, channel_name="s1", seen_at=clock.now())

    for round_ in range(ROUNDS):
        start = threading.Barrier(2)
        results: list[tuple[int, int]] = []
        workers = [
            threading.Thread(
                target=_arrive_and_assign,
                args=(page, f"{round_}{side}", team.pk, start, results),
            )
            for side in ("1", "2")
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)

        statuses = sorted(Ticket.objects.exclude(status="closed").values_list("status", flat=True))
        assert statuses == ["open", "waiting"], f"round {round_}"
        assert len(results) == 1, f"round {round_}: {results}"
        assert Ticket.objects.filter(status="open", assignee=agent).count() == 1
        # Make room for the next round: both tickets are done.
        Ticket.objects.exclude(status="closed").update(
            status="closed", assignee=None, closed_at=clock.now()
        )


def _notices(start: threading.Barrier, out: list) -> None:
    try:
        start.wait(30)
        out.extend(routing.queue_notices_send())
    finally:
        connection.close()


def test_two_beat_runs_at_once_tell_a_waiting_customer_their_place_once(fake_graph):
    page = factories.page()
    team = Team.objects.create(name="Support")
    team.pages.add(page)
    TeamRouting.objects.create(
        team=team,
        auto_assign=False,
        queue_notice_after_seconds=1,
        queue_notice_interval_seconds=600,
    )
    PageRouting.objects.create(page=page, team=team)
    ticket = factories.ticket(page=page, psid="7001")
    TicketWait.objects.create(ticket=ticket, since=clock.now() - timedelta(minutes=5))

    for round_ in range(ROUNDS):
        start = threading.Barrier(2)
        told: list[int] = []
        runs = [threading.Thread(target=_notices, args=(start, told)) for _ in range(2)]
        for run in runs:
            run.start()
        for run in runs:
            run.join(60)

        assert told == [ticket.pk], f"round {round_}"
        notices = Message.objects.filter(ticket=ticket, direction="out")
        assert notices.count() == 1, f"round {round_}"
        # The next round: the interval has passed.
        notices.delete()
        TicketWait.objects.update(position_told_at=None)
