"""A throwaway PostgreSQL cluster for running the suite on PostgreSQL (see run_suite.py).

The cluster lives in a temp dir, listens on a free loopback port with trust auth and no
fsync, and is stopped and deleted on exit: nothing outside the temp dir is touched.
`running_cluster` yields a handle that can also restart it (the chaos test does).
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
from dataclasses import dataclass
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


@dataclass
class Cluster:
    """A running throwaway cluster: where it lives, its port, and how to restart it."""

    bindir: Path
    workdir: Path
    port: int

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def logfile(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def options(self) -> str:
        return (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
        )

    def pg_ctl(self, *args: str, check: bool = True, quiet: bool = False) -> None:
        # cwd=workdir: the cluster owner may not be allowed into the caller's directory.
        subprocess.run(
            _as_cluster_owner([str(self.bindir / "pg_ctl"), *args, "-D", str(self.datadir)]),
            cwd=self.workdir,
            check=check,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if quiet else None,
        )

    def start(self) -> None:
        """Start it; returns once it accepts connections."""
        self.pg_ctl("start", "-l", str(self.logfile), "-o", self.options, "-w", "-t", "60")

    def stop(self, *, check: bool = True) -> None:
        """Stop it in fast mode: open connections are cut, their transactions roll back,
        committed ones are all on disk (unlike an immediate stop with
        synchronous_commit off)."""
        self.pg_ctl("stop", "-m", "fast", "-w", "-t", "60", check=check, quiet=not check)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def running_cluster(bindir: Path | None = None) -> Iterator[Cluster]:
    """Start a private PostgreSQL cluster with an empty `helpdesk` database; yield it."""
    bindir = bindir or pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (initdb/pg_ctl not found)")
    cluster = Cluster(bindir, Path(tempfile.mkdtemp(prefix="helpdesk-pg-")), _free_port())
    workdir = cluster.workdir
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
        subprocess.run(
            _as_cluster_owner(
                [
                    str(bindir / "initdb"),
                    "-D", str(cluster.datadir),
                    "-A", "trust",
                    "-U", SUPERUSER,
                    "--no-sync",
                    "-E", "UTF8",
                    # The C locale exists everywhere and accepts UTF8, whatever LANG says.
                    "--locale=C",
                ]
            ),
            cwd=workdir, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        started = True  # from here on a stop is attempted even if start fails half-way
        try:
            cluster.start()
        except subprocess.CalledProcessError:
            with contextlib.suppress(OSError):
                sys.stderr.write(cluster.logfile.read_text(errors="replace"))
            raise
        _database_create(cluster.port)
        yield cluster
    finally:
        if started:
            cluster.stop(check=False)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster(bindir: Path | None = None) -> Iterator[str]:
    """Start a private PostgreSQL cluster with an empty `helpdesk` database; yield its URL."""
    with running_cluster(bindir) as cluster:
        yield cluster.url


def _database_create(port: int) -> None:
    # pytest-django creates test_helpdesk itself, but it connects to the database named
    # in DATABASE_URL first, so that one has to exist.
    with psycopg.connect(
        host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
