"""`make chaos`: python -m tests.chaos [options]. Prints the report's table; exits 1
when an invariant broke, 2 when the run could not start."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from tests.chaos.monkey import FAULTS, PLAN
from tests.chaos.run import chaos_run
from tests.chaos.world import Options
from tests.support.pgcluster import pg_bindir


def parse(argv: list[str]) -> tuple[Options, bool]:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        description="Load the helpdesk with webhook events and agent replies while killing "
        "and restarting its processes and injecting Graph and webhook faults; then check "
        "that nothing was lost, doubled or left stuck.",
    )
    parser.add_argument(
        "--events", type=int, default=defaults.events,
        help="distinct webhook events the helpdesk must acknowledge before the load stops "
        f"(default {defaults.events})",
    )  # fmt: skip
    parser.add_argument(
        "--replies", type=int, default=defaults.replies,
        help=f"agent replies (API 201s) wanted at least (default {defaults.replies})",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=float, default=defaults.seconds,
        help="longest the load may run; the run fails if it ends before the events and "
        f"replies wanted (default {defaults.seconds:g})",
    )  # fmt: skip
    parser.add_argument(
        "--database", choices=("postgresql", "sqlite"), default=defaults.database,
        help="a throwaway PostgreSQL cluster (restarted during the run) or a SQLite file "
        f"(default {defaults.database})",
    )  # fmt: skip
    parser.add_argument("--users", type=int, default=defaults.users, help="customers")
    parser.add_argument("--agents", type=int, default=defaults.agents, help="agents")
    parser.add_argument(
        "--fault-interval", type=float, default=defaults.fault_interval,
        help=f"seconds between faults, on average (default {defaults.fault_interval:g})",
    )  # fmt: skip
    parser.add_argument(
        "--plan", default=",".join(PLAN),
        help="the faults, in order, repeated: " + ", ".join(FAULTS),
    )  # fmt: skip
    parser.add_argument(
        "--settle-seconds", type=float, default=defaults.settle_seconds,
        help="longest wait for the helpdesk to settle once the faults stop",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=None, help="repeat a run's random choices")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    parser.add_argument("--verbose", action="store_true", help="log every fault")
    args = parser.parse_args(argv)
    options = Options(
        events=args.events,
        replies=args.replies,
        seconds=args.seconds,
        database=args.database,
        users=args.users,
        agents=args.agents,
        fault_interval=args.fault_interval,
        settle_seconds=args.settle_seconds,
        seed=args.seed,
        plan=tuple(p.strip() for p in args.plan.split(",") if p.strip()),
        verbose=args.verbose,
    )
    return options, args.keep


def main(argv: list[str]) -> int:
    options, keep = parse(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if options.verbose:
        logging.getLogger("tests.chaos").setLevel(logging.DEBUG)
    if options.database == "postgresql" and pg_bindir() is None:
        print("PostgreSQL is not installed (initdb/pg_ctl); try --database sqlite")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="helpdesk-chaos-"))
    report = chaos_run(options, tmp, say=lambda line: print(line, flush=True))
    print()
    print(report.table())
    if report.explain:
        (tmp / "timelines.txt").write_text(report.explain + "\n")
        keep = True
        print(f"timelines of failed replies: {tmp / 'timelines.txt'}")
    if keep or report.failures:
        print(f"\nlogs: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
