"""The inbox at scale: 100 k tickets and 1 M messages (2 k and 20 k with --quick),
generated with bulk inserts, then the agent API measured through Django's test client
in-process, with the real settings (`helpdesk.settings`, production mode: DEBUG off,
Redis for the rate limit's cache) against that database, with an agent's bearer token.

It runs in a child process per database (`python -m tests.bench.scale CONFIG`): Django's
settings are read once per process, and each database needs its own.

Measured, each over `CALLS` calls in rounds (p50 and p99), with the SQL queries of one call
(CaptureQueriesContext, on a call of its own so that recording SQL costs nothing to the
timings): the ticket list in each queue (waiting, mine, all_open, closed) and with
filters, the queue counts beside it, a ticket opened (its detail, its messages page,
its context panel), and search (a common word, a rare word, a word nobody wrote, a
customer's PSID). Each request opens its own database connection, as under Daphne with
the default DATABASE_CONN_MAX_AGE=0.

The reports page (`/reports/`, agents.reports) too, over the last 30, 90 and 365 days of
the data (which spans 300 days), grouped per day, agent, team and page (the last as
CSV), as a support lead sees it: a user with `agents.view_reports` (through a "Support
leads" group, not a superuser) on both teams, logged in with a session. The world has
what the reports read: each ticket's handover (`opened` event, its trigger and way in a
fixed mix), take-backs by the bot and the Page Inbox and lapses (and control changes that
do not count: our own hand-backs, another app taking the thread), failed agent sends
and ratings. Before it is timed, each report is checked to cover those rows (its CSV's
total: handovers, replies, take-backs, lapses, failed sends, ratings, all above 0) and
what it covers is counted (`covers`).

Baseline: `GET /api/v1/me` with the same token and client in the same run: the same
middleware, token check, rate limit (a Redis round trip), connection and JSON rendering,
and one query of its own: the floor of an authenticated API call. What an endpoint costs
above it is its own work. The query counts are also taken once at a tenth of the data
(`queries_small`): an endpoint whose count grows with the tickets shows there. The
generation time is context only (its own baseline: ratio 1).
"""

# Django is set up in the child process only (`child`): the parent (`make bench`) must
# import this module without settings, hence the imports inside functions.
# ruff: noqa: PLC0415

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.figures import Figure, Options, median, percentile

ROOT = Path(__file__).resolve().parents[2]
CALLS = 40  # per endpoint (the brief: at least 30)
WARMUP = 3
PAGES = 3
AGENTS = 20
UNCLOSED_EVERY = 20  # of the last tickets of conversations: 3 % of all, 3,000 at 100 k
RARE_WORD = "zanzibar"  # in exactly RARE_HITS messages
RARE_HITS = 25
MISSING_WORD = "quokka"  # in no message
TAGS = ("billing", "delivery", "refund", "vip", "bug")
CHUNKS = 10  # generated in tenths: the query counts are also taken after the first
# How a ticket's handover came (trigger, way), out of 100 (ticket j takes (37 j) % 100).
HANDOVER_MIX = (
    ("bot", "pass", 40),
    ("keyword", "pass", 15),
    ("postback", "pass", 10),
    ("quick_reply", "pass", 10),
    ("agent", "request", 8),
    ("agent", "take", 5),
    ("page_inbox", "pass", 5),
    ("other_app", "pass", 4),
    ("", "", 3),  # not recorded (rows older than the fields)
)
BOT_APP, PAGE_INBOX_APP, OTHER_APP = "222", "263902037430900", "333"
FAILED_EVERY = 50  # of the agents' messages, one failed (picked by a hash of its index)
CSAT_EVERY = 3  # of the tickets the agent closed: a rating asked, a third of them expired


@dataclass(frozen=True)
class Sizes:
    tickets: int
    messages: int


def sizes(quick: bool) -> Sizes:
    return Sizes(2_000, 20_000) if quick else Sizes(100_000, 1_000_000)


# --- the parent: start what the child needs, read its figures ---------------------------


def run(options: Options) -> list[Figure]:
    return figures(options.database, measure(options))


def measure(options: Options) -> dict[str, Any]:
    """Generate and measure in a child process on a fresh database (a SQLite file in
    `options.tmp`, or a new database on the PostgreSQL server): what it found."""
    from helpdesk.localservices import start_redis, stop
    from tests.support.stack import _database_url

    redis, redis_url = start_redis(options.tmp / "redis")
    base = options.database_url if options.database == "postgres" else ""
    database_url, drop = _database_url(options.tmp, base or "")
    try:
        return run_child(options, database_url=database_url, redis_url=redis_url)
    finally:
        stop(redis)
        drop()


def child_env(*, database_url: str, redis_url: str) -> dict[str, str]:
    keep = ("MESSENGER_", "DEBUG", "SECURE_", "TOKEN_", "DJANGO_", "DATABASE_", "REDIS_")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(keep)},
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "DEBUG": "0",
        "HELPDESK_ENV_FILE": "",
        "SECRET_KEY": "bench-secret-key",
        "MESSENGER_APP_ID": "111",
        "MESSENGER_APP_SECRET": "bench-app-secret",
        "MESSENGER_VERIFY_TOKEN": "bench-verify",
        "TOKEN_ENCRYPTION_KEY": "ZTJlLXRva2VuLWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM=",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        # The bench calls far more than an agent would: the limit stays on (its Redis
        # round trip is part of every call), high enough never to answer 429.
        "API_RATE_LIMIT_PER_MINUTE": "100000000",
    }


def run_child(options: Options, *, database_url: str, redis_url: str) -> dict[str, Any]:
    config = options.tmp / "scale.json"
    result = options.tmp / "scale-result.json"
    config.write_text(json.dumps({"quick": options.quick, "result": str(result)}))
    subprocess.run(
        [sys.executable, "-m", "tests.bench.scale", str(config)],
        env=child_env(database_url=database_url, redis_url=redis_url),
        cwd=ROOT,
        check=True,
    )
    found: dict[str, Any] = json.loads(result.read_text())
    return found


TARGETS = {"list": "≤ 30 ms"}


def figures(database: str, found: dict[str, Any]) -> list[Figure]:
    base = found["endpoints"]["baseline"]
    out = [
        Figure(
            "scale",
            database,
            f"generate {found['tickets']:,} tickets, {found['messages']:,} messages",
            found["generate_s"],
            "s",
            "itself (context only)",
            found["generate_s"],
            note=f"{found['rows']:,} rows, {found['rows'] / found['generate_s']:,.0f} rows/s",
        )
    ]
    covers = found.get("covers", {})
    for name, got in found["endpoints"].items():
        if name == "baseline":
            continue
        target = TARGETS.get(name.split(" ", 1)[0], "")
        note = covers_note(covers[name]) if name in covers else ""
        count_note = (
            f"same at {found['tickets_small']:,} tickets"
            if got["queries"] == got["queries_small"]
            else f"{got['queries_small']} at {found['tickets_small']:,} tickets"
        )
        out += [
            Figure(
                "scale", database, f"{name} p50", got["p50"], "ms",
                "GET /me p50", base["p50"], target=target, note=note,
            ),
            Figure(
                "scale", database, f"{name} p99", got["p99"], "ms",
                "GET /me p99", base["p99"], target=target,
            ),
            Figure(
                "scale", database, f"{name} SQL queries", got["queries"], "queries",
                "GET /me", base["queries"],
                target="constant" if target or name in covers else "", note=count_note,
            ),
        ]  # fmt: skip
    return out


def covers_note(got: dict[str, int]) -> str:
    """What a report's range holds and counted (`World.report_covers`)."""
    takebacks = got["take-backs by the bot"] + got["take-backs by the Page Inbox"]
    return (
        f"covers {got['handovers']:,} handovers, {got['messages']:,} messages "
        f"({got['customer messages']:,} customers'), {got['transitions']:,} control "
        f"changes ({takebacks:,} take-backs, {got['lapses']:,} lapses), "
        f"{got['failed sends']:,} failed sends, {got['CSAT asked']:,} ratings asked"
    )


# --- the child: generate, measure ------------------------------------------------------


def child(config_path: Path) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    config = json.loads(config_path.read_text())
    call_command("migrate", verbosity=0)
    size = sizes(config["quick"])
    world = World.create(size)
    started = time.perf_counter()
    small = world.generate(range(1))  # a tenth first: the query counts at that size
    generate_s = time.perf_counter() - started
    probes = world.probes()
    counts_small = {name: queries(call) for name, call in probes.items()}
    started = time.perf_counter()
    world.generate(range(1, CHUNKS))
    generate_s += time.perf_counter() - started
    covers = world.report_covers()
    probes = world.probes()  # the reports' ranges end on the data's last day: later now
    endpoints = {}
    for name, timings in timed(world.endpoints()).items():
        endpoints[name] = {
            "p50": median(timings),
            "p99": percentile(timings, 99),
            "queries": queries(probes[name]),
            "queries_small": counts_small[name],
        }
    Path(config["result"]).write_text(
        json.dumps(
            {
                "tickets": world.count_tickets(),
                "messages": world.count_messages(),
                "contacts": world.count_contacts(),
                "by_status": world.count_by_status(),
                "tickets_small": small,
                "rows": world.rows,
                "generate_s": generate_s,
                "endpoints": endpoints,
                "covers": covers,
            }
        )
    )


def timed(calls: dict[str, Call]) -> dict[str, list[float]]:
    """Each call's durations (ms), CALLS of each after WARMUP, in rounds of one call of
    each endpoint: a burst of load on a shared machine falls on the baseline as on the
    others, so that the ratios hold."""
    for call in calls.values():
        for number in range(WARMUP):
            call(number)
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for number in range(CALLS):
        for name, call in calls.items():
            started = time.perf_counter()
            call(number)
            timings[name].append((time.perf_counter() - started) * 1000)
    return timings


def queries(call: Call) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call(0)
    return len(captured)


SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "pi", "da", "be", "gu", "fo"]
COMMON = [
    "order",
    "hello",
    "thanks",
    "please",
    "help",
    "refund",
    "delivery",
    "package",
    "where",
    "when",
    "account",
    "password",
    "payment",
    "card",
    "late",
    "broken",
    "size",
    "colour",
    "return",
    "exchange",
    "address",
    "phone",
    "email",
    "invoice",
]
FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dan",
    "Eva",
    "Finn",
    "Gia",
    "Hugo",
    "Ines",
    "Jon",
    "Kai",
    "Lea",
    "Max",
    "Noor",
    "Omar",
    "Pia",
]
LAST = [
    "Smith",
    "Garcia",
    "Kowalski",
    "Nguyen",
    "Okafor",
    "Rossi",
    "Silva",
    "Tanaka",
    "Weber",
    "Young",
]


def vocabulary(rng: random.Random) -> list[str]:
    """Common support words, then made-up words: ~3,000 in all, drawn Zipf-like."""
    words = set()
    while len(words) < 3000:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return COMMON + sorted(words - set(COMMON) - {RARE_WORD, MISSING_WORD})


@contextmanager
def own_timestamps(*models: Any) -> Iterator[None]:
    """Let bulk_create keep the times generated (auto_now/auto_now_add would make every
    row's `now`)."""
    fields = [
        f
        for model in models
        for f in model._meta.concrete_fields
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, now, now_add in saved:
            f.auto_now, f.auto_now_add = now, now_add


class World:
    """The generated inbox: pages, teams, agents (one of them, `agent`, on the first
    team: he sees two pages of three), a support lead (`lead`: the reports' permission,
    on both teams), tags, and tickets generated a chunk at a time."""

    def __init__(self, size: Sizes) -> None:
        self.size = size
        self.rng = random.Random(12)
        self.words = vocabulary(self.rng)
        weights = [1 / (rank + 1) for rank in range(len(self.words))]
        total = sum(weights)
        self.cumulative = []
        acc = 0.0
        for w in weights:
            acc += w / total
            self.cumulative.append(acc)
        self.rows = 0
        self.done = 0  # tickets generated so far
        self.turns = {(team, status): 0 for team in (0, 1) for status in ("open", "closed")}
        self.conversation_of: dict[int, int] = {}  # contact number → its conversation's pk
        self.contacts = size.tickets * 3 // 5  # 40 % of the customers come back once
        self.start = datetime(2026, 1, 1, tzinfo=UTC)
        self.span = timedelta(days=300)
        # The rare word goes into RARE_HITS messages spread over the whole range.
        step = max(1, size.messages // RARE_HITS)
        self.rare_at = {step * k + step // 2 for k in range(RARE_HITS)}

    @classmethod
    def create(cls, size: Sizes) -> World:
        from django.contrib.auth.models import Group, Permission

        from agents.auth import token_create
        from agents.models import Agent, Tag, Team
        from webhooks.models import Page

        world = cls(size)
        world.pages = [
            Page.objects.create(
                page_id=f"10{n:013d}", name=f"Page {n}", access_token="x", bot_app_id="222"
            )
            for n in range(1, PAGES + 1)
        ]
        world.agents = Agent.objects.bulk_create(
            Agent(username=f"agent{n:02d}", first_name=FIRST[n % len(FIRST)], password="!")
            for n in range(AGENTS)
        )
        first, second = Team.objects.create(name="Team A"), Team.objects.create(name="Team B")
        first.pages.set(world.pages[:2])
        second.pages.set(world.pages[2:])
        first.members.set(world.agents[: AGENTS // 2])
        second.members.set(world.agents[AGENTS // 2 :])
        world.agent = world.agents[0]
        world.token = token_create(user=world.agent)
        # The reports' reader as the product means it: the permission given in admin
        # through a group, on the teams of every page (not a superuser, who skips both).
        leads = Group.objects.create(name="Support leads")
        leads.permissions.add(Permission.objects.get(codename="view_reports"))
        world.lead = Agent.objects.create(username="lead", first_name="Lena", password="!")
        world.lead.groups.add(leads)
        first.members.add(world.lead)
        second.members.add(world.lead)
        world.tags = Tag.objects.bulk_create(Tag(name=name) for name in TAGS)
        return world

    def text(self, index: int) -> str:
        if index in self.rare_at:
            return f"do you ship to {RARE_WORD} please"
        rng = self.rng
        from bisect import bisect_left

        picks = [
            self.words[min(len(self.words) - 1, bisect_left(self.cumulative, rng.random()))]
            for _ in range(rng.randint(3, 14))
        ]
        return " ".join(picks).capitalize()

    def psid(self, contact: int) -> str:
        return str(7_000_000_000_000_000 + contact * 7919)

    def generate(self, chunks: range) -> int:
        """Generate the tickets of these tenths (and their contacts, conversations,
        control history, events, messages, tags); the number of tickets so far."""
        from django.db import connection, transaction

        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA synchronous=OFF")
                cursor.execute("PRAGMA cache_size=-200000")
        for chunk in chunks:
            with transaction.atomic():
                self._chunk(chunk)
        if connection.vendor == "postgresql":
            # What autovacuum would have done after such inserts: the planner's statistics.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        return self.count_tickets()

    def _chunk(self, chunk: int) -> None:
        """Tickets j of this tenth of [0, tickets): ticket j is the customer j % contacts'
        (the first ones come back once), opened at start + j/tickets of the span; the
        last UNCLOSED_SHARE are unclosed (each the last of its conversation). Contacts are
        made with their first ticket."""
        from agents.models import (
            Contact,
            ControlState,
            ControlTransition,
            Conversation,
            Csat,
            Message,
            OwnerRole,
            Ticket,
            TicketEvent,
            TicketTag,
        )

        size = self.size
        lo, hi = size.tickets * chunk // CHUNKS, size.tickets * (chunk + 1) // CHUNKS
        per_ticket = size.messages // size.tickets
        extra = size.messages - per_ticket * size.tickets  # the first tickets get one more
        rng = self.rng
        with own_timestamps(Contact, Conversation, Ticket, TicketTag):
            # Contacts and conversations first seen in this chunk.
            new = [j for j in range(lo, hi) if j < self.contacts]
            contacts = Contact.objects.bulk_create(
                (
                    Contact(
                        page=self.pages[j % PAGES],
                        psid=self.psid(j),
                        first_name=FIRST[j % len(FIRST)],
                        last_name=LAST[(j // 7) % len(LAST)],
                        created_at=self.opened(j) - timedelta(minutes=5),
                    )
                    for j in new
                ),
                batch_size=2000,
            )
            made = Conversation.objects.bulk_create(
                (
                    Conversation(
                        contact=contact,
                        page_id=contact.page_id,
                        control_state=ControlState.BOT,
                        owner_role=OwnerRole.BOT,
                        owner_app_id="222",
                        created_at=contact.created_at,
                    )
                    for contact in contacts
                ),
                batch_size=2000,
            )
            self.conversation_of.update(zip(new, (c.pk for c in made), strict=True))
            tickets = []
            for j in range(lo, hi):
                opened = self.opened(j)
                status = self.status(j)
                assignee = self.assignee(j, status)
                closed = opened + timedelta(minutes=rng.randint(5, 600))
                tickets.append(
                    Ticket(
                        conversation_id=self.conversation_of[self.contact_of(j)],
                        status=status,
                        assignee=assignee,
                        handover_timestamp=ms(opened),
                        opened_at=opened,
                        closed_at=closed if status == Ticket.Status.CLOSED else None,
                        updated_at=closed if status == Ticket.Status.CLOSED else opened,
                        closing_note="resolved" if status == Ticket.Status.CLOSED else "",
                    )
                )
            tickets = Ticket.objects.bulk_create(tickets, batch_size=2000)
            transitions: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            messages: list[dict[str, Any]] = []
            ratings: list[dict[str, Any]] = []
            links = []
            for j, ticket in zip(range(lo, hi), tickets, strict=True):
                opened = ticket.opened_at
                trigger, way = self.handover(j)
                transitions += self.transitions_in(ticket, way)
                events.append(
                    {
                        "ticket_id": ticket.pk,
                        "kind": "opened",
                        "trigger": trigger,
                        "way": way,
                        "event_timestamp": ms(opened),
                        "created_at": opened,
                    }
                )
                if ticket.assignee_id is not None:
                    events.append(
                        {
                            "ticket_id": ticket.pk,
                            "kind": "claimed",
                            "actor_id": ticket.assignee_id,
                            "created_at": opened + timedelta(minutes=1),
                        }
                    )
                if ticket.closed_at is not None:
                    ending = self.ending(j)
                    by_agent = ending == "agent"
                    events.append(
                        {
                            "ticket_id": ticket.pk,
                            "kind": "closed",
                            "actor_id": ticket.assignee_id if by_agent else None,
                            "detail": "resolved" if by_agent else f"control lost: {ending}",
                            "created_at": ticket.closed_at,
                        }
                    )
                    rating = self.rating(j, ticket) if by_agent else None
                    if rating is not None:
                        ratings.append(rating)
                    transitions += self.transitions_out(ticket, ending, rating)
                if j % 7 == 0:
                    tag = self.tags[(j // 7) % len(self.tags)]
                    links.append(TicketTag(ticket=ticket, tag=tag, applied_at=opened))
                count = per_ticket + (1 if j < extra else 0)
                first_index = j * per_ticket + min(j, extra)
                messages += self.messages_of(ticket, first_index, count)
            insert_rows(ControlTransition, transitions)
            insert_rows(TicketEvent, events)
            TicketTag.objects.bulk_create(links, batch_size=2000)
            insert_rows(Message, messages)
            insert_rows(Csat, ratings)
            # The conversations as the product keeps them: an unclosed ticket's is ours.
            Conversation.objects.filter(
                pk__in=[t.conversation_id for t in tickets if t.status != Ticket.Status.CLOSED]
            ).update(control_state=ControlState.AGENT, owner_role=OwnerRole.HELPDESK)
            self.done = hi
            self.rows += (
                len(contacts) * 2
                + len(tickets)
                + len(transitions)
                + len(events)
                + len(messages)
                + len(ratings)
            )

    def handover(self, j: int) -> tuple[str, str]:
        """Ticket j's (trigger, way): HANDOVER_MIX, spread over the tickets."""
        slot = (37 * j) % 100
        for trigger, way, share in HANDOVER_MIX:
            if slot < share:
                return trigger, way
            slot -= share
        raise AssertionError("HANDOVER_MIX adds up to 100")

    def ending(self, j: int) -> str:
        """How closed ticket j's hold ended: "agent" (closed, handed back to the bot),
        or the thread left us first: "bot" (a take-back, 5 %), "page_inbox" (2.5 %),
        "nobody" (a lapse, 1 %), "other_app" (2 %, not a take-back for the reports).
        Only j % UNCLOSED_EVERY == 0 may be unclosed: none of these."""
        if j % 20 == 11:
            return "bot"
        if j % 40 == 23:
            return "page_inbox"
        if j % 100 == 47:
            return "nobody"
        if j % 50 == 29:
            return "other_app"
        return "agent"

    def rating(self, j: int, ticket: Any) -> dict[str, Any] | None:
        """A CSAT row for one in CSAT_EVERY tickets closed by their agent: answered
        (scores 1 to 5, mostly 4 and 5) or, one in three, expired."""
        if j % CSAT_EVERY:
            return None
        asked = ticket.closed_at + timedelta(seconds=5)
        row: dict[str, Any] = {
            "ticket_id": ticket.pk,
            "asked_at": asked,
            "expires_at": asked + timedelta(hours=24),
            "status": "expired",
        }
        if j % 9 != 6:
            row.update(
                status="answered",
                score=(5, 4, 5, 3, 4, 5, 2, 4, 1, 5)[j % 10],
                answered_at=asked + timedelta(minutes=1 + j % 50),
            )
        return row

    def transitions_in(self, ticket: Any, way: str) -> list[dict[str, Any]]:
        """The handover's control changes: the bot passed (or someone did), or we asked
        and were granted, or we took the thread."""
        from agents.models import ControlState, ControlTransition, OwnerRole

        at = ms(ticket.opened_at)
        to_agent = {
            "conversation_id": ticket.conversation_id,
            "from_state": ControlState.BOT,
            "to_state": ControlState.AGENT,
            "cause": ControlTransition.Cause.WEBHOOK,
            "owner_role": OwnerRole.HELPDESK,
            "owner_app_id": "111",
            "at": at,
            "event_timestamp": at,
            "created_at": ticket.opened_at,
        }
        if way == "take":
            to_agent.update(cause=ControlTransition.Cause.API, event_timestamp=None)
        if way != "request":
            return [to_agent]
        asked = ticket.opened_at - timedelta(seconds=20)
        return [
            {
                "conversation_id": ticket.conversation_id,
                "from_state": ControlState.BOT,
                "to_state": ControlState.REQUESTED,
                "cause": ControlTransition.Cause.API,
                "owner_role": OwnerRole.BOT,
                "owner_app_id": BOT_APP,
                "at": ms(asked),
                "created_at": asked,
            },
            to_agent | {"from_state": ControlState.REQUESTED},
        ]

    def transitions_out(
        self, ticket: Any, ending: str, rating: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """How the thread left us when the ticket closed: our own hand-back (returning,
        then the bot has it, after the rating's answer or expiry if one was asked), or
        taken from us (bot, Page Inbox, another app) or lapsed (idle), then back to the
        bot, so that the conversation's next ticket starts from it."""
        from agents.models import ControlState, ControlTransition, OwnerRole

        closed = ticket.closed_at
        base = {"conversation_id": ticket.conversation_id}

        def row(at: datetime, **fields: Any) -> dict[str, Any]:
            return base | fields | {"at": ms(at), "created_at": at}

        later = closed + timedelta(minutes=30)
        back = row(
            later,
            from_state=ControlState.TAKEN,
            to_state=ControlState.BOT,
            cause=ControlTransition.Cause.WEBHOOK,
            owner_role=OwnerRole.BOT,
            owner_app_id=BOT_APP,
            event_timestamp=ms(later),
        )
        lost = {
            "cause": ControlTransition.Cause.WEBHOOK,
            "event_timestamp": ms(closed),
            "from_state": ControlState.AGENT,
        }
        if ending == "bot":
            return [
                row(
                    closed, **lost, to_state=ControlState.BOT, owner_role=OwnerRole.BOT,
                    owner_app_id=BOT_APP,
                )
            ]  # fmt: skip
        if ending == "page_inbox":
            return [
                row(
                    closed, **lost, to_state=ControlState.TAKEN,
                    owner_role=OwnerRole.PAGE_INBOX, owner_app_id=PAGE_INBOX_APP,
                ),
                back,
            ]  # fmt: skip
        if ending == "other_app":
            return [
                row(
                    closed, **lost, to_state=ControlState.TAKEN,
                    owner_role=OwnerRole.OTHER_APP, owner_app_id=OTHER_APP,
                ),
                back,
            ]  # fmt: skip
        if ending == "nobody":
            return [
                row(
                    closed, **lost, to_state=ControlState.IDLE, owner_role=OwnerRole.NOBODY,
                    owner_app_id="",
                ),
                back | {"from_state": ControlState.IDLE},
            ]  # fmt: skip
        if rating is None:
            handed = closed + timedelta(seconds=3)
        else:
            handed = rating.get("answered_at") or rating["expires_at"]
        return [
            row(
                closed,
                from_state=ControlState.AGENT,
                to_state=ControlState.RETURNING,
                cause=ControlTransition.Cause.AGENT,
                owner_role=OwnerRole.HELPDESK,
                owner_app_id="111",
            ),
            row(
                handed,
                from_state=ControlState.RETURNING,
                to_state=ControlState.BOT,
                cause=ControlTransition.Cause.WEBHOOK,
                owner_role=OwnerRole.BOT,
                owner_app_id=BOT_APP,
                event_timestamp=ms(handed),
            ),
        ]

    def contact_of(self, j: int) -> int:
        """Ticket j's customer: its own for the first `contacts` tickets; the others are
        second tickets of the customers [2 * contacts - tickets, contacts), who come back."""
        if j < self.contacts:
            return j
        return j - self.contacts + 2 * self.contacts - self.size.tickets

    def is_last(self, j: int) -> bool:
        return j >= self.contacts or j < 2 * self.contacts - self.size.tickets

    def status(self, j: int) -> str:
        """Closed, but one in UNCLOSED_EVERY of the last tickets of their conversations
        (a few thousand at 100 k, spread over time and over every tenth), a third of
        those waiting."""
        from agents.models import Ticket

        if not self.is_last(j) or j % UNCLOSED_EVERY:
            return Ticket.Status.CLOSED
        return Ticket.Status.WAITING if (j // UNCLOSED_EVERY) % 3 == 0 else Ticket.Status.OPEN

    def assignee(self, j: int, status: str) -> Any:
        """Someone of the team that works the ticket's page, in turn."""
        if status == "waiting":
            return None
        team = 0 if self.contact_of(j) % PAGES < 2 else 1
        turn = self.turns[team, status]
        self.turns[team, status] += 1
        return self.agents[team * (AGENTS // 2) + turn % (AGENTS // 2)]

    def opened(self, j: int) -> datetime:
        return self.start + self.span * j / self.size.tickets

    def messages_of(self, ticket: Any, first_index: int, count: int) -> list[dict[str, Any]]:
        """`count` messages: two of the bot's before the handover (context, outside the
        ticket), then the customer and the agent in turn (the customer only while the
        ticket waits), 40 s apart but the first answer's wait (30 s to 15 min). One agent
        message in FAILED_EVERY failed."""
        from agents.models import Message, Ticket

        rows = []
        at = ms(ticket.opened_at) - 120_000
        for k in range(count):
            index = first_index + k
            error = ""
            if k < 2:
                kind, direction, status = Message.Author.BOT, "out", Message.Status.SENT
            elif (
                ticket.status == Ticket.Status.WAITING
                or k % 2 == 0
                or (k == count - 1 and first_index % 4 == 0)  # a last word: "thanks!"
            ):
                kind, direction, status = Message.Author.CUSTOMER, "in", Message.Status.RECEIVED
            else:
                kind, direction, status = Message.Author.AGENT, "out", Message.Status.SENT
                if (index * 2_654_435_761 >> 16) % FAILED_EVERY == 0:
                    status, error = Message.Status.FAILED, "Meta error 551: not available"
            if k == 3:
                at += 30_000 * ((first_index // 10) % 30) - 10_000
            rows.append(
                {
                    "conversation_id": ticket.conversation_id,
                    "ticket_id": None if kind == Message.Author.BOT else ticket.pk,
                    "direction": direction,
                    "author_kind": kind,
                    "author_id": ticket.assignee_id if kind == Message.Author.AGENT else None,
                    "app_id": "222" if kind == Message.Author.BOT else "",
                    "mid": f"m_{index}",
                    "text": self.text(index),
                    "timestamp": at,
                    "status": status,
                    "error": error,
                    "created_at": datetime.fromtimestamp(at / 1000, tz=UTC),
                }
            )
            at += 60_000 if k < 2 else 40_000
        return rows

    def count_tickets(self) -> int:
        from agents.models import Ticket

        return Ticket.objects.count()

    def count_contacts(self) -> int:
        from agents.models import Contact, Conversation

        contacts = Contact.objects.count()
        assert Conversation.objects.count() == contacts
        return contacts

    def count_by_status(self) -> dict[str, int]:
        from django.db.models import Count

        from agents.models import Ticket

        rows = Ticket.objects.values_list("status").annotate(n=Count("pk")).order_by()
        return {status: n for status, n in rows}

    def count_messages(self) -> int:
        from agents.models import Message

        return Message.objects.count()

    # --- the calls --------------------------------------------------------------------

    def client(self) -> Any:
        from django.test import Client

        return Client(HTTP_AUTHORIZATION=f"Bearer {self.token}", HTTP_HOST="localhost")

    def lead_client(self) -> Any:
        """The support lead's browser: a session (the reports page is not in the API)."""
        from django.test import Client

        client = Client(HTTP_HOST="localhost")
        client.force_login(self.lead)
        return client

    @staticmethod
    def endpoint_names() -> list[str]:
        return list(ENDPOINTS) + list(REPORTS)

    def last_day(self) -> date:
        """The last day of the data generated so far (all of it: start + span - 1 day;
        after the first tenth, its 30th day), where the reports' ranges end."""
        return self.opened(self.done - 1).date()

    def report_url(self, name: str, *, csv: bool = False) -> str:
        """The report REPORTS names: its last `days` days of the data, grouped."""
        days, group, as_csv = REPORTS[name]
        end = self.last_day()
        start = end - timedelta(days=days - 1)
        url = f"/reports/?from={start}&to={end}&group={group}"
        return url + ("&format=csv" if as_csv or csv else "")

    def endpoints(self, *, ticket: int | None = None, psid: str = "") -> dict[str, Call]:
        """Each endpoint as a call (number → one request, checked 200). The tickets opened
        are `ticket`, or spread over the agent's visible tickets (unclosed and closed);
        the PSID searched is `psid`, or a customer's from the middle of the range."""
        from agents.models import Ticket

        client = self.client()
        tickets = [ticket] if ticket is not None else list(
            Ticket.objects.filter(conversation__page__in=self.pages[:2])
            .order_by("?")
            .values_list("pk", flat=True)[: CALLS + WARMUP]
        )  # fmt: skip
        known = {
            "page": self.pages[0].page_id,
            "tag": self.tags[0].name,
            "psid": psid or self.psid(self.contacts // 2),
            "common": COMMON[0],
            "rare": RARE_WORD,
            "missing": MISSING_WORD,
        }

        def get(url: str) -> Call:
            def call(number: int) -> Any:
                path = url.format(ticket=tickets[number % len(tickets)], **known)
                return ok(client.get(f"/api/v1{path}"))

            return call

        lead = self.lead_client()

        def report(url: str) -> Call:
            def call(number: int) -> Any:
                return ok(lead.get(url))

            return call

        return {name: get(url) for name, url in ENDPOINTS.items()} | {
            name: report(self.report_url(name)) for name in REPORTS
        }

    def report_covers(self) -> dict[str, dict[str, int]]:
        """Each report checked (raises if it answers other than 200 or covers nothing of
        what it counts) and what it covers: its CSV's total, and the rows of its range."""
        from agents.models import ControlTransition, Message, Ticket, TicketEvent

        lead = self.lead_client()
        out = {}
        for name in REPORTS:
            total = report_total(ok(lead.get(self.report_url(name, csv=True))))
            empty = [k for k, v in total.items() if k in REPORT_NONZERO and not v]
            if empty:
                raise RuntimeError(f"{name}: nothing counted in {', '.join(empty)}: {total}")
            page = ok(lead.get(self.report_url(name)))
            if not REPORTS[name][2]:
                stat = f'stat-value">{total["handovers"]}</span>'
                if stat not in page.content.decode():
                    raise RuntimeError(f"{name}: the page does not show {stat!r}")
            days = REPORTS[name][0]
            end = self.last_day() + timedelta(days=1)
            since = datetime.combine(end - timedelta(days=days), datetime.min.time(), UTC)
            until = datetime.combine(end, datetime.min.time(), UTC)
            in_range = {"created_at__gte": since, "created_at__lt": until}
            out[name] = {
                **{k: total[k] for k in REPORT_NONZERO},
                "messages": Message.objects.filter(**in_range).count(),
                "customer messages": Message.objects.filter(
                    **in_range, author_kind="customer"
                ).count(),
                "tickets opened": Ticket.objects.filter(
                    opened_at__gte=since, opened_at__lt=until
                ).count(),
                "events": TicketEvent.objects.filter(**in_range).count(),
                "transitions": ControlTransition.objects.filter(**in_range).count(),
            }
        return out

    def probes(self) -> dict[str, Call]:
        """The calls whose SQL is counted: the same endpoints, on the agent's first ticket
        and the first customer's PSID (there at both sizes, and unchanged), the reports
        over the last days of the data so far."""
        from agents.models import Ticket

        first = Ticket.objects.filter(conversation__page=self.pages[0]).order_by("pk").first()
        assert first is not None
        return self.endpoints(ticket=first.pk, psid=self.psid(0))


Call = Callable[[int], Any]

ENDPOINTS = {
    "baseline": "/me",
    "list waiting": "/tickets?queue=waiting",
    "list mine": "/tickets?queue=mine",
    "list all_open": "/tickets?queue=all_open",
    "list closed": "/tickets?queue=closed",
    "list all_open, page filter": "/tickets?queue=all_open&page={page}",
    "list closed, tag filter": "/tickets?queue=closed&tag={tag}",
    "list closed, needs reply": "/tickets?queue=closed&needs_reply=1",
    "queue counts": "/queues",
    "open: ticket": "/tickets/{ticket}",
    "open: messages": "/tickets/{ticket}/messages",
    "open: context": "/tickets/{ticket}/context",
    "search common word": "/search?q={common}",
    "search rare word": "/search?q={rare}",
    "search missing word": "/search?q={missing}",
    "search PSID": "/search?q={psid}",
}

# name → (the last days of the data it covers, group, as CSV): /reports/ as a lead sees it.
REPORTS = {
    "reports 30 days per day": (30, "day", False),
    "reports 90 days per agent": (90, "agent", False),
    "reports 90 days per team": (90, "team", False),
    "reports 365 days CSV per page": (365, "page", True),
}
# The CSV total's columns that must count something (else the report is not measured).
REPORT_NONZERO = (
    "handovers",
    "first responses",
    "resolved",
    "take-backs by the bot",
    "take-backs by the Page Inbox",
    "lapses",
    "failed sends",
    "CSAT asked",
    "CSAT answered",
)


def report_total(response: Any) -> dict[str, int]:
    """The CSV report's total row: column → count (the counting columns only)."""
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    if not rows or rows[-1][next(iter(rows[-1]))] != "Total":
        raise RuntimeError(f"no total row in the CSV: {response.content[:300]!r}")
    return {k: int(v) for k, v in rows[-1].items() if v.isdigit()}


def insert_rows(model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert plain rows (attname → value; the model's defaults for the rest) the fastest
    way each database has: COPY on PostgreSQL, one executemany on SQLite. For the big
    tables, whose rows need no pk back; bulk_create for the others."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    defaults = {}
    for f in fields:
        if f.has_default():
            value = f.get_default()
            defaults[f.attname] = json.dumps(value) if isinstance(value, list | dict) else value
        elif f.null:
            defaults[f.attname] = None
        elif f.blank:
            defaults[f.attname] = ""
    times = {f.attname for f in fields if f.get_internal_type() == "DateTimeField"}
    names = [f.attname for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    sqlite = connection.vendor == "sqlite"
    adapt = connection.ops.adapt_datetimefield_value

    def values(row: dict[str, Any]) -> tuple[Any, ...]:
        got = [row[name] if name in row else defaults[name] for name in names]
        if sqlite:
            got = [
                adapt(v) if n in times and v is not None else v
                for n, v in zip(names, got, strict=True)
            ]
        return tuple(got)

    with connection.cursor() as cursor:
        if sqlite:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                [values(row) for row in rows],
            )
        else:
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(values(row))


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def ok(response: Any) -> Any:
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.content[:500]!r}")
    return response


if __name__ == "__main__":
    child(Path(sys.argv[1]))
