"""Processing: events applied per second by one and by two Celery workers, and the SQL
statements one event costs, by kind.

Deliveries are stored directly in the database (as intake stores them, without
enqueueing), then tasks are published to a worker started for the run
(`Stack.spawn_worker`: Redis, the recording Graph fake) and the clock runs until every
delivery is processed (the database is polled): one task per delivery
(`delivery_process`, what a re-drive or a quiet intake publishes), then tasks of 10
deliveries (`deliveries_process`, what a busy intake puts in one task; their events are
applied in one transaction per group). Two mixes, one event per delivery:

- standby: customers chatting with the bot (standby messages, no ticket);
- handover: per customer a cycle of a standby message, the bot's pass to us (a ticket
  opens), a message on `messaging`, the bot's request for the thread, and the bot's
  take (control lost, the ticket flagged); customers interleaved so that one
  customer's events are far apart in the queue, as they are in real traffic.

Baseline of the rates: the same deliveries (fresh ones, the same mix) applied by
`services.delivery_process` in a loop in one process, without Celery. It is the cost of
applying itself, measured in the same run: the worker's figure over it says what the
broker and the worker add (below 1) or what concurrency wins (above 1). A no-op task
per delivery was the other candidate; it measures Celery, not this code, and would need
a task in the product that exists only for the benchmark.

Baseline of the statement counts: an event for a page this helpdesk does not know,
which costs only the exactly-once bookkeeping (lock the delivery, record the event's
key, finish the delivery): what every event pays before the helpdesk does anything.

The Django side (storing, enqueueing, polling, counting) runs in a child process with
the stack's environment (`python -m tests.bench.processing ...`): this process has no
Django settings of its own, and each database gets a fresh world.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import django

from helpdesk.localservices import stop
from tests.bench.figures import Figure, Options
from tests.support.fakegraph import FakeGraph
from tests.support.stack import ROOT, Stack

MIXES = ("standby", "handover")
KINDS = ("standby message", "message with an open ticket", "pass to us", "take by the bot", "echo")
GROUPED_KINDS = ("standby message", "message with an open ticket")
UNKNOWN_PAGE = "9000000000000009"
TARGET = "≥ 300 messages/s per page, one worker, PostgreSQL"
# Deliveries per task: one (a re-drive, or a quiet intake), and what a busy intake puts
# in one task (what it stored while the previous publish waited: webhooks.queue.Batches).
GROUPS = (1, 10)
DRIVE_TIMEOUT_S = 900


# --- the bench process: worlds, workers, figures --------------------------------------


def _drive(stack: Stack, *args: str) -> dict[str, Any]:
    """Run the Django side in a child process with the stack's environment."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.processing", *args],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=DRIVE_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise RuntimeError(f"driver {args} failed:\n{result.stdout}\n{result.stderr}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def _batch(
    stack: Stack, mode: str, mix: str, *, n: int, customers: int, tag: str, group: int = 1
) -> dict[str, Any]:
    """Store `n` deliveries of the mix and apply them (`mode`; `group` deliveries per
    task): every event exactly once."""
    found = _drive(
        stack, mode, "--mix", mix, "--n", str(n), "--customers", str(customers), "--tag", tag,
        "--group", str(group),
    )  # fmt: skip
    if found["failed"] or found["processed"] != n or found["events"] != n:
        raise RuntimeError(f"{mix} {mode}: not every event applied once: {found}")
    return found


def _workers_start(stack: Stack, count: int) -> list[str]:
    names = [f"worker{n}" for n in range(1, count + 1)]
    for name in names:
        stack.spawn_worker(name)
    deadline = time.monotonic() + 60
    for name in names:
        log = stack.tmp / f"{name}.log"
        while not (log.exists() and " ready." in log.read_text()):
            if stack.processes[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{stack.logs()}")
            time.sleep(0.1)
    return names


def _workers_stop(stack: Stack, names: list[str]) -> None:
    for name in names:
        stop(stack.processes.pop(name), timeout=30)


def run(options: Options) -> list[Figure]:
    sizes = {"standby": 100, "handover": 100} if options.quick else {
        "standby": 2000, "handover": 1000
    }  # fmt: skip
    customers = 10 if options.quick else 100
    fake = FakeGraph().start()
    stack = Stack(
        tmp=options.tmp,
        graph_url=fake.url,
        database_server_url=options.database_url or "",
        settings={"LOG_LEVEL": "WARNING"},
    )
    figures: list[Figure] = []
    try:
        stack.prepare()
        for mix in MIXES:
            n = sizes[mix]

            inline = _batch(stack, "inprocess", mix, n=n, customers=customers, tag=f"{mix}0")
            rates = {}
            for count in (1, 2):
                names = _workers_start(stack, count)
                try:
                    for group in GROUPS:
                        rates[count, group] = _batch(
                            stack, "celery", mix, n=n, customers=customers,
                            tag=f"{mix}{count}g{group}", group=group,
                        )  # fmt: skip
                finally:
                    _workers_stop(stack, names)
            for (count, group), found in rates.items():
                per_task = "a task per delivery" if group == 1 else f"tasks of {group}"
                figures.append(
                    Figure(
                        "processing", options.database,
                        f"{mix}: events/s, {count} worker{'s' if count > 1 else ''}, {per_task}",
                        found["rate"], "events/s",
                        "in-process delivery_process loop", inline["rate"], better="higher",
                        target=TARGET if mix == "standby" and group > 1 else "",
                        note=f"{n} deliveries of one event; worker: threads x4"
                        + ("" if group == 1 else "; a task takes along up to 40 that wait"),
                    )
                )  # fmt: skip
        counts = _drive(stack, "sql")
        for kind in KINDS:
            figures.append(
                Figure(
                    "processing", options.database, f"SQL statements: {kind}",
                    counts[kind], "statements", "an event for an unknown page",
                    counts["unknown page"], better="lower",
                    note="one event per delivery, broadcasts included",
                )
            )  # fmt: skip
        for kind in GROUPED_KINDS:
            figures.append(
                Figure(
                    "processing", options.database, f"SQL statements: {kind}, tasks of 10",
                    counts[f"{kind}, tasks of 10"], "statements/event",
                    "an event for an unknown page, tasks of 10",
                    counts["unknown page, tasks of 10"], better="lower",
                    note="per event of a task of 10 deliveries (10 customers), broadcasts included",
                )
            )  # fmt: skip
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()
        fake.stop()
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.processing")
    parser.add_argument("mode", choices=("inprocess", "celery", "sql"))
    parser.add_argument("--mix", choices=MIXES, default="standby")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--customers", type=int, default=10)
    parser.add_argument("--tag", default="run")
    parser.add_argument("--group", type=int, default=1)
    args = parser.parse_args(argv)
    django.setup()
    # Models can be imported only now that Django is set up (the stack's settings).
    from tests.bench import processing_child  # noqa: PLC0415

    print(json.dumps(processing_child.drive(args.mode, args.mix, n=args.n,
                                            customers=args.customers, tag=args.tag,
                                            group=args.group)))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
