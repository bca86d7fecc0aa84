"""Run the whole suite on SQLite, then on a throwaway PostgreSQL cluster when installed.

Usage: python -m tests.run_suite [pytest args]. Exits non-zero if either run fails,
including when no test was collected: an empty run proves nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from tests.support.pgcluster import pg_bindir, pg_version, postgres_cluster

NO_TESTS_COLLECTED = 5


def pytest_run(label: str, args: list[str], database_url: str | None) -> bool:
    print(f"\n=== tests on {label}", flush=True)
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    # pytest-django prefers this variable to pyproject.toml; a shell that exported the
    # production settings module must not run the suite against it.
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    if database_url:
        env["DATABASE_URL"] = database_url
    code = subprocess.run([sys.executable, "-m", "pytest", *args], env=env, check=False).returncode
    if code == NO_TESTS_COLLECTED:
        print(f"=== {label}: FAILED, no tests were collected", flush=True)
    elif code:
        print(f"=== {label}: FAILED (pytest exit code {code})", flush=True)
    else:
        print(f"=== {label}: passed", flush=True)
    return code == 0


def main(args: list[str]) -> int:
    results = {"SQLite": pytest_run("SQLite", args, None)}
    bindir = pg_bindir()
    if bindir is None:
        print(
            "\n=== PostgreSQL run skipped: initdb/pg_ctl not found on PATH"
            " or in /usr/lib/postgresql/*/bin",
            flush=True,
        )
    else:
        label = f"PostgreSQL {pg_version(bindir)}"
        # A cluster that cannot start fails this run, saying why, rather than the whole script.
        try:
            with postgres_cluster(bindir) as url:
                results[label] = pytest_run(label, args, url)
        except (OSError, RuntimeError, subprocess.CalledProcessError, psycopg.Error) as exc:
            print(f"\n=== {label}: FAILED, could not start the cluster: {exc}", flush=True)
            results[label] = False
    summary = ", ".join(f"{name} {'passed' if ok else 'FAILED'}" for name, ok in results.items())
    print(f"\n=== summary: {summary}", flush=True)
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
