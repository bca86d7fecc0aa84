"""Issue 13, point 5: the reports for support leads, checked against known data.

What started each handover and how control came are recorded by the real webhook path;
the figures (handovers, first response and resolution times, take-backs, lapses,
failed sends, CSAT, busiest hours), per day, page, team and agent, are computed over
rows made with known times; the page, its permission, its errors and its CSV.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from agents import reports
from agents.models import (
    ControlTransition,
    Csat,
    Message,
    Team,
    Ticket,
    TicketEvent,
)
from agents.report_charts import Series, bar_chart
from agents.reports import (
    Durations,
    ReportFilter,
    ReportInputError,
    report_build,
    report_csv,
    report_filter_parse,
)
from agents.services import tickets
from helpdesk.settings import _time_zone
from tests.support import factories, payloads
from tests.support.fakegraph import graph_error

pytestmark = pytest.mark.django_db


# --- What started a handover, and how control came (the real webhook path) ----------


def _handovers() -> list[tuple[str, str, str]]:
    return list(
        TicketEvent.objects.filter(kind__in=["opened", "reopened"])
        .order_by("pk")
        .values_list("kind", "trigger", "way")
    )


def test_the_bot_passing_on_its_own_is_a_bot_handover_passed(page, deliver, clock, fake_graph):
    deliver(payloads.pass_control(ts=clock(), metadata="bot gave up"))
    assert _handovers() == [("opened", "bot", "pass")]


def test_the_page_inbox_passing_is_named(page, deliver, clock, fake_graph):
    deliver(
        payloads.pass_control(ts=clock(), previous_owner=payloads.PAGE_INBOX_APP_ID),
    )
    assert _handovers() == [("opened", "page_inbox", "pass")]


@pytest.mark.parametrize(
    ("event", "trigger"),
    [
        (lambda ts: payloads.postback("Talk to a human", ts=ts), "postback"),
        (
            lambda ts: payloads.user_message("Talk to a human", ts=ts, quick_reply="TALK_TO_HUMAN"),
            "quick_reply",
        ),
        (lambda ts: payloads.user_message("can I talk to a human?", ts=ts), "keyword"),
    ],
    ids=["postback", "quick-reply", "keyword"],
)
def test_a_trigger_whose_request_the_bot_grants_is_that_trigger_by_request(
    page, deliver, clock, fake_graph, event, trigger
):
    deliver(event(clock()), channel="standby")
    assert Ticket.objects.count() == 0
    deliver(payloads.pass_control(ts=clock(), metadata="ok, a human"))
    assert _handovers() == [("opened", trigger, "request")]


def test_a_trigger_that_ends_in_a_take_is_that_trigger_by_take(page, deliver, clock, fake_graph):
    fake_graph.fail_next(
        "/me/request_thread_control",
        graph_error(10, message="(#10) Handover Protocol APIs disabled for this page"),
    )
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")
    assert fake_graph.calls_to("/me/take_thread_control") != []
    assert _handovers() == [("opened", "postback", "take")]


def test_an_agent_asking_again_from_a_closed_ticket_is_an_agent_handover(
    page, deliver, clock, fake_graph, agent, run_on_commit
):
    deliver(payloads.pass_control(ts=clock()))
    ticket = Ticket.objects.get()
    run_on_commit(tickets.ticket_close, ticket_id=ticket.pk, user=agent)
    deliver(payloads.user_message("one more thing", ts=clock()), channel="standby")
    run_on_commit(tickets.ticket_request_control, ticket_id=ticket.pk, user=agent)
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 1
    deliver(payloads.pass_control(ts=clock()))
    assert _handovers() == [("opened", "bot", "pass"), ("reopened", "agent", "request")]


def test_a_handover_found_by_a_check_with_meta_is_not_recorded_as_a_take(
    page, deliver, clock, fake_graph, agent, run_on_commit
):
    # A pass to us stamped before our pass back (Meta's clock behind ours): Meta is asked,
    # says the helpdesk owns the thread, and the ticket reopens. How it came is unknown.
    t_pass, t_skewed = clock(), clock()
    deliver(payloads.pass_control(ts=t_pass))
    ticket = Ticket.objects.get()
    run_on_commit(tickets.ticket_close, ticket_id=ticket.pk, user=agent)
    fake_graph.thread_owner_app_id = payloads.APP_ID
    deliver(payloads.pass_control(ts=t_skewed))
    assert _handovers() == [("opened", "bot", "pass"), ("reopened", "", "")]


def test_control_regained_or_lost_is_not_a_handover(page, deliver, clock, fake_graph):
    deliver(payloads.pass_control(ts=clock()))
    deliver(payloads.take_control(ts=clock()))
    deliver(payloads.pass_control(ts=clock()))
    kinds = list(TicketEvent.objects.order_by("pk").values_list("kind", "trigger", "way"))
    assert kinds == [
        ("opened", "bot", "pass"),
        ("control_lost", "", ""),
        ("control_regained", "", ""),
    ]


# --- Known data -----------------------------------------------------------------------


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


RANGE = {"from": "2026-11-02", "to": "2026-11-04"}


def _ticket(page, psid, *, assignee=None, opened, closed=None) -> Ticket:
    status = "closed" if closed else ("open" if assignee else "waiting")
    ticket = factories.ticket(page=page, psid=psid, status=status, assignee=assignee)
    Ticket.objects.filter(pk=ticket.pk).update(opened_at=opened, closed_at=closed)
    ticket.refresh_from_db()
    return ticket


def _event(ticket, kind, when, trigger, way) -> None:
    event = TicketEvent.objects.create(ticket=ticket, kind=kind, trigger=trigger, way=way)
    TicketEvent.objects.filter(pk=event.pk).update(created_at=when)


def _message(ticket, when, *, author_kind="customer", author=None, status=None) -> Message:
    fields = {} if status is None else {"status": status}
    message = factories.message(
        ticket=ticket,
        author_kind=author_kind,
        author=author,
        timestamp=int(when.timestamp() * 1000),
        **fields,
    )
    Message.objects.filter(pk=message.pk).update(created_at=when)
    return message


def _transition(ticket, when, from_state, to_state, role) -> None:
    row = ControlTransition.objects.create(
        conversation=ticket.conversation,
        from_state=from_state,
        to_state=to_state,
        cause="webhook",
        owner_role=role,
    )
    ControlTransition.objects.filter(pk=row.pk).update(created_at=when)


def _csat(ticket, asked, *, score=None) -> None:
    Csat.objects.create(
        ticket=ticket,
        status="answered" if score else "expired",
        asked_at=asked,
        expires_at=asked,
        score=score,
        answered_at=asked if score else None,
    )


@pytest.fixture
def world(page, agent, agent2):
    """Two pages (Acme on teams Blue and Green, Beta on Green), two agents, and what
    happened from 1 to 5 November 2026 (UTC)."""
    beta = factories.page(page_id="222222222222222", name="Beta", access_token="beta-token")
    blue = Team.objects.create(name="Blue")
    blue.pages.add(page)
    green = Team.objects.create(name="Green")
    green.pages.add(page, beta)

    t1 = _ticket(page, "3000000000000101", assignee=agent, opened=at(2, 9), closed=at(2, 10))
    t2 = _ticket(page, "3000000000000102", assignee=agent, opened=at(2, 10), closed=at(3, 10))
    t3 = _ticket(beta, "3000000000000103", assignee=agent2, opened=at(3, 14))
    t4 = _ticket(beta, "3000000000000104", opened=at(4, 23, 30))
    t5 = _ticket(page, "3000000000000105", assignee=agent2, opened=at(1, 8), closed=at(2, 8))
    t6 = _ticket(page, "3000000000000106", opened=at(5, 0, 30))

    _event(t1, "opened", at(2, 9), "bot", "pass")
    _event(t2, "opened", at(2, 10), "keyword", "request")
    _event(t3, "opened", at(3, 14), "agent", "take")
    _event(t4, "opened", at(4, 23, 30), "page_inbox", "pass")
    _event(t1, "reopened", at(4, 8), "postback", "request")
    _event(t5, "opened", at(1, 8), "bot", "pass")  # before the range
    _event(t6, "opened", at(5, 0, 30), "bot", "pass")  # after it
    _event(t1, "claimed", at(2, 9, 1), "", "")  # not a handover

    # Customer messages, replies (one failed, then sent), the bot's (not counted).
    _message(t1, at(2, 9, 1))
    _message(t1, at(2, 9, 2), author_kind="agent", author=agent)  # 120 s
    _message(t2, at(2, 10))
    _message(t2, at(2, 10, 1), author_kind="agent", author=agent, status="failed")
    _message(t2, at(2, 10, 5), author_kind="agent", author=agent)  # 300 s
    _message(t3, at(3, 14, 5))
    _message(t3, at(3, 14, 10), author_kind="agent", author=agent2)  # 600 s
    _message(t3, at(4, 12), author_kind="agent", author=agent2, status="failed")
    _message(t4, at(4, 23, 40))
    _message(t4, at(4, 23, 45), author_kind="bot")
    _message(t5, at(1, 8, 30), author_kind="agent", author=agent2)
    _message(t5, at(1, 9), author_kind="agent", author=agent2, status="failed")  # before

    _transition(t1, at(2, 9, 30), "agent", "taken", "bot")  # take-back by the bot
    _transition(t3, at(3, 15), "agent", "taken", "page_inbox")  # by the Page Inbox
    _transition(t2, at(3, 9), "agent", "idle", "nobody")  # a lapse
    _transition(t1, at(2, 10), "returning", "bot", "bot")  # our own hand-back
    _transition(t3, at(3, 16), "agent", "taken", "other_app")  # neither
    _transition(t2, at(5, 9), "agent", "taken", "bot")  # after the range

    _csat(t1, at(2, 10), score=5)
    _csat(t2, at(3, 10), score=2)
    _csat(t5, at(2, 8))  # expired
    return {"beta": beta, "blue": blue, "green": green, "tickets": (t1, t2, t3, t4, t5, t6)}


def lead(username: str, *teams: Team):
    """A support lead: the reports' permission, on these teams."""
    user = factories.agent(username)
    user.user_permissions.add(Permission.objects.get(codename="view_reports"))
    for team in teams:
        team.members.add(user)
    return user


@pytest.fixture
def lee(world):
    """A lead on both teams: sees both pages."""
    return lead("lee", world["blue"], world["green"])


def build(user, **params):
    return report_build(report_filter_parse({**RANGE, **params}, user=user), user=user)


def test_per_day(world, lee):
    report = build(lee)
    rows = {row.label: row for row in report.rows}
    assert list(rows) == ["2026-11-02", "2026-11-03", "2026-11-04"]
    day2, day3, day4 = rows.values()

    assert (day2.handovers, day2.by_trigger, day2.by_way) == (
        2,
        {"bot": 1, "keyword": 1},
        {"pass": 1, "request": 1},
    )
    assert (day3.handovers, day3.by_trigger, day3.by_way) == (1, {"agent": 1}, {"take": 1})
    assert (day4.handovers, day4.by_trigger, day4.by_way) == (
        2,
        {"page_inbox": 1, "postback": 1},
        {"pass": 1, "request": 1},
    )
    assert day2.first_response == Durations(2, 210.0, 300.0)
    assert (day2.unanswered, day3.first_response, day3.unanswered) == (0, Durations(1, 600, 600), 0)
    assert (day4.first_response, day4.unanswered) == (Durations(), 1)
    assert day2.resolution == Durations(2, 45_000.0, 86_400.0)
    assert day3.resolution == Durations(1, 86_400.0, 86_400.0)
    assert day4.resolution == Durations()
    assert [(r.takebacks_bot, r.takebacks_page_inbox, r.lapses) for r in rows.values()] == [
        (1, 0, 0),
        (0, 1, 1),
        (0, 0, 0),
    ]
    assert [r.failed_sends for r in rows.values()] == [1, 0, 1]
    assert [(r.csat_asked, r.csat_answered, r.csat_average) for r in rows.values()] == [
        (2, 1, 5.0),
        (1, 1, 2.0),
        (0, 0, None),
    ]
    assert [r.csat_satisfied_share for r in rows.values()] == [1.0, 0.0, None]

    total = report.total
    assert (total.handovers, total.by_trigger, total.by_way) == (
        5,
        {"bot": 1, "keyword": 1, "agent": 1, "page_inbox": 1, "postback": 1},
        {"pass": 2, "request": 2, "take": 1},
    )
    assert (total.first_response, total.unanswered) == (Durations(3, 300.0, 600.0), 1)
    assert total.resolution == Durations(3, 86_400.0, 86_400.0)
    assert (total.takebacks_bot, total.takebacks_page_inbox, total.lapses) == (1, 1, 1)
    assert (total.failed_sends, total.csat_asked, total.csat_answered) == (2, 3, 2)
    assert (total.csat_average, total.csat_satisfied_share) == (3.5, 0.5)
    assert [value for value, _ in report.triggers] == [
        "bot",
        "keyword",
        "postback",
        "agent",
        "page_inbox",
    ]
    assert [value for value, _ in report.ways] == ["pass", "request", "take"]

    messages = [0] * 24
    messages[9] = messages[10] = messages[14] = messages[23] = 1
    assert report.hours_messages == messages
    handovers = [0] * 24
    handovers[8] = handovers[9] = handovers[10] = handovers[14] = handovers[23] = 1
    assert report.hours_handovers == handovers


def test_per_page_team_and_agent(world, lee):
    user = lee
    per_page = {row.label: row for row in build(user, group="page").rows}
    assert list(per_page) == ["Acme", "Beta"]
    assert [r.handovers for r in per_page.values()] == [3, 2]
    assert [r.first_response.count for r in per_page.values()] == [2, 1]
    assert [r.failed_sends for r in per_page.values()] == [1, 1]
    assert [(r.takebacks_bot, r.takebacks_page_inbox, r.lapses) for r in per_page.values()] == [
        (1, 0, 1),
        (0, 1, 0),
    ]

    per_team = build(user, group="team")
    teams = {row.label: row for row in per_team.rows}
    assert list(teams) == ["Blue", "Green"]
    assert [r.handovers for r in teams.values()] == [3, 5]
    assert [r.csat_asked for r in teams.values()] == [3, 3]
    # Acme is on both teams: its figures count for each, and once in the total.
    assert (per_team.total.handovers, per_team.total.csat_asked) == (5, 3)
    assert per_team.total.resolution == Durations(3, 86_400.0, 86_400.0)

    per_agent = {row.label: row for row in build(user, group="agent").rows}
    assert list(per_agent) == ["ana", "bo", "Unassigned"]
    assert [r.handovers for r in per_agent.values()] == [3, 1, 1]
    assert [r.first_response for r in per_agent.values()] == [
        Durations(2, 210.0, 300.0),
        Durations(1, 600.0, 600.0),
        Durations(),
    ]
    assert [r.resolution.count for r in per_agent.values()] == [2, 1, 0]
    assert [r.failed_sends for r in per_agent.values()] == [1, 1, 0]
    # A take-back or lapse counts for whom the conversation's ticket was assigned then.
    assert [(r.takebacks_bot, r.takebacks_page_inbox, r.lapses) for r in per_agent.values()] == [
        (1, 0, 1),
        (0, 1, 0),
        (0, 0, 0),
    ]


def test_filters_narrow_every_figure(world, lee, agent, agent2):
    user = lee
    beta = build(user, page=str(world["beta"].pk)).total
    assert (beta.handovers, beta.by_trigger) == (2, {"agent": 1, "page_inbox": 1})
    assert (beta.first_response, beta.unanswered, beta.resolution) == (
        Durations(1, 600.0, 600.0),
        1,
        Durations(),
    )
    assert (beta.takebacks_page_inbox, beta.lapses, beta.failed_sends, beta.csat_asked) == (
        1,
        0,
        1,
        0,
    )
    blue = build(user, team=str(world["blue"].pk)).total
    assert (blue.handovers, blue.failed_sends, blue.csat_asked) == (3, 1, 3)
    ana = build(user, agent=str(agent.pk)).total
    assert (ana.handovers, ana.resolution.count, ana.takebacks_bot, ana.lapses) == (3, 2, 1, 1)
    assert build(user, agent=str(agent.pk)).hours_messages[14] == 0  # bo's ticket
    bo_on_acme = build(
        user, agent=str(agent2.pk), page=str(world["tickets"][0].conversation.page_id)
    )
    assert (bo_on_acme.total.handovers, bo_on_acme.total.resolution.count) == (0, 1)


def test_days_and_hours_are_those_of_the_reports_time_zone(world, lee, settings):
    settings.REPORTS_TIME_ZONE = "Europe/Paris"  # UTC+1 in November
    report = build(lee)
    assert report.zone == "Europe/Paris"
    # 23:30 UTC on the 4th is the 5th in Paris: out of the range.
    assert [r.handovers for r in report.rows] == [2, 1, 1]
    assert report.hours_handovers[10] == 1 and report.hours_handovers[9] == 1  # 9:00, 8:00 UTC
    assert report.hours_handovers[23] == 0
    # Customer messages at 9:01, 10:00 and 14:05 UTC; 23:40 UTC is the 5th in Paris.
    assert {hour: n for hour, n in enumerate(report.hours_messages) if n} == {10: 1, 11: 1, 15: 1}


def test_a_lead_sees_only_the_pages_their_teams_see(world, page):
    user = lead("blue-lead", world["blue"])  # Beta is on Green only: not for them
    report = build(user, group="page")
    assert [row.label for row in report.rows] == ["Acme"]
    assert report.total.handovers == 3
    with pytest.raises(ReportInputError) as refused:
        report_filter_parse({"page": str(world["beta"].pk)}, user=user)
    assert refused.value.messages == [f"There is no page {world['beta'].pk} that you can see."]


def test_the_number_of_queries_does_not_grow_with_the_rows(world, lee, page, agent):
    user = lee
    with CaptureQueriesContext(connection) as few:
        build(user, group="agent")
    for n in range(10):
        ticket = _ticket(page, f"30000000000002{n:02d}", assignee=agent, opened=at(3, 12))
        _event(ticket, "opened", at(3, 12), "bot", "pass")
        _message(ticket, at(3, 12, 5), author_kind="agent", author=agent)
        _transition(ticket, at(3, 13), "agent", "taken", "bot")
    with CaptureQueriesContext(connection) as many:
        report = build(user, group="agent")
    assert report.total.handovers == 15
    assert len(many.captured_queries) == len(few.captured_queries)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "'from' must be a date like 2026-11-30, not 'yesterday'."),
        ({"to": "2026-13-01"}, "'to' must be a date like 2026-11-30, not '2026-13-01'."),
        (
            {"from": "2026-11-05", "to": "2026-11-04"},
            "The range starts (2026-11-05) after it ends (2026-11-04).",
        ),
        (
            {"from": "2025-01-01", "to": "2026-11-04"},
            "The range is 673 days; a report covers at most 366 days.",
        ),
        ({"group": "week"}, "Group by 'week' is not known: choose day, page, team, agent."),
        ({"page": "acme"}, "The page must be chosen from the list, not 'acme'."),
        ({"team": "999"}, "There is no team 999 that you can see."),
        (
            {"team": "525711480041671394058714480640"},
            "There is no team 525711480041671394058714480640 that you can see.",
        ),
        ({"agent": "999"}, "There is no agent 999 that you can see."),
    ],
)
def test_wrong_filters_say_what_is_wrong(db, params, message):
    with pytest.raises(ReportInputError) as refused:
        report_filter_parse(params, user=lead("lee"))
    assert refused.value.messages == [message]


def test_defaults_are_the_last_30_days_per_day(db, settings, monkeypatch):
    monkeypatch.setattr(reports, "report_today", lambda: date(2026, 11, 30))
    found = report_filter_parse({}, user=lead("lee"))
    assert found == ReportFilter(start=date(2026, 11, 1), end=date(2026, 11, 30), group="day")


# --- The page --------------------------------------------------------------------------


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_needs_a_login_and_the_permission(world, lee, agent):
    assert Client().get("/reports/").status_code == 302
    refused = _client(agent).get("/reports/", RANGE)
    assert refused.status_code == 403
    assert "Can see the support reports" in refused.content.decode()
    inbox = _client(agent).get("/").content.decode()
    assert 'href="/reports/"' not in inbox
    assert 'href="/reports/"' in _client(lee).get("/").content.decode()


def test_the_page_shows_charts_and_tables(world, lee):
    response = _client(lee).get("/reports/", {**RANGE, "group": "page"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg ") == 6
    assert "Handovers, by what started them" in html
    assert '<tr><th scope="row">Acme</th><td>3</td><td>3 min</td><td>5 min</td>' in html
    assert '<tr class="total"><th scope="row">Total</th><td>5</td><td>5 min</td>' in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert " style=" not in html  # the policy allows no inline style
    assert 'href="?from=2026-11-02&amp;to=2026-11-04&amp;group=page&amp;format=csv"' in html


def test_wrong_filters_get_a_400_that_says_why(world, lee):
    response = _client(lee).get("/reports/", {"from": "2026-11-05", "to": "2026-11-04"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "The range starts (2026-11-05) after it ends (2026-11-04)." in html
    assert "<svg " not in html and "report-table" not in html
    csv_refused = _client(lee).get("/reports/", {"group": "week", "format": "csv"})
    assert (csv_refused.status_code, csv_refused["Content-Type"]) == (400, "text/plain")
    assert csv_refused.content.decode() == (
        "Group by 'week' is not known: choose day, page, team, agent.\n"
    )
    assert _client(lee).get("/reports/", {"format": "pdf"}).status_code == 400


def test_csv_export(world, lee):
    response = _client(lee).get("/reports/", {**RANGE, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="helpdesk-report-2026-11-02-2026-11-04-day.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["day"] for row in rows] == ["2026-11-02", "2026-11-03", "2026-11-04", "Total"]
    total = rows[-1]
    assert {
        key: total[key]
        for key in (
            "handovers",
            "handovers: the bot handed over",
            "handovers: keyword trigger",
            "handovers: our request, granted",
            "handovers: taken by us",
            "first responses",
            "first response median (s)",
            "first response p90 (s)",
            "tickets without a reply",
            "resolved",
            "resolution median (s)",
            "take-backs by the bot",
            "take-backs by the Page Inbox",
            "lapses",
            "failed sends",
            "CSAT asked",
            "CSAT answered",
            "CSAT average",
            "CSAT share 4-5",
        )
    } == {
        "handovers": "5",
        "handovers: the bot handed over": "1",
        "handovers: keyword trigger": "1",
        "handovers: our request, granted": "2",
        "handovers: taken by us": "1",
        "first responses": "3",
        "first response median (s)": "300",
        "first response p90 (s)": "600",
        "tickets without a reply": "1",
        "resolved": "3",
        "resolution median (s)": "86400",
        "take-backs by the bot": "1",
        "take-backs by the Page Inbox": "1",
        "lapses": "1",
        "failed sends": "2",
        "CSAT asked": "3",
        "CSAT answered": "2",
        "CSAT average": "3.50",
        "CSAT share 4-5": "0.500",
    }
    assert rows[2]["first response median (s)"] == ""  # no reply that day


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(world, lee, page):
    page.name = '=HYPERLINK("http://x")'
    page.save()
    report = build(lee, group="page")
    lines = report_csv(report).splitlines()
    assert lines[1].startswith('"\'=HYPERLINK(""http://x"")",3,')


def test_create_agent_lead_gives_the_reports(db):
    call_command("create_agent", "lena", "--lead", stdout=io.StringIO())
    assert get_user_model().objects.get(username="lena").has_perm("agents.view_reports")
    call_command("create_agent", "max", stdout=io.StringIO())
    assert not get_user_model().objects.get(username="max").has_perm("agents.view_reports")


# --- Charts ----------------------------------------------------------------------------


def test_stacked_bars_add_up_and_the_axis_is_round():
    chart = bar_chart(
        "Handovers",
        ["a", "b"],
        [Series("x", "x", [3, 0]), Series("y", "y", [4, 7])],
        stacked=True,
    )
    assert [tick.text for tick in chart.ticks] == ["0", "2", "4", "6", "8"]
    heights = {bar.title: round(bar.height, 2) for bar in chart.bars}
    unit = (chart.baseline - 12) / 8  # the plot's height per unit
    assert heights == {
        "a, x: 3": round(3 * unit, 2),
        "a, y: 4": round(4 * unit, 2),
        "b, y: 7": round(7 * unit, 2),
    }
    a_y = next(bar for bar in chart.bars if bar.title == "a, y: 4")
    assert round(a_y.y + a_y.height, 2) == round(chart.baseline - 3 * unit, 2)  # on top of x
    assert not chart.empty


def test_a_chart_with_nothing_says_so_and_long_axes_are_thinned():
    empty = bar_chart("Nothing", ["a"], [Series("x", "x", [0])], stacked=False)
    assert (empty.empty, empty.bars) == (True, [])
    days = [f"d{n}" for n in range(366)]
    chart = bar_chart("Year", days, [Series("x", "x", [1] * 366)], stacked=False)
    assert len(chart.bars) == 366
    assert len(chart.labels) <= 12


# --- The time zone setting --------------------------------------------------------------


def test_the_reports_time_zone_must_be_a_real_one():
    assert _time_zone("Europe/Paris") == "Europe/Paris"
    with pytest.raises(
        ImproperlyConfigured,
        match=re.escape(
            "REPORTS_TIME_ZONE must be an IANA time zone such as Europe/Paris, not 'CET+1'"
        ),
    ):
        _time_zone("CET+1")
