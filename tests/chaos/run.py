"""One chaos run, start to finish: start the world, load it while the monkey injects
faults, stop the faults, let the helpdesk settle, audit, and report."""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.chaos.audit import (
    Report,
    conversations_audit,
    customers_audit,
    replies_audit,
    settle,
    webhooks_audit,
)
from tests.chaos.database import Database
from tests.chaos.ledger import Ledger
from tests.chaos.load import Agent, Customers, Replies
from tests.chaos.monkey import FAULTS, PLAN, Monkey
from tests.chaos.supervisor import Supervisor
from tests.chaos.world import Options, World, chaos_world
from tests.support import payloads

logger = logging.getLogger(__name__)


def chaos_run(options: Options, tmp: Path, *, say: Callable[[str], None] = print) -> Report:
    """Run the whole thing in `tmp` (logs stay there); returns the report."""
    seed = options.seed if options.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    started = time.monotonic()
    with chaos_world(options, tmp) as world:
        say(
            f"chaos: {world.database_label}, seed {seed}, logs in {tmp};"
            f" started in {time.monotonic() - started:.0f} s"
        )
        report = _storm_and_audit(world, options, rng, say)
        say("chaos: stopping everything")
    report.title = (
        f"Chaos run on {world.database_label}: {options.events:,} events wanted, seed {seed},"
        f" {time.monotonic() - started:.0f} s in all"
    )
    return report


def _storm_and_audit(
    world: World, options: Options, rng: random.Random, say: Callable[[str], None]
) -> Report:
    db = Database(world.database_url)
    ledger = Ledger(payloads.APP_ID)
    world.emulator.on_delivery(ledger.observe)
    supervisor = Supervisor(world.stack, world.cluster).start()
    with ThreadPoolExecutor(max_workers=4) as pool:  # one manage.py process each
        tokens = list(
            pool.map(world.stack.agent_token, [f"agent{i}" for i in range(options.agents)])
        )
    backlog = _Backlog(db, ledger, limit=options.max_backlog)
    pending = world.emulator.dispatcher.health_view

    def busy() -> bool:
        in_flight = pending()[payloads.APP_ID]["queued"]
        return in_flight >= options.max_in_flight or backlog.full()

    customers = Customers(
        world.emulator,
        users=options.users,
        tickets_wanted=options.agents * 2 + 2,
        rng=random.Random(rng.random()),
        busy=busy,
    )
    replies = Replies()
    serial = itertools.count(1)
    agents = [
        Agent(
            f"agent{i}",
            token,
            urls=world.api_urls,
            replies=replies,
            serial=serial,
            rng=random.Random(rng.random()),
        )
        for i, token in enumerate(tokens)
    ]
    monkey = Monkey(world, supervisor, plan=options.plan or PLAN, rng=random.Random(rng.random()))
    report = Report(title="")
    load_started = time.monotonic()
    customers.start()
    for agent in agents:
        agent.start()
    monkey.start()
    try:
        load_seconds = _load(options, ledger, replies, monkey, say, load_started)
    finally:
        customers.stop()
        for agent in agents:
            agent.stop()
        monkey.stop()
        backlog.stop()
    say("chaos: load done; faults off, every process up; waiting for the helpdesk to settle")
    supervisor.all_up()
    try:
        settle_seconds = f"{settle(world.emulator, db, timeout=options.settle_seconds):.0f} s"
        report.check("settled", True)
    except AssertionError as error:
        settle_seconds = f"not within {options.settle_seconds:g} s"
        report.check("settled", False, error)
    supervisor.stop()
    say(f"chaos: settled ({settle_seconds}); counting")
    _, distinct = ledger.snapshot()
    report.check(
        f"load of at least {options.events:,} distinct events",
        distinct >= options.events,
        f"{distinct:,} acknowledged in {load_seconds:.0f} s",
    )
    report.check(
        f"at least {options.replies:,} replies",
        len(replies.requested) >= options.replies,
        len(replies.requested),
    )
    report.sections.append(
        (
            "run",
            [
                ("load phase", f"{load_seconds:.0f} s"),
                ("settling after the faults stopped", settle_seconds),
                ("customers / agents", f"{options.users} / {options.agents}"),
                *[(f"customer {k}", n) for k, n in sorted(customers.actions.items())],
            ],
        )
    )
    webhooks_audit(report, db, ledger, world.emulator)
    customers_audit(report, db, customers.texts)
    replies_audit(report, db, replies, world.emulator, customers.psids)
    conversations_audit(report, db, world.emulator, customers.psids)
    report.sections.append(("faults injected", _faults(world, monkey, supervisor)))
    report.faults = dict(monkey.done)
    return report


def _load(
    options: Options,
    ledger: Ledger,
    replies: Replies,
    monkey: Monkey,
    say: Callable[[str], None],
    started: float,
) -> float:
    """Wait until the load is done (enough events and replies, the plan through once)
    or `options.seconds` have passed; report progress now and then."""
    next_note = started + 10
    while True:
        now = time.monotonic()
        events, distinct = ledger.snapshot()
        done = (
            distinct >= options.events
            and len(replies.requested) >= options.replies
            and monkey.plan_done.is_set()
        )
        if done or now - started >= options.seconds:
            return now - started
        if now >= next_note:
            next_note = now + 10
            say(
                f"chaos: {now - started:4.0f} s: {events:,} events acknowledged ({distinct:,}"
                f" distinct), {len(replies.requested)} replies, faults so far:"
                f" {sum(monkey.done.values())}"
            )
        time.sleep(0.2)


def _faults(world: World, monkey: Monkey, supervisor: Supervisor) -> list[tuple[str, object]]:
    counts = world.emulator.dispatcher.counts(payloads.APP_ID)
    rows: list[tuple[str, object]] = [
        (FAULTS[name], n) for name, n in sorted(monkey.done.items(), key=lambda kv: FAULTS[kv[0]])
    ]
    armed = sum(monkey.graph_faults_armed.values())
    rows += [
        ("Graph calls failed on purpose", armed - monkey.graph_faults_unused),
        ("  armed, by kind", _counter(monkey.graph_faults_armed) or "-"),
        ("echoes held late (events)", counts.events_late),
        ("  held for (s)", ", ".join(f"{s:g}" for s in monkey.echoes_held_seconds) or "-"),
        ("processes killed or restarted", _counter(supervisor.killed)),
        ("processes that exited by themselves", _counter(supervisor.unexpected_exits) or "0"),
    ]
    return rows


def _counter(counter: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items()))


class _Backlog:
    """How many acknowledged events the helpdesk has not applied yet, read every second
    from a thread (the customers ask often; the database is asked once a second)."""

    def __init__(self, db: Database, ledger: Ledger, *, limit: int) -> None:
        self.db = db
        self.ledger = ledger
        self.limit = limit
        self.value = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-backlog", daemon=True)
        self._thread.start()

    def full(self) -> bool:
        return self.value >= self.limit

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=70)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                applied = self.db.value("SELECT count(*) FROM webhooks_webhookevent")
                self.value = self.ledger.snapshot()[1] - applied
            except Exception:  # the database restarting: keep the last value
                logger.info("backlog not read", exc_info=True)
