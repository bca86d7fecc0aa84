"""`make bench`: how fast, measured (the tests only assert that things happen).

    python -m tests.bench [--only intake,processing,...] [--databases sqlite,postgres]
                          [--quick] [--save PATH]

Each scenario starts what it needs (Redis, Daphne, Celery, a throwaway PostgreSQL
cluster, the recording Graph fake on loopback) like the end-to-end tests do, and reports
every figure as a ratio to a baseline measured in the same run: these machines are
noisy, the ratios hold on a slow machine as on a fast one. The results are printed as
the README's table and saved (var/bench/results.json unless --save says otherwise).

Scenarios (a module of tests/bench each, `run(options) -> list[Figure]`):
  intake      the webhook against a bare ASGI endpoint doing the same HMAC and JSON
  processing  events applied per second by one and two Celery workers; SQL per event
  latency     webhook -> agent socket, reply -> Send API, trigger -> request
  scale       the inbox at 100 k tickets and 1 M messages: list, open, search; reports
  sockets     1,000 idle agent sockets on one Daphne: memory and fan-out
  live        the README's walk-through: tap -> ticket in the inbox, vs the bot's answer
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import traceback
from contextlib import ExitStack
from pathlib import Path

from tests.bench.figures import Figure, Options, machine, readme_write, save, table
from tests.support.pgcluster import pg_bindir, postgres_cluster

SCENARIOS = ("intake", "processing", "latency", "scale", "sockets", "live")
ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help="scenarios to run")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--save", type=Path, default=ROOT / "var" / "bench" / "results.json")
    parser.add_argument(
        "--readme", action="store_true", help="write the table into README.md's results"
    )
    args = parser.parse_args(argv)
    wanted = [name for name in args.only.split(",") if name]
    unknown = sorted(set(wanted) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    databases = [name for name in args.databases.split(",") if name]
    if set(databases) - {"sqlite", "postgres"}:
        parser.error("--databases takes sqlite, postgres or both")

    figures: list[Figure] = []
    failed: list[str] = []
    with ExitStack() as stack:
        urls: dict[str, str | None] = {"sqlite": None}
        if "postgres" in databases:
            if pg_bindir() is None:
                print("PostgreSQL is not installed: its figures are skipped", flush=True)
                databases.remove("postgres")
            else:
                urls["postgres"] = stack.enter_context(postgres_cluster())
        for name in wanted:
            module = importlib.import_module(f"tests.bench.{name}")
            for database in databases:
                if database not in getattr(module, "DATABASES", ("sqlite", "postgres")):
                    continue
                print(f"\n=== {name} on {database}", flush=True)
                with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                    options = Options(database, urls[database], Path(tmp), quick=args.quick)  # type: ignore[arg-type]
                    try:
                        got = module.run(options)
                    except Exception:  # noqa: BLE001 -- report it, go on with the others
                        traceback.print_exc()
                        failed.append(f"{name} on {database}")
                        continue
                for figure in got:
                    print(f"  {figure.name}: {figure.value:.3f} {figure.unit} "
                          f"({figure.ratio:.2f}x {figure.baseline_name})", flush=True)  # fmt: skip
                figures.extend(got)
    print(f"\n{machine()}\n")
    print(table(figures))
    save(figures, args.save)
    print(f"\nsaved to {args.save}")
    if args.readme and figures:
        readme_write(ROOT / "README.md", figures)
        print("README.md's results table updated")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0 if figures else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
