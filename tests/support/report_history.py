"""A month of support history for the reports page (agents/reports.py): the browser
tests and the README's screenshots read it.

`history_seed()` writes, straight through the ORM, what a small helpdesk would have done
over `days` days ending on `end`: three pages of "Acme" on two teams, four agents with
names, a few hundred handovers (busier on weekdays from 9 to 18) started by the bot,
keywords, postbacks, quick replies, agents and the Page Inbox; first replies minutes
after the opening, most tickets closed hours later, some reopened, some taken back by
the bot or the Page Inbox, a few lapses and failed sends, and ratings for part of the
closed tickets. The same `seed` gives the same history. It returns what it made, per day
where a test needs to add up a range.

On a running stack (tests.support.stack), `history_seed_on(stack)` runs it in that
stack's database through `manage.py shell` and returns the same dict (from JSON);
`count_between` adds up one of its per-day counts over a report's range.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction

from agents.models import (
    Agent,
    Contact,
    ControlState,
    ControlTransition,
    Conversation,
    Csat,
    Message,
    OwnerRole,
    Team,
    Ticket,
    TicketEvent,
)
from agents.reports import report_zone
from helpdesk import clock
from webhooks.models import Page
from webhooks.services import page_connect

if TYPE_CHECKING:
    from tests.support.stack import Stack

PSID_PREFIX = "39"  # 16 digits: 39 then 14; no other test's PSIDs start so
BOT_APP_ID = "390000000000001"

# (page id, name, team): their own page ids, so that the stack's E2E Page is left alone.
PAGES = [
    ("390000000000101", "Acme Shoes", "Shoes"),
    ("390000000000102", "Acme Travel", "Travel"),
    ("390000000000103", "Acme Outlet", "Shoes"),
]
PAGE_WEIGHTS = [0.5, 0.35, 0.15]
# username, first name, last name, team
AGENTS = [
    ("maria.lopez", "Maria", "Lopez", "Shoes"),
    ("tom.becker", "Tom", "Becker", "Shoes"),
    ("priya.nair", "Priya", "Nair", "Travel"),
    ("jonas.berg", "Jonas", "Berg", "Travel"),
]
# What started a handover and how control came, and how often.
HANDOVER_MIX = [
    (("bot", "pass"), 30),
    (("keyword", "request"), 24),
    (("postback", "request"), 10),
    (("quick_reply", "request"), 9),
    (("keyword", "take"), 5),
    (("postback", "take"), 3),
    (("quick_reply", "take"), 3),
    (("agent", "take"), 5),
    (("page_inbox", "pass"), 7),
]
REOPEN_MIX = [(("keyword", "request"), 2), (("agent", "request"), 1), (("agent", "take"), 1)]
# Handovers per hour of a weekday (0..23): quiet at night, busy 9 to 18.
HOUR_SHAPE = [
    0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.6, 3.0, 3.6, 3.8,
    3.2, 3.0, 3.5, 3.6, 3.3, 2.8, 2.2, 1.4, 1.0, 0.8, 0.6, 0.4,
]  # fmt: skip
WEEKDAY_FACTOR = [1.25, 1.1, 1.0, 1.0, 0.9, 0.45, 0.35]  # Monday busiest, quiet weekend
PER_WEEKDAY = 13  # handovers on an average weekday
SCORES = [(5, 56), (4, 26), (3, 9), (2, 5), (1, 4)]
FIRST_NAMES = [
    "Ada", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jamal",
    "Kai", "Lena", "Mateo", "Nora", "Oskar", "Paula", "Quentin", "Rosa", "Sami", "Tara",
    "Umar", "Vera", "Wen", "Yusuf", "Zoë",
]  # fmt: skip
LAST_NAMES = [
    "Adams", "Brandt", "Costa", "Dubois", "Evans", "Fischer", "García", "Hansen", "Ito",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Perez", "Rossi", "Silva",
    "Tanaka", "Urban", "Vogel", "Weber", "Young", "Zhang",
]  # fmt: skip
CUSTOMER_FIRST = [
    "Hi, my order hasn't arrived yet",
    "can I talk to a human?",
    "I need to change my booking",
    "The shoes are too small, how do I return them?",
    "Agent please",
    "My payment went through twice",
    "Is the flight still on time?",
]
CUSTOMER_MORE = [
    "Order 48213",
    "Thanks!",
    "It says delivered but I have nothing",
    "ok, and how long does the refund take?",
    "Perfect, thank you",
    "The booking reference is K7Q2ZP",
]
AGENT_REPLIES = [
    "Hi! I'm looking into it now.",
    "Thanks for waiting. Could you send me your order number?",
    "I've started the return: you'll get a label by email.",
    "Your refund is on its way (3 to 5 working days).",
    "Done! Anything else I can help with?",
]
SEND_ERROR = "Meta refused it: (#10) This message is sent outside of allowed window."


@dataclass
class _Rows:
    """One history's rows before they are written; a ticket's rows point to it by its
    index in `tickets` (nothing has a pk yet)."""

    contacts: list[Contact] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    events: list[tuple[int, TicketEvent]] = field(default_factory=list)
    messages: list[tuple[int, Message]] = field(default_factory=list)
    transitions: list[tuple[int, ControlTransition]] = field(default_factory=list)
    ratings: list[tuple[int, Csat]] = field(default_factory=list)


_MARK = "HISTORY "  # history_seed_json's answer follows it on its line
COUNTS = (
    "reopened",
    "first_replies",
    "takebacks_bot",
    "takebacks_page_inbox",
    "lapses",
    "failed_sends",
    "csat_asked",
    "csat_answered",
    "csat_satisfied",
    "customer_messages",
)


def history_seed(*, days: int = 30, end: date | None = None, seed: int = 1) -> dict[str, Any]:
    """Write the history (see the module's docstring). Returns what was made: start and
    end (ISO dates), zone, pages, teams, agents ({username: full name}); tickets, closed,
    open, waiting; handovers, handovers_by_day and unassigned_by_day ({ISO day: n}, days
    of the report's time zone: what the report counts per day); and the totals COUNTS."""
    zone = report_zone()
    now = clock.now().astimezone(zone)
    end = end or now.date() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    with transaction.atomic():
        pages, teams = _pages_and_teams()
        agents = _agents(teams)
        story = _Story(random.Random(seed), zone=zone, now=now, first_psid=_next_psid())
        day = start
        while day <= end:
            for when in story.handover_times(day):
                page_id, _, team = story.rng.choices(PAGES, PAGE_WEIGHTS)[0]
                story.ticket(page=pages[page_id], agents=agents[team], opened=when)
            day += timedelta(days=1)
        _write(story.rows)
    tickets = story.rows.tickets
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "zone": str(zone),
        "pages": [name for _, name, _ in PAGES],
        "teams": sorted(teams),
        "agents": {u.username: u.get_full_name() for group in agents.values() for u in group},
        "tickets": len(tickets),
        "closed": sum(t.status == Ticket.Status.CLOSED for t in tickets),
        "open": sum(t.status == Ticket.Status.OPEN for t in tickets),
        "waiting": sum(t.status == Ticket.Status.WAITING for t in tickets),
        "handovers": sum(story.by_day.values()),
        "handovers_by_day": dict(sorted(story.by_day.items())),
        "unassigned_by_day": dict(sorted(story.unassigned_by_day.items())),
        **{name: story.tally[name] for name in COUNTS},
    }


def history_seed_on(stack: Stack, **options: Any) -> dict[str, Any]:
    """`history_seed(**options)` in a running stack's database, through manage.py shell
    (`end` may be a date or an ISO date)."""
    given = {k: v.isoformat() if isinstance(v, date) else v for k, v in options.items()}
    output = stack.manage(
        "shell",
        "-c",
        "from tests.support.report_history import history_seed_json; "
        f"print(history_seed_json({json.dumps(given)!r}))",
    )
    line = next(line for line in output.splitlines() if line.startswith(_MARK))
    return json.loads(line.removeprefix(_MARK))


def history_seed_json(options: str) -> str:
    """`history_seed` with its options in JSON; its answer in JSON after a mark."""
    given = json.loads(options)
    if given.get("end"):
        given["end"] = date.fromisoformat(given["end"])
    return _MARK + json.dumps(history_seed(**given))


def count_between(
    history: dict[str, Any], start: date, end: date, key: str = "handovers_by_day"
) -> int:
    """A per-day count of `history` (handovers by default) from `start` to `end`, included."""
    return sum(n for day, n in history[key].items() if start <= date.fromisoformat(day) <= end)


# --- Setup: pages, teams, agents --------------------------------------------------------


def _pages_and_teams() -> tuple[dict[str, Page], dict[str, Team]]:
    pages: dict[str, Page] = {}
    teams: dict[str, Team] = {}
    for page_id, name, team_name in PAGES:
        pages[page_id], _ = page_connect(
            page_id=page_id,
            access_token=f"history-token-{page_id}",
            bot_app_id=BOT_APP_ID,
            name=name,
        )
        teams[team_name], _ = Team.objects.get_or_create(name=team_name)
        teams[team_name].pages.add(pages[page_id])
    return pages, teams


def _agents(teams: dict[str, Team]) -> dict[str, list[Agent]]:
    found: dict[str, list[Agent]] = {}
    for username, first, last, team in AGENTS:
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "is_staff": True},
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        teams[team].members.add(user)
        found.setdefault(team, []).append(user)
    return found


def _next_psid() -> int:
    """Numbers after PSID_PREFIX already taken (a second history gets new contacts)."""
    return Contact.objects.filter(psid__startswith=PSID_PREFIX, psid__regex=r"^\d{16}$").count()


# --- What happens to a ticket ----------------------------------------------------------


def _busy(when: datetime) -> bool:
    return when.weekday() < 5 and 9 <= when.hour < 18


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _pick(rng: random.Random, mix: list[tuple[Any, int]]) -> Any:
    values, weights = zip(*mix, strict=True)
    return rng.choices(values, weights)[0]


class _Story:
    """Tickets one after another, from one random generator: the same seed, the same
    history (up to `now`: nothing happens after it)."""

    def __init__(self, rng: random.Random, *, zone: Any, now: datetime, first_psid: int) -> None:
        self.rng = rng
        self.zone = zone
        self.now = now
        self.first_psid = first_psid
        self.rows = _Rows()
        self.tally: Counter[str] = Counter()
        self.by_day: Counter[str] = Counter()
        self.unassigned_by_day: Counter[str] = Counter()

    def handover_times(self, day: date) -> list[datetime]:
        """When the day's handovers came: how many by weekday, their hours by HOUR_SHAPE."""
        mean = PER_WEEKDAY * WEEKDAY_FACTOR[day.weekday()]
        count = max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        midnight = datetime.combine(day, time.min, tzinfo=self.zone)
        hours = self.rng.choices(range(24), HOUR_SHAPE, k=count)
        return sorted(
            midnight + timedelta(hours=h, seconds=self.rng.randrange(3600)) for h in hours
        )

    def minutes(self, median: float, spread: float) -> timedelta:
        """A log-normal duration: most near `median` minutes, with a long tail."""
        return timedelta(minutes=median * math.exp(self.rng.gauss(0, spread)))

    def day_of(self, when: datetime) -> str:
        return when.astimezone(self.zone).date().isoformat()

    def ticket(self, *, page: Page, agents: list[Agent], opened: datetime) -> None:
        """A customer asks for a person, control comes to the helpdesk, an agent answers
        and (mostly) the ticket closes: its rows go into `rows`."""
        _TicketStory(self, page=page, agent=self.rng.choice(agents), opened=opened).play()


class _TicketStory:
    def __init__(self, story: _Story, *, page: Page, agent: Agent, opened: datetime) -> None:
        rng = story.rng
        self.story, self.rng, self.page, self.agent, self.opened = story, rng, page, agent, opened
        self.index = len(story.rows.tickets)
        since = opened - timedelta(days=rng.randrange(1, 400))
        self.contact = Contact(
            page=page,
            psid=f"{PSID_PREFIX}{story.first_psid + self.index:014d}",
            first_name=rng.choice(FIRST_NAMES),
            last_name=rng.choice(LAST_NAMES),
            profile_fetched_at=opened,
            created_at=since,
        )
        self.conversation = Conversation(
            contact=self.contact,
            page=page,
            control_state=ControlState.BOT,
            owner_app_id=page.bot_app_id,
            owner_role=OwnerRole.BOT,
            created_at=since,
        )
        self.ticket = Ticket(
            conversation=self.conversation, status=Ticket.Status.WAITING, opened_at=opened
        )
        story.rows.contacts.append(self.contact)
        story.rows.conversations.append(self.conversation)
        story.rows.tickets.append(self.ticket)

    # Rows.

    def event(self, kind: str, at: datetime, **fields: Any) -> None:
        self.story.rows.events.append((self.index, TicketEvent(kind=kind, created_at=at, **fields)))

    def control(self, at: datetime, to_state: str, role: str, **fields: Any) -> None:
        """The thread changes hands (the conversation's state follows)."""
        apps: dict[str, str] = {
            OwnerRole.BOT: self.page.bot_app_id,
            OwnerRole.PAGE_INBOX: settings.PAGE_INBOX_APP_ID,
            OwnerRole.HELPDESK: settings.MESSENGER_APP_ID,
        }
        conversation = self.conversation
        row = ControlTransition(
            from_state=conversation.control_state,
            to_state=to_state,
            owner_role=role,
            owner_app_id=apps.get(role, ""),
            at=_ms(at),
            event_timestamp=_ms(at),
            created_at=at,
            **{"cause": ControlTransition.Cause.WEBHOOK, **fields},
        )
        self.story.rows.transitions.append((self.index, row))
        conversation.control_state, conversation.owner_role = to_state, role
        conversation.owner_app_id = row.owner_app_id
        conversation.owner_since = _ms(at)

    def say(self, at: datetime, author_kind: str, text: str, **fields: Any) -> None:
        outbound = author_kind != Message.Author.CUSTOMER
        message = Message(
            conversation=self.conversation,
            direction=Message.Direction.OUTBOUND if outbound else Message.Direction.INBOUND,
            author_kind=author_kind,
            text=text,
            timestamp=_ms(at),
            created_at=at,
            channel="messaging",
            **{"status": Message.Status.READ if outbound else Message.Status.RECEIVED, **fields},
        )
        self.story.rows.messages.append((self.index, message))
        if not outbound:
            self.story.tally["customer_messages"] += 1
            self.conversation.last_user_message_at = at
        self.conversation.last_message_at = at

    def reply(self, at: datetime) -> datetime:
        """The agent answers at `at` (after a failed send, now and then): when it went."""
        text = self.rng.choice(AGENT_REPLIES)
        if self.rng.random() < 0.04:
            self.say(
                at,
                Message.Author.AGENT,
                text,
                author=self.agent,
                status=Message.Status.FAILED,
                error=SEND_ERROR,
                error_code=10,
                attempts=3,
            )
            self.story.tally["failed_sends"] += 1
            at += self.story.minutes(2, 0.4)
        self.say(at, Message.Author.AGENT, text, author=self.agent)
        return at

    def handover(self, at: datetime, kind: str, trigger: str, way: str) -> None:
        self.event(kind, at, trigger=trigger, way=way, event_timestamp=_ms(at), detail="a human")
        self.story.by_day[self.story.day_of(at)] += 1
        if way == "request":
            self.control(at - timedelta(seconds=5), ControlState.REQUESTED, OwnerRole.BOT)
        self.control(at, ControlState.AGENT, OwnerRole.HELPDESK)

    def close(self, at: datetime) -> None:
        """Closed by its agent; handed back to the bot if the helpdesk still held it."""
        ticket = self.ticket
        ticket.status, ticket.closed_at, ticket.closing_note = Ticket.Status.CLOSED, at, "resolved"
        self.event(TicketEvent.Kind.CLOSED, at, actor=self.agent, detail="resolved")
        if self.conversation.control_state == ControlState.AGENT:
            self.control(
                at, ControlState.RETURNING, OwnerRole.HELPDESK, cause=ControlTransition.Cause.AGENT
            )
            self.control(at + timedelta(seconds=2), ControlState.BOT, OwnerRole.BOT)

    def keep(self) -> None:
        """Still open at the end: extended, so that no lapse falls due on a live stack."""
        if self.conversation.control_state == ControlState.AGENT:
            self.conversation.control_expires_at = _ms(self.story.now + timedelta(days=6))

    # The story.

    def play(self) -> None:
        rng, story, now, opened = self.rng, self.story, self.story.now, self.opened
        trigger, way = _pick(rng, HANDOVER_MIX)
        if trigger == "agent":  # an agent asked for a conversation they had seen
            self.contact.created_at = self.conversation.created_at = opened - timedelta(
                days=rng.randrange(2, 60)
            )
        self.say(
            opened - timedelta(seconds=rng.randrange(20, 150)),
            Message.Author.CUSTOMER,
            rng.choice(CUSTOMER_FIRST),
        )
        self.handover(opened, TicketEvent.Kind.OPENED, trigger, way)

        # Claimed, then the first reply: minutes in office hours, longer at night.
        claimed = opened + story.minutes(2.5 if _busy(opened) else 18, 0.7)
        first = claimed + story.minutes(1.5, 0.6)
        if first > now or (now - opened < timedelta(hours=8) and rng.random() < 0.5):
            story.unassigned_by_day[story.day_of(opened)] += 1
            return self.keep()  # waiting for an agent
        self.ticket.status, self.ticket.assignee = Ticket.Status.OPEN, self.agent
        self.event(TicketEvent.Kind.CLAIMED, claimed, actor=self.agent)
        last = self.reply(first)
        story.tally["first_replies"] += 1

        # The conversation goes on for a while.
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
            asked = last + story.minutes(4, 0.8)
            answered = asked + story.minutes(3 if _busy(asked) else 20, 0.8)
            if answered > now:
                break
            self.say(asked, Message.Author.CUSTOMER, rng.choice(CUSTOMER_MORE))
            last = self.reply(answered)

        # How it ends: the bot or the Page Inbox takes it back, control lapses, or the
        # agent closes it; or not yet.
        fate = rng.random()
        if fate < 0.06:
            lost = last + story.minutes(25, 0.8)
            self.lose(
                lost, ControlState.BOT, OwnerRole.BOT, "takebacks_bot", "the bot took it back"
            )
            closed = lost + story.minutes(8, 0.6)
        elif fate < 0.1:
            lost = last + story.minutes(40, 0.8)
            self.lose(
                lost,
                ControlState.TAKEN,
                OwnerRole.PAGE_INBOX,
                "takebacks_page_inbox",
                "the Page Inbox took the conversation",
            )
            closed = lost + story.minutes(15, 0.6)
        elif fate < 0.13:
            lost = (self.conversation.last_user_message_at or last) + timedelta(hours=24)
            self.lose(
                lost,
                ControlState.IDLE,
                OwnerRole.NOBODY,
                "lapses",
                "control lapsed: no message from the user for 24 hours",
                cause=ControlTransition.Cause.RECONCILE,
            )
            closed = lost + story.minutes(90, 0.8)
        else:
            closed = last + story.minutes(150, 1.0)
        if closed > now or rng.random() < 0.03:
            return self.keep()
        self.close(closed)

        # Now and then the customer comes back soon after, and the ticket reopens.
        if rng.random() < 0.07:
            again = closed + story.minutes(60, 0.6)
            answered = again + story.minutes(6, 0.6)
            done = answered + story.minutes(45, 0.7)
            if done < now:
                trigger, way = _pick(rng, REOPEN_MIX)
                self.say(again - timedelta(seconds=40), Message.Author.CUSTOMER, "one more thing")
                self.handover(again, TicketEvent.Kind.REOPENED, trigger, way)
                self.event(TicketEvent.Kind.CLAIMED, again + timedelta(minutes=1), actor=self.agent)
                self.reply(answered)
                story.tally["reopened"] += 1
                closed = done
                self.close(closed)
        self.rate(closed)

    def lose(
        self, at: datetime, to_state: str, role: str, count: str, why: str, **fields: Any
    ) -> None:
        if at > self.story.now:
            return
        self.control(at, to_state, role, detail=why, **fields)
        self.event(TicketEvent.Kind.CONTROL_LOST, at, detail=why)
        self.story.tally[count] += 1

    def rate(self, closed: datetime) -> None:
        """Part of the closed tickets were asked for a rating; most who answer are happy."""
        rng, tally = self.rng, self.story.tally
        if rng.random() >= 0.6:
            return
        answered = rng.random() < 0.7 and closed + timedelta(minutes=15) < self.story.now
        score = _pick(rng, SCORES) if answered else None
        rating = Csat(
            status=Csat.Status.ANSWERED if answered else Csat.Status.EXPIRED,
            asked_at=closed,
            expires_at=closed + timedelta(hours=2),
            score=score,
            answered_at=closed + self.story.minutes(3, 0.7) if answered else None,
        )
        self.story.rows.ratings.append((self.index, rating))
        tally["csat_asked"] += 1
        tally["csat_answered"] += answered
        tally["csat_satisfied"] += bool(score and score >= 4)


# --- Writing --------------------------------------------------------------------------


@contextmanager
def _times_as_given(*kinds: type[models.Model]) -> Iterator[None]:
    """Keep the times given to rows (auto_now_add and auto_now would write "now")."""
    touched = []
    for kind in kinds:
        for f in kind._meta.concrete_fields:
            if isinstance(f, models.DateTimeField) and (f.auto_now or f.auto_now_add):
                touched.append((f, f.auto_now, f.auto_now_add))
                f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in touched:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def _write(rows: _Rows) -> None:
    """Every row, in bulk, parents first (bulk_create gives them their pks)."""
    batch = 500
    with _times_as_given(Contact, Conversation, Ticket, TicketEvent, Message, ControlTransition):
        Contact.objects.bulk_create(rows.contacts, batch_size=batch)
        for conversation in rows.conversations:
            conversation.contact = conversation.contact  # sets contact_id, now known
        Conversation.objects.bulk_create(rows.conversations, batch_size=batch)
        for ticket in rows.tickets:
            ticket.conversation = ticket.conversation
            ticket.updated_at = ticket.closed_at or ticket.opened_at
        Ticket.objects.bulk_create(rows.tickets, batch_size=batch)
        for index, event in rows.events:
            event.ticket = rows.tickets[index]
        TicketEvent.objects.bulk_create([e for _, e in rows.events], batch_size=batch)
        for index, message in rows.messages:
            message.ticket = rows.tickets[index]
            message.conversation = message.ticket.conversation
        Message.objects.bulk_create([m for _, m in rows.messages], batch_size=batch)
        for index, transition in rows.transitions:
            transition.conversation = rows.tickets[index].conversation
        ControlTransition.objects.bulk_create([t for _, t in rows.transitions], batch_size=batch)
    for index, rating in rows.ratings:
        rating.ticket = rows.tickets[index]
    Csat.objects.bulk_create([r for _, r in rows.ratings], batch_size=batch)
