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
from datetime import UTC, datetime, timedelta
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
    for name, got in found["endpoints"].items():
        if name == "baseline":
            continue
        target = TARGETS.get(name.split(" ", 1)[0], "")
        count_note = (
            f"same at {found['tickets_small']:,} tickets"
            if got["queries"] == got["queries_small"]
            else f"{got['queries_small']} at {found['tickets_small']:,} tickets"
        )
        out += [
            Figure(
                "scale", database, f"{name} p50", got["p50"], "ms",
                "GET /me p50", base["p50"], target=target,
            ),
            Figure(
                "scale", database, f"{name} p99", got["p99"], "ms",
                "GET /me p99", base["p99"], target=target,
            ),
            Figure(
                "scale", database, f"{name} SQL queries", got["queries"], "queries",
                "GET /me", base["queries"], target="constant" if target else "",
                note=count_note,
            ),
        ]  # fmt: skip
    return out


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
    team: he sees two pages of three), tags, and tickets generated a chunk at a time."""

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
            links = []
            for j, ticket in zip(range(lo, hi), tickets, strict=True):
                opened = ticket.opened_at
                transitions.append(
                    {
                        "conversation_id": ticket.conversation_id,
                        "from_state": ControlState.BOT,
                        "to_state": ControlState.AGENT,
                        "cause": ControlTransition.Cause.WEBHOOK,
                        "owner_role": OwnerRole.HELPDESK,
                        "owner_app_id": "111",
                        "at": ms(opened),
                        "event_timestamp": ms(opened),
                        "created_at": opened,
                    }
                )
                events.append({"ticket_id": ticket.pk, "kind": "opened", "created_at": opened})
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
                    events.append(
                        {
                            "ticket_id": ticket.pk,
                            "kind": "closed",
                            "actor_id": ticket.assignee_id,
                            "detail": "resolved",
                            "created_at": ticket.closed_at,
                        }
                    )
                    transitions.append(
                        {
                            "conversation_id": ticket.conversation_id,
                            "from_state": ControlState.AGENT,
                            "to_state": ControlState.BOT,
                            "cause": ControlTransition.Cause.AGENT,
                            "owner_role": OwnerRole.BOT,
                            "owner_app_id": "222",
                            "at": ms(ticket.closed_at),
                            "created_at": ticket.closed_at,
                        }
                    )
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
            # The conversations as the product keeps them: an unclosed ticket's is ours.
            Conversation.objects.filter(
                pk__in=[t.conversation_id for t in tickets if t.status != Ticket.Status.CLOSED]
            ).update(control_state=ControlState.AGENT, owner_role=OwnerRole.HELPDESK)
            self.rows += (
                len(contacts) * 2 + len(tickets) + len(transitions) + len(events) + len(messages)
            )

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
        ticket waits), 40 s apart."""
        from agents.models import Message, Ticket

        rows = []
        at = ms(ticket.opened_at) - 120_000
        for k in range(count):
            index = first_index + k
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

    @staticmethod
    def endpoint_names() -> list[str]:
        return list(ENDPOINTS)

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

        return {name: get(url) for name, url in ENDPOINTS.items()}

    def probes(self) -> dict[str, Call]:
        """The calls whose SQL is counted: the same endpoints, on the agent's first ticket
        and the first customer's PSID (there at both sizes, and unchanged)."""
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
