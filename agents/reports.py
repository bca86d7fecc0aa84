"""Reports for support leads (issue 13): how support did over a range of days, per day,
page, team or agent.

Read-only. Each figure is one query over a range of rows that an index leads to (the
range's handovers, tickets, take-backs, failed sends, ratings and customer messages),
grouped in the database; only the per-ticket durations come back row by row, for the
median and the 90th percentile, which neither database computes alike. Days and hours
are those of `settings.REPORTS_TIME_ZONE`.

Definitions (the page and the README say the same):
- Handovers: tickets opened or reopened (the thread came to the helpdesk), by what
  started it (`HandoverTrigger`) and how control came (`HandoverWay`).
- First response: from a ticket's opening to its first agent reply that did not fail,
  for tickets opened in the range (those without a reply yet are counted apart).
- Resolution: from opening to closing, for tickets closed in the range.
- Take-backs: the bot or the Page Inbox took a thread the helpdesk held.
- Lapses: control lapsed while the helpdesk held the thread (nobody owns it since).
- Failed sends: our messages that Meta did not take (the agent saw why).
- CSAT: ratings asked in the range; answered, average score, share of 4 and 5.
- Busiest hours: customer messages per hour of the day.
- Per team: a page's figures count for each team that has the page; per agent: a
  ticket's figures count for the agent it is assigned to (a failed send, for its author).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import ExtractHour, TruncDate

from agents.models import (
    Agent,
    ControlState,
    ControlTransition,
    Csat,
    HandoverTrigger,
    HandoverWay,
    Message,
    OwnerRole,
    Team,
    Ticket,
    TicketEvent,
)
from agents.selectors import visible_page_ids
from webhooks.models import Page

GROUPS = {"day": "Day", "page": "Page", "team": "Team", "agent": "Agent"}
MAX_DAYS = 366
DEFAULT_DAYS = 30
HANDOVER_KINDS = (TicketEvent.Kind.OPENED, TicketEvent.Kind.REOPENED)
TAKE_BACK_ROLES = (OwnerRole.BOT, OwnerRole.PAGE_INBOX)
QUARTER_MS = 15 * 60 * 1000


class _Seconds(Func):
    """Seconds from the second time to the first, computed by the database: no time is
    read back and parsed per row (the percentiles need each ticket's duration)."""

    output_field = FloatField()
    arg_joiner = " - "
    template = "EXTRACT(EPOCH FROM (%(expressions)s))"

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )


def _seconds(value: float) -> float:
    # SQLite's julianday is a double: round off its last digits (to the millisecond).
    return max(0.0, round(float(value), 3))


class ReportInputError(ValueError):
    """The report's filters are wrong; `messages` says what, in words."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class ReportFilter:
    """What a report covers: `start` to `end` (both included, in the report's time zone),
    optionally one page, team or agent, grouped by `group` (a key of GROUPS)."""

    start: date
    end: date
    group: str = "day"
    page: Page | None = None
    team: Team | None = None
    agent: Agent | None = None

    def query(self) -> dict[str, str]:
        """The filter as the page's query string (for its links: CSV, the groups)."""
        params = {"from": self.start.isoformat(), "to": self.end.isoformat(), "group": self.group}
        if self.page is not None:
            params["page"] = str(self.page.pk)
        if self.team is not None:
            params["team"] = str(self.team.pk)
        if self.agent is not None:
            params["agent"] = str(self.agent.pk)
        return params


def report_zone() -> ZoneInfo:
    return ZoneInfo(settings.REPORTS_TIME_ZONE)


def report_today() -> date:
    from helpdesk import clock  # noqa: PLC0415 -- the reports read the clock only here

    return clock.now().astimezone(report_zone()).date()


def report_filter_parse(params: Mapping[str, str], *, user: Agent) -> ReportFilter:
    """The filter from the page's query string. Missing values take the defaults (the
    last 30 days, per day, everything the user may see). Raises ReportInputError with
    every problem, in words."""
    errors: list[str] = []
    today = report_today()
    end = _date(params.get("to", ""), "to", today, errors)
    start = _date(params.get("from", ""), "from", end - timedelta(days=DEFAULT_DAYS - 1), errors)
    if not errors:
        if start > end:
            errors.append(f"The range starts ({start}) after it ends ({end}).")
        elif (end - start).days + 1 > MAX_DAYS:
            errors.append(
                f"The range is {(end - start).days + 1} days; a report covers at most "
                f"{MAX_DAYS} days."
            )
    group = params.get("group", "") or "day"
    if group not in GROUPS:
        errors.append(f"Group by {group!r} is not known: choose {', '.join(GROUPS)}.")
    visible = visible_page_ids(user)
    page = _choice(params.get("page", ""), "page", errors, _pages(user))
    team = _choice(params.get("team", ""), "team", errors, Team.objects.all())
    if (
        team is not None
        and visible is not None
        and not Team.pages.through.objects.filter(team=team, page_id__in=visible).exists()
    ):
        errors.append(f"The team {team} has no page you can see.")
    agent = _choice(params.get("agent", ""), "agent", errors, report_agents())
    if errors:
        raise ReportInputError(errors)
    return ReportFilter(start=start, end=end, group=group, page=page, team=team, agent=agent)


def _date(text: str, name: str, default: date, errors: list[str]) -> date:
    text = text.strip()
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"'{name}' must be a date like 2026-11-30, not {text[:40]!r}.")
        return default


def _choice(text: str, name: str, errors: list[str], rows: QuerySet[Any]) -> Any:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        errors.append(f"The {name} must be chosen from the list, not {text[:40]!r}.")
        return None
    found = rows.filter(pk=int(text)).first()
    if found is None:
        errors.append(f"There is no {name} {text} that you can see.")
    return found


def _pages(user: Agent) -> QuerySet[Page]:
    visible = visible_page_ids(user)
    pages = Page.objects.order_by("name", "pk")
    return pages if visible is None else pages.filter(pk__in=visible)


def report_choices(user: Agent) -> dict[str, list[tuple[int, str]]]:
    """What the filters offer this user: pages they see, teams, agents."""
    return {
        "pages": [(page.pk, page.name) for page in _pages(user)],
        "teams": [(team.pk, team.name) for team in Team.objects.order_by("name")],
        "agents": [(agent.pk, _agent_label(agent)) for agent in report_agents()],
    }


def report_agents() -> QuerySet[Agent]:
    return get_user_model().objects.filter(is_active=True).order_by("username")


def _agent_label(agent: Agent) -> str:
    return agent.get_full_name() or agent.get_username()


# --- Figures --------------------------------------------------------------------------


@dataclass(frozen=True)
class Durations:
    """Seconds: how many, the median and the 90th percentile (nearest rank)."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, seconds: list[float]) -> Durations:
        if not seconds:
            return cls()
        ordered = sorted(seconds)
        rank = math.ceil(0.9 * len(ordered))
        return cls(len(ordered), statistics.median(ordered), ordered[rank - 1])


@dataclass
class _Acc:
    handovers: int = 0
    by_trigger: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_way: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    first_response: list[float] = field(default_factory=list)
    unanswered: int = 0
    resolution: list[float] = field(default_factory=list)
    takebacks_bot: int = 0
    takebacks_page_inbox: int = 0
    lapses: int = 0
    failed_sends: int = 0
    csat_asked: int = 0
    csat_answered: int = 0
    csat_score_sum: int = 0
    csat_satisfied: int = 0


@dataclass(frozen=True)
class Row:
    """One line of the report: a day, page, team or agent (or the total)."""

    key: Any
    label: str
    handovers: int
    by_trigger: dict[str, int]
    by_way: dict[str, int]
    first_response: Durations
    unanswered: int
    resolution: Durations
    takebacks_bot: int
    takebacks_page_inbox: int
    lapses: int
    failed_sends: int
    csat_asked: int
    csat_answered: int
    csat_average: float | None
    csat_satisfied_share: float | None

    @classmethod
    def of(cls, key: Any, label: str, acc: _Acc) -> Row:
        answered = acc.csat_answered
        return cls(
            key=key,
            label=label,
            handovers=acc.handovers,
            by_trigger=dict(acc.by_trigger),
            by_way=dict(acc.by_way),
            first_response=Durations.of(acc.first_response),
            unanswered=acc.unanswered,
            resolution=Durations.of(acc.resolution),
            takebacks_bot=acc.takebacks_bot,
            takebacks_page_inbox=acc.takebacks_page_inbox,
            lapses=acc.lapses,
            failed_sends=acc.failed_sends,
            csat_asked=acc.csat_asked,
            csat_answered=answered,
            csat_average=acc.csat_score_sum / answered if answered else None,
            csat_satisfied_share=acc.csat_satisfied / answered if answered else None,
        )


@dataclass(frozen=True)
class Report:
    filter: ReportFilter
    zone: str
    rows: list[Row]
    total: Row
    triggers: list[tuple[str, str]]  # (value, label) of the triggers with a handover
    ways: list[tuple[str, str]]
    hours_messages: list[int]  # customer messages per hour of the day, 0..23
    hours_handovers: list[int]


def report_build(report_filter: ReportFilter, *, user: Agent) -> Report:
    """Every figure of the report, per group and in total."""
    zone = report_zone()
    scope = _Scope(report_filter, user=user, zone=zone)
    accs = scope.collect(report_filter.group)
    if report_filter.group == "team":
        total = scope.collect(None).get(None, _Acc())  # a page on two teams counts once
    else:
        total = _merged(accs.values())
    rows = [Row.of(key, label, accs.get(key, _Acc())) for key, label in scope.keys(accs)]
    trigger_values = {value for acc in [total] for value, n in acc.by_trigger.items() if n}
    way_values = {value for value, n in total.by_way.items() if n}
    return Report(
        filter=report_filter,
        zone=str(zone),
        rows=rows,
        total=Row.of(None, "Total", total),
        triggers=[(v, str(label)) for v, label in HandoverTrigger.choices if v in trigger_values],
        ways=[(v, str(label)) for v, label in HandoverWay.choices if v in way_values],
        hours_messages=scope.hours_messages(),
        hours_handovers=scope.hours_handovers(),
    )


def _merged(accs: Iterable[_Acc]) -> _Acc:
    total = _Acc()
    for acc in accs:
        total.handovers += acc.handovers
        for value, n in acc.by_trigger.items():
            total.by_trigger[value] += n
        for value, n in acc.by_way.items():
            total.by_way[value] += n
        total.first_response += acc.first_response
        total.unanswered += acc.unanswered
        total.resolution += acc.resolution
        total.takebacks_bot += acc.takebacks_bot
        total.takebacks_page_inbox += acc.takebacks_page_inbox
        total.lapses += acc.lapses
        total.failed_sends += acc.failed_sends
        total.csat_asked += acc.csat_asked
        total.csat_answered += acc.csat_answered
        total.csat_score_sum += acc.csat_score_sum
        total.csat_satisfied += acc.csat_satisfied
    return total


class _Scope:
    """The report's rows of each kind: in the range, on the pages in scope, for the agent."""

    def __init__(self, report_filter: ReportFilter, *, user: Agent, zone: ZoneInfo) -> None:
        self.filter = report_filter
        self.zone = zone
        self.since = datetime.combine(report_filter.start, time.min, tzinfo=zone)
        self.until = datetime.combine(report_filter.end + timedelta(days=1), time.min, tzinfo=zone)
        pages = visible_page_ids(user)
        if report_filter.page is not None:
            pages = {report_filter.page.pk} & (
                pages if pages is not None else {report_filter.page.pk}
            )
        if report_filter.team is not None:
            team_pages = set(report_filter.team.pages.values_list("pk", flat=True))
            pages = team_pages if pages is None else pages & team_pages
        if pages is not None and pages and not Page.objects.exclude(pk__in=pages).exists():
            pages = None  # every page: no filter, and no join to find a row's page
        self.pages = pages  # None: every page

    def _narrow(self, rows: QuerySet[Any], *, page: str, agent: str) -> QuerySet[Any]:
        if self.pages is not None:
            rows = rows.filter(**{f"{page}__in": self.pages})
        if self.filter.agent is not None:
            rows = rows.filter(**{agent: self.filter.agent.pk})
        return rows

    def _key(self, group: str | None, *, at: str, page: str, agent: str) -> Any:
        if group == "day":
            return TruncDate(at, tzinfo=self.zone)
        if group == "page":
            return F(page)
        if group == "team":
            return F(page.removesuffix("_id") + "__teams")
        if group == "agent":
            return F(agent)
        return Value(None, output_field=IntegerField())

    def collect(self, group: str | None) -> dict[Any, _Acc]:
        accs: dict[Any, _Acc] = defaultdict(_Acc)
        for gather in (
            self._handovers,
            self._first_responses,
            self._resolutions,
            self._control_losses,
            self._failed_sends,
            self._ratings,
        ):
            gather(group, accs)
        return accs

    def _handovers(self, group: str | None, accs: dict[Any, _Acc]) -> None:
        rows = TicketEvent.objects.filter(
            kind__in=HANDOVER_KINDS, created_at__gte=self.since, created_at__lt=self.until
        )
        paths = {"page": "ticket__conversation__page_id", "agent": "ticket__assignee_id"}
        rows = self._narrow(rows, **paths)
        for key, trigger, way, n in _grouped(
            rows, self._key(group, at="created_at", **paths), "trigger", "way"
        ):
            acc = accs[key]
            acc.handovers += n
            acc.by_trigger[trigger] += n
            acc.by_way[way] += n

    def _first_responses(self, group: str | None, accs: dict[Any, _Acc]) -> None:
        first_reply = (
            Message.objects.filter(
                ticket=OuterRef("pk"),
                direction=Message.Direction.OUTBOUND,
                author_kind=Message.Author.AGENT,
            )
            .exclude(status=Message.Status.FAILED)
            .order_by("created_at")
            .values("created_at")[:1]
        )
        paths = {"page": "conversation__page_id", "agent": "assignee_id"}
        rows = self._narrow(
            Ticket.objects.filter(opened_at__gte=self.since, opened_at__lt=self.until), **paths
        )
        key = self._key(group, at="opened_at", **paths)
        for group_key, waited in (
            rows.annotate(group_key=key, waited=_Seconds(Subquery(first_reply), F("opened_at")))
            .values_list("group_key", "waited")
            .order_by()
        ):
            if waited is None:
                accs[group_key].unanswered += 1
            else:
                accs[group_key].first_response.append(_seconds(waited))

    def _resolutions(self, group: str | None, accs: dict[Any, _Acc]) -> None:
        paths = {"page": "conversation__page_id", "agent": "assignee_id"}
        rows = self._narrow(
            Ticket.objects.filter(
                status=Ticket.Status.CLOSED, closed_at__gte=self.since, closed_at__lt=self.until
            ),
            **paths,
        )
        key = self._key(group, at="closed_at", **paths)
        for group_key, took in (
            rows.annotate(group_key=key, took=_Seconds(F("closed_at"), F("opened_at")))
            .values_list("group_key", "took")
            .order_by()
        ):
            accs[group_key].resolution.append(_seconds(took))

    def _control_losses(self, group: str | None, accs: dict[Any, _Acc]) -> None:
        """Take-backs and lapses: the thread left the helpdesk (state `agent`) for the bot
        or the Page Inbox, or for nobody. The agent is the assignee of the ticket the
        conversation had then (its last opened before the change)."""
        holder = (
            Ticket.objects.filter(
                conversation=OuterRef("conversation"), opened_at__lte=OuterRef("created_at")
            )
            .order_by("-opened_at")
            .values("assignee_id")[:1]
        )
        rows = ControlTransition.objects.filter(
            created_at__gte=self.since,
            created_at__lt=self.until,
            from_state=ControlState.AGENT,
            to_state__in=(ControlState.TAKEN, ControlState.BOT, ControlState.IDLE),
            owner_role__in=(*TAKE_BACK_ROLES, OwnerRole.NOBODY),
        )
        if self.pages is not None:
            rows = rows.filter(conversation__page_id__in=self.pages)
        if group == "agent" or self.filter.agent is not None:
            rows = rows.annotate(holder=Subquery(holder))
        if self.filter.agent is not None:
            rows = rows.filter(holder=self.filter.agent.pk)  # type: ignore[misc]
        key = self._key(group, at="created_at", page="conversation__page_id", agent="holder")
        for group_key, role, n in _grouped(rows, key, "owner_role"):
            acc = accs[group_key]
            if role == OwnerRole.BOT:
                acc.takebacks_bot += n
            elif role == OwnerRole.PAGE_INBOX:
                acc.takebacks_page_inbox += n
            else:
                acc.lapses += n

    def _failed_sends(self, group: str | None, accs: dict[Any, _Acc]) -> None:
        paths = {"page": "conversation__page_id", "agent": "author_id"}
        rows = self._narrow(
            Message.objects.filter(
                status=Message.Status.FAILED,
                created_at__gte=self.since,
                created_at__lt=self.until,
                direction=Message.Direction.OUTBOUND,
            ),
            **paths,
        )
        for group_key, n in _grouped(rows, self._key(group, at="created_at", **paths)):
            accs[group_key].failed_sends += n

    def _ratings(self, group: str | None, accs: dict[Any, _Acc]) -> None:
        paths = {"page": "ticket__conversation__page_id", "agent": "ticket__assignee_id"}
        rows = self._narrow(
            Csat.objects.filter(asked_at__gte=self.since, asked_at__lt=self.until), **paths
        )
        answered = Q(status=Csat.Status.ANSWERED)
        for group_key, asked, got, score_sum, happy in (
            rows.annotate(group_key=self._key(group, at="asked_at", **paths))
            .values("group_key")
            .annotate(
                asked=Count("pk"),
                got=Count("pk", filter=answered),
                score_sum=Sum("score", filter=answered),
                happy=Count("pk", filter=answered & Q(score__gte=4)),
            )
            .values_list("group_key", "asked", "got", "score_sum", "happy")
            .order_by()
        ):
            acc = accs[group_key]
            acc.csat_asked += asked
            acc.csat_answered += got
            acc.csat_score_sum += score_sum or 0
            acc.csat_satisfied += happy

    def hours_messages(self) -> list[int]:
        """Customer messages per hour of the day: counted per quarter hour of their time
        in the database (an integer division, no time zone function per row), each
        quarter then put in its hour of the report's zone (DST and half-hour zones too)."""
        rows = self._narrow(
            # (status, created_at) is indexed: a customer's message is `received`.
            Message.objects.filter(
                status=Message.Status.RECEIVED,
                created_at__gte=self.since,
                created_at__lt=self.until,
                author_kind=Message.Author.CUSTOMER,
            ),
            page="conversation__page_id",
            agent="ticket__assignee_id",
        )
        counts = [0] * 24
        for quarter, n in (
            rows.annotate(quarter=F("timestamp") / QUARTER_MS)
            .values("quarter")
            .annotate(n=Count("pk"))
            .values_list("quarter", "n")
            .order_by()
        ):
            counts[datetime.fromtimestamp(quarter * QUARTER_MS / 1000, self.zone).hour] += n
        return counts

    def hours_handovers(self) -> list[int]:
        rows = self._narrow(
            TicketEvent.objects.filter(
                kind__in=HANDOVER_KINDS, created_at__gte=self.since, created_at__lt=self.until
            ),
            page="ticket__conversation__page_id",
            agent="ticket__assignee_id",
        )
        return _per_hour(rows, ExtractHour("created_at", tzinfo=self.zone))

    def keys(self, accs: dict[Any, _Acc]) -> list[tuple[Any, str]]:
        """The rows, in order: every day of the range; the pages, teams and agents in
        scope or with figures (by name), then "no team" or "unassigned" if any."""
        group = self.filter.group
        if group == "day":
            days = (self.filter.end - self.filter.start).days + 1
            return [
                (day, day.isoformat())
                for day in (self.filter.start + timedelta(days=n) for n in range(days))
            ]
        found = {key for key in accs if key is not None}
        labelled: list[tuple[Any, str]]
        if group == "page":
            pages = Page.objects.all()
            if self.pages is not None:
                pages = pages.filter(pk__in=self.pages | found)
            return [(page.pk, page.name) for page in pages.order_by("name", "pk")]
        if group == "team":
            teams = Team.objects.filter(pk__in=found)
            if self.filter.team is not None:
                teams = Team.objects.filter(pk=self.filter.team.pk)
            labelled = [(team.pk, team.name) for team in teams.order_by("name")]
            return labelled + ([(None, "No team")] if None in accs else [])
        users = get_user_model().objects.filter(pk__in=found)
        labelled = sorted(((user.pk, _agent_label(user)) for user in users), key=lambda r: r[1])
        return labelled + ([(None, "Unassigned")] if None in accs else [])


def _grouped(rows: QuerySet[Any], key: Any, *fields: str) -> list[tuple[Any, ...]]:
    """(key, *fields, count) for each group, counted in the database."""
    return list(
        rows.annotate(group_key=key)
        .values("group_key", *fields)
        .annotate(n=Count("pk"))
        .values_list("group_key", *fields, "n")
        .order_by()
    )


def _per_hour(rows: QuerySet[Any], hour: Any) -> list[int]:
    counts = [0] * 24
    for value, n in (
        rows.annotate(hour=hour)
        .values("hour")
        .annotate(n=Count("pk"))
        .values_list("hour", "n")
        .order_by()
    ):
        counts[int(value)] += n
    return counts


# --- The page's tables ----------------------------------------------------------------

TABLE_HEADINGS = [
    "Handovers",
    "First response, median",
    "First response, p90",
    "No reply yet",
    "Resolution, median",
    "Resolution, p90",
    "Resolved",
    "Take-backs, bot",
    "Take-backs, Page Inbox",
    "Lapses",
    "Failed sends",
    "CSAT average",
    "CSAT answered / asked",
]


def report_cells(row: Row) -> list[str]:
    """A row of the page's main table, as text (TABLE_HEADINGS' order)."""
    return [
        str(row.handovers),
        duration_text(row.first_response.median),
        duration_text(row.first_response.p90),
        str(row.unanswered),
        duration_text(row.resolution.median),
        duration_text(row.resolution.p90),
        str(row.resolution.count),
        str(row.takebacks_bot),
        str(row.takebacks_page_inbox),
        str(row.lapses),
        str(row.failed_sends),
        "—" if row.csat_average is None else f"{row.csat_average:.2f}",
        f"{row.csat_answered} / {row.csat_asked}",
    ]


def report_stats(report: Report) -> list[tuple[str, str]]:
    """The headline figures of the whole range: (value, what it is)."""
    total = report.total
    share = total.csat_satisfied_share
    return [
        (str(total.handovers), "handovers"),
        (duration_text(total.first_response.median), "median first response"),
        (duration_text(total.resolution.median), "median resolution"),
        (str(total.takebacks_bot + total.takebacks_page_inbox), "take-backs"),
        (str(total.lapses), "lapses"),
        (str(total.failed_sends), "failed sends"),
        ("—" if share is None else f"{share:.0%}", "CSAT 4 or 5"),
    ]


def report_handover_cells(report: Report, row: Row) -> list[str]:
    """A row of the handovers table: per trigger, then per way (the report's columns)."""
    return [str(row.by_trigger.get(value, 0)) for value, _ in report.triggers] + [
        str(row.by_way.get(value, 0)) for value, _ in report.ways
    ]


# --- CSV ------------------------------------------------------------------------------


def report_csv(report: Report) -> str:
    """The report's table as CSV: one line per group, then the total. Durations in
    seconds; a text cell that a spreadsheet would run as a formula is quoted with '."""
    out = io.StringIO()
    writer = csv.writer(out)
    triggers = [(v, label) for v, label in HandoverTrigger.choices]
    ways = [(v, label) for v, label in HandoverWay.choices]
    writer.writerow(
        [
            GROUPS[report.filter.group].lower(),
            "handovers",
            *(f"handovers: {label}" for _, label in triggers),
            *(f"handovers: {label}" for _, label in ways),
            "first responses",
            "first response median (s)",
            "first response p90 (s)",
            "tickets without a reply",
            "resolved",
            "resolution median (s)",
            "resolution p90 (s)",
            "take-backs by the bot",
            "take-backs by the Page Inbox",
            "lapses",
            "failed sends",
            "CSAT asked",
            "CSAT answered",
            "CSAT average",
            "CSAT share 4-5",
        ]
    )
    for row in [*report.rows, report.total]:
        writer.writerow(
            [
                _cell(row.label),
                row.handovers,
                *(row.by_trigger.get(v, 0) for v, _ in triggers),
                *(row.by_way.get(v, 0) for v, _ in ways),
                row.first_response.count,
                _number(row.first_response.median),
                _number(row.first_response.p90),
                row.unanswered,
                row.resolution.count,
                _number(row.resolution.median),
                _number(row.resolution.p90),
                row.takebacks_bot,
                row.takebacks_page_inbox,
                row.lapses,
                row.failed_sends,
                row.csat_asked,
                row.csat_answered,
                _number(row.csat_average, 2),
                _number(row.csat_satisfied_share, 3),
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if digits else str(round(value))


def duration_text(seconds: float | None) -> str:
    """ "42 s", "7 min", "3 h 05 min", "2 d 4 h" (— when there is none)."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
