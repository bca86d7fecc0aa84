"""Office hours: whether a team works now, and when it opens next, in its time zone.

Pure reads of `OfficeHours`, `Holiday` and `TeamRouting.time_zone`. "Now" is the
project's clock (`helpdesk.clock`, which tests and the emulator move). A team with no
office hours works at any time; a holiday closes the whole day, in the team's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from agents.models import Holiday, OfficeHours, Team, TeamRouting

# How far ahead an opening is looked for: a team closed longer than that "opens" never.
LOOKAHEAD_DAYS = 60


@dataclass(frozen=True)
class Schedule:
    """A team's week, read once: ranges per weekday (Monday 0), holidays, the zone."""

    zone: ZoneInfo
    week: dict[int, list[tuple[time, time]]]
    holidays: frozenset[date]

    @property
    def always_open(self) -> bool:
        return not self.week

    def is_open(self, at: datetime) -> bool:
        if self.always_open:
            return True
        local = at.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        now = local.time()
        return any(opens <= now < closes for opens, closes in self.week.get(local.weekday(), []))

    def next_opening(self, at: datetime) -> datetime | None:
        """The next time the team opens after `at` (`at` itself when it is open), or None
        when it opens in none of the next LOOKAHEAD_DAYS days."""
        if self.is_open(at):
            return at
        local = at.astimezone(self.zone)
        for offset in range(LOOKAHEAD_DAYS + 1):
            day = local.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            for opens, _closes in self.week.get(day.weekday(), []):
                start = datetime.combine(day, opens, tzinfo=self.zone)
                if start > local:
                    return start
        return None


def schedule_for(team: Team) -> Schedule:
    """Three queries: the team's routing (its zone), office hours, holidays. A team
    without routing works at any time."""
    routing = TeamRouting.objects.filter(team=team).first()
    week: dict[int, list[tuple[time, time]]] = {}
    if routing is None:
        return Schedule(zone=ZoneInfo("UTC"), week=week, holidays=frozenset())
    for row in OfficeHours.objects.filter(routing=routing).order_by("weekday", "opens"):
        week.setdefault(row.weekday, []).append((row.opens, row.closes))
    holidays = frozenset(Holiday.objects.filter(routing=routing).values_list("date", flat=True))
    return Schedule(zone=ZoneInfo(routing.time_zone), week=week, holidays=holidays)


def opens_text(opening: datetime, *, now: datetime, zone: ZoneInfo) -> str:
    """How a customer is told the next opening, in the team's zone: "9:00" today,
    "Monday 9:00" within the week, "Monday 12 January 9:00" later."""
    local = opening.astimezone(zone)
    clock_text = f"{local.hour}:{local.minute:02d}"
    days = (local.date() - now.astimezone(zone).date()).days
    if days == 0:
        return clock_text
    if days < 7:
        return f"{local:%A} {clock_text}"
    return f"{local:%A} {local.day} {local:%B} {clock_text}"
