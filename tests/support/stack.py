"""Real processes for end-to-end tests: Redis, Daphne, a Celery worker and beat.

The Graph API is the recording fake on loopback; the database is a fresh SQLite file,
or a fresh database on the PostgreSQL server that DATABASE_URL names.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from helpdesk.localservices import free_port, start_redis, stop, wait_for_port
from tests.support import payloads
from tests.support.fakegraph import FakeGraph
from webhooks.emulator import Emulator, EmulatorConfig

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "e2e-password-1"  # what Stack.agent_token gives every agent


def _database_url(tmp: Path, base: str | None = None) -> tuple[str, Callable[[], None]]:
    base = os.environ.get("DATABASE_URL", "") if base is None else base
    if not base.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{tmp / 'e2e.sqlite3'}", lambda: None
    name = f"helpdesk_e2e_{uuid.uuid4().hex[:8]}"
    admin_url = re.sub(r"/[^/]*$", "/postgres", base)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return re.sub(r"/[^/]*$", f"/{name}", base), drop


@dataclass
class Stack:
    tmp: Path
    graph_url: str
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    page_name: str = "E2E Page"
    base_url: str = ""
    redis_port: int = 0
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    # Environment on top of the defaults below (e.g. shorter re-drive intervals).
    settings: dict[str, str] = field(default_factory=dict)
    # The server a fresh database is made on; None: the DATABASE_URL of this process
    # (PostgreSQL), else a SQLite file.
    database_server_url: str | None = None
    # How each process was started, so that it can be started again (`respawn`).
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def spawn(self, name: str, *argv: str) -> None:
        self.commands[name] = argv
        log = open(self.tmp / f"{name}.log", "a")  # noqa: SIM115 -- closed with the process
        self.processes[name] = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()  # the child has its own copy

    def respawn(self, name: str) -> None:
        """Start a process again the way it was first started (its log goes on)."""
        self.spawn(name, *self.commands[name])

    def spawn_daphne(self, name: str, port: int) -> None:
        self.spawn(
            name,
            str(BIN / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "helpdesk.asgi:application",
        )

    def spawn_worker(self, name: str = "worker") -> None:
        self.spawn(
            name,
            str(BIN / "celery"),
            "-A",
            "helpdesk",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"{name}@%h",
        )

    def start_redis(self) -> None:
        process, url = start_redis(self.tmp / "redis", port=self.redis_port or None)
        self.processes["redis"] = process
        self.redis_port = int(url.rsplit(":", 1)[1].split("/")[0])
        self.env["REDIS_URL"] = url

    def stop_redis(self) -> None:
        stop(self.processes.pop("redis"))

    def kill_redis(self) -> None:
        """SIGKILL, as a crash or an OOM kill: no shutdown, and (no persistence) no data."""
        process = self.processes.pop("redis")
        process.kill()
        process.wait()

    def start(self) -> None:
        self.prepare()
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.spawn_daphne("daphne", port)
        self.spawn_worker("worker")
        self.spawn(
            "beat",
            str(BIN / "celery"),
            "-A",
            "helpdesk",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(self.tmp / "beat-schedule"),
        )
        wait_for_port(port, timeout=30)

    def prepare(self) -> None:
        """Everything but the processes: the environment, Redis, a migrated database and
        the connected page (a benchmark starts only the processes it measures)."""
        database_url, drop = _database_url(self.tmp, self.database_server_url)
        self.cleanups.append(drop)
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("MESSENGER_", "DEBUG", "SECURE_", "TOKEN_"))
            },
            "DEBUG": "0",  # production settings: secrets are required
            "HELPDESK_ENV_FILE": "",  # no developer's .env
            "SECRET_KEY": "e2e-secret-key",
            "MESSENGER_APP_ID": payloads.APP_ID,
            "MESSENGER_APP_SECRET": payloads.APP_SECRET,
            "MESSENGER_VERIFY_TOKEN": "e2e-verify",
            "TOKEN_ENCRYPTION_KEY": "ZTJlLXRva2VuLWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM=",
            # Plain http on loopback: production's HTTPS defaults would redirect every
            # request to https and keep the cookies off http.
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "SECURE_HSTS_SECONDS": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(self.tmp / "media"),  # files agents send
            "GRAPH_API_URL": self.graph_url,
            "GRAPH_RETRY_BACKOFF_SECONDS": "0.2",
            "REDRIVE_INTERVAL_SECONDS": "1",
            "REDRIVE_GRACE_SECONDS": "1",
            "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
            "LOG_LEVEL": "INFO",
            # Readable lines for the tests that read the logs (tests/e2e/test_logs.py
            # reads production's JSON).
            "LOG_FORMAT": "plain",
            **self.settings,
        }
        self.start_redis()
        self.manage("migrate", "--noinput")
        self.manage(
            "connect_page",
            "--page-id",
            payloads.PAGE_ID,
            "--access-token",
            "e2e-page-token",
            "--bot-app-id",
            payloads.BOT_APP_ID,
            "--name",
            self.page_name,
        )

    def agent_token(self, username: str) -> str:
        output = self.manage("create_agent", username, "--password", PASSWORD)
        return re.search(r"API token \(shown once\): (\S+)", output).group(1)

    def post_webhook(self, *events: dict[str, Any], channel: str = "messaging") -> None:
        body = payloads.body_bytes(payloads.delivery(*events, channel=channel))
        response = requests.post(
            f"{self.base_url}/webhooks/messenger/",
            data=body,
            timeout=10,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": payloads.signature(body),
            },
        )
        assert (response.status_code, response.text) == (200, "EVENT_RECEIVED")

    def logs(self) -> str:
        out = []
        for name in self.processes:
            path = self.tmp / f"{name}.log"
            if path.exists():
                out.append(f"--- {name}\n" + path.read_text()[-4000:])
        return "\n".join(out)

    def close(self) -> None:
        for process in self.processes.values():
            stop(process)
        for cleanup in self.cleanups:
            cleanup()


class Clock:
    """Event timestamps as Meta stamps them: real time, strictly increasing."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._last = max(int(time.time() * 1000), self._last + 1)
            return self._last


def daphne_port(stack: Stack) -> int:
    return int(stack.base_url.rsplit(":", 1)[1])


def daphne_start(stack: Stack, name: str, port: int) -> None:
    """Another Daphne process of the stack (several run behind a proxy in production)."""
    stack.spawn_daphne(name, port)
    wait_for_port(port, timeout=30)


@contextmanager
def fake_graph_stack(
    tmp: Path, *, database_server_url: str | None = None, **env: str
) -> Iterator[Stack]:
    """The helpdesk's processes against the recording Graph fake (`stack.fake`); `env`
    overrides their environment (settings such as REDRIVE_GRACE_SECONDS);
    `database_server_url` as Stack's ("" for a SQLite file whatever DATABASE_URL says)."""
    fake = FakeGraph().start()
    stack = Stack(
        tmp=tmp, graph_url=fake.url, settings=env, database_server_url=database_server_url
    )
    stack.fake = fake  # type: ignore[attr-defined]
    try:
        stack.start()
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()
        fake.stop()


@contextmanager
def emulator_stack(
    tmp: Path, *, page_name: str = "E2E Page", cr_take: bool = False, **env: str
) -> Iterator[tuple[Any, Stack]]:
    """The Messenger emulator (its demo bot as the page's default app) and the helpdesk's
    processes, wired to each other: the emulator's Graph API for the helpdesk, the
    helpdesk's webhook for the emulator (known once Daphne has its port)."""
    config = EmulatorConfig.demo(
        port=0,
        page_name=page_name,
        helpdesk_app_id=payloads.APP_ID,
        helpdesk_secret=payloads.APP_SECRET,
        helpdesk_token="e2e-page-token",
        helpdesk_callback_url=None,
        # Most real pages today: requests refused, the helpdesk may take.
        requests_refused=cr_take,
        helpdesk_can_take=cr_take,
    )
    emulator = Emulator(config)
    emulator.start()
    stack = Stack(tmp=tmp, graph_url=emulator.graph_url, page_name=page_name, settings=env)
    try:
        stack.start()
        emulator.set_callback_url(payloads.APP_ID, f"{stack.base_url}/webhooks/messenger/")
        yield emulator, stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()
        emulator.stop()


def helpdesk_calls(emulator: Any, path: str) -> list[dict[str, Any]]:
    """The Graph calls the helpdesk's app made to `path`, as the emulator recorded them."""
    return [
        c
        for c in list(emulator.graph_calls)
        if c["app_id"] == payloads.APP_ID and c["path"] == path
    ]


def waiting_ticket_claimed(
    api: str, headers: dict[str, str], *, timeout: float = 5
) -> tuple[int, str]:
    """Wait for the one waiting ticket (`api`: the stack's `/api/v1` URL), claim it with
    these credentials, and return its id and URL."""
    from tests.support.polling import eventually  # noqa: PLC0415 -- polling imports nothing of this

    [ticket] = eventually(
        lambda: requests.get(
            f"{api}/tickets", params={"status": "waiting"}, headers=headers, timeout=timeout
        ).json(),
        what="a waiting ticket",
    )
    url = f"{api}/tickets/{ticket['id']}"
    response = requests.post(f"{url}/claim", headers=headers, timeout=timeout * 2)
    assert response.status_code == 200, response.text
    return ticket["id"], url
