"""A throwaway PostgreSQL cluster for running the suite on PostgreSQL (see run_suite.py).

The cluster lives in a temp dir, listens on a free loopback port with trust auth and no
fsync, and is stopped and deleted on exit: nothing outside the temp dir is touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

DATABASE = "helpdesk"
SUPERUSER = "postgres"


def _free_port() -> int:
    # Not helpdesk.localservices.free_port: importing `helpdesk` sets DJANGO_SETTINGS_MODULE
    # (celery app), which pytest-django would then prefer over tests.settings.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _version_key(bindir: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/(\d+(?:\.\d+)*)/bin$", bindir)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def pg_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed.

    Debian keeps them out of PATH in /usr/lib/postgresql/<major>/bin; PATH wins so that a
    developer can pick a version.
    """
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        # Resolve symlinks so that the other tools (postgres) come from the same version.
        return Path(os.path.realpath(pg_ctl)).parent
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if os.access(f"{bindir}/initdb", os.X_OK) and os.access(f"{bindir}/pg_ctl", os.X_OK):
            return Path(bindir)
    return None


def pg_version(bindir: Path) -> str:
    """The major version, e.g. "15", for the run header."""
    out = subprocess.run(
        [str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return match.group(1) if match else out.strip()


def _as_cluster_owner(argv: list[str]) -> list[str]:
    # initdb and pg_ctl refuse to run as root; CI runs as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *argv]
    return argv


@contextlib.contextmanager
def postgres_cluster(bindir: Path | None = None) -> Iterator[str]:
    """Start a private PostgreSQL cluster with an empty `helpdesk` database; yield its URL."""
    bindir = bindir or pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (initdb/pg_ctl not found)")
    workdir = Path(tempfile.mkdtemp(prefix="helpdesk-pg-"))
    datadir, logfile = workdir / "data", workdir / "postgres.log"
    port = _free_port()
    started = False
    try:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise RuntimeError(
                    f"running as root and there is no {SUPERUSER!r} user to own the cluster"
                ) from None
            os.chown(workdir, owner.pw_uid, owner.pw_gid)
        # cwd=workdir: the cluster owner may not be allowed into the caller's directory.
        run = {"cwd": workdir, "check": True, "stdout": subprocess.DEVNULL}
        subprocess.run(
            _as_cluster_owner(
                [
                    str(bindir / "initdb"),
                    "-D", str(datadir),
                    "-A", "trust",
                    "-U", SUPERUSER,
                    "--no-sync",
                    "-E", "UTF8",
                    # The C locale exists everywhere and accepts UTF8, whatever LANG says.
                    "--locale=C",
                ]
            ),
            **run,
        )  # fmt: skip
        options = (
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
        )
        started = True  # from here on a stop is attempted even if start fails half-way
        try:
            subprocess.run(
                _as_cluster_owner(
                    [
                        str(bindir / "pg_ctl"),
                        "start",
                        "-D", str(datadir),
                        "-l", str(logfile),
                        "-o", options,
                        "-w", "-t", "60",
                    ]
                ),
                **run,
            )  # fmt: skip
        except subprocess.CalledProcessError:
            with contextlib.suppress(OSError):
                sys.stderr.write(logfile.read_text(errors="replace"))
            raise
        _database_create(port)
        yield f"postgres://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            subprocess.run(
                _as_cluster_owner(
                    [str(bindir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "fast", "-w"]
                ),
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        shutil.rmtree(workdir, ignore_errors=True)


def _database_create(port: int) -> None:
    # pytest-django creates test_helpdesk itself, but it connects to the database named
    # in DATABASE_URL first, so that one has to exist.
    with psycopg.connect(
        host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
