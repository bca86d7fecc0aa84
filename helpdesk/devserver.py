"""`make run`: the whole helpdesk on one machine, for development.

Starts (or reuses, via REDIS_URL) Redis, migrates and seeds the SQLite database, then runs
Daphne, a Celery worker, Celery beat and the Messenger Platform emulator (with its demo
bot and customer page) until Ctrl-C. With GRAPH_API_URL set, that Graph API is used and no
emulator is started. A child that exits once everything runs is restarted (`Supervisor`).
Not for production, where each of those runs under a process supervisor (systemd, compose).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from helpdesk import envfile, localservices
from webhooks.emulator.statefile import CLOCK_FILE

BASE_DIR = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
# The emulator's world (statefile): kept across runs, removed by `make reset-demo`.
EMULATOR_STATE_DIR = BASE_DIR / "var" / "emulator"

# The port of the settings' default REDIS_URL (redis://127.0.0.1:6379/0).
DEFAULT_REDIS_PORT = 6379
# What `manage.py demo_seed` makes (agents/management/commands/demo_seed.py).
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


class Shutdown(Exception):
    """Raised from the signal handler so that cleanup runs in the `finally` blocks."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Shutdown(signal.Signals(signum).name)


# The key development used before `make run` wrote a .env: pages connected under it
# still decrypt (helpdesk/settings.py has the same value).
FORMER_DEV_TOKEN_KEY = "dev-only-token-key-do-not-use-in-production="


def env_file_write(path: Path, *, database_exists: bool) -> bool:
    """Write the development `.env` unless there is one; True when it was written.

    DEBUG=1 and generated secrets, so that `manage.py` commands work without a prefix
    and no development install signs sessions or encrypts tokens with a published key.
    A database made before (`database_exists`) keeps its page tokens readable: the
    former development key stays in the key list, after the new one.
    """
    token_keys = Fernet.generate_key().decode()
    if database_exists:
        token_keys += "," + FORMER_DEV_TOKEN_KEY
    text = "\n".join(
        [
            "# Development settings, written by `make run` on its first run",
            "# (helpdesk/devserver.py), which never overwrites this file: delete it for a new",
            "# one. The settings read it under the environment (the environment wins), so",
            "# that `manage.py` commands run as in development. Never for production; every",
            "# variable is described in .env.example.",
            "DEBUG=1",
            f"SECRET_KEY={secrets.token_urlsafe(50)}",
            f"TOKEN_ENCRYPTION_KEY={token_keys}",
            "",
        ]
    )
    try:
        with path.open("x", encoding="utf-8") as file:
            file.write(text)
    except FileExistsError:
        return False
    path.chmod(0o600)
    return True


def env_file_load(path: Path) -> None:
    """Lend this process (and so its children) the file's variables it does not have."""
    for name, value in envfile.read(path).items():
        os.environ.setdefault(name, value)


def manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout or ""


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now.

    Binds the way the servers do, with SO_REUSEADDR (Twisted for Daphne, the emulator's
    `allow_reuse_address`): the connections of a server stopped a moment ago, lingering
    in TIME_WAIT, do not hold the port, while a listener does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    restarted_at: deque[float] = field(default_factory=deque)  # recent restarts, oldest first


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # Leftovers in the group (a Celery pool process whose parent died) go too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class Supervisor:
    """The children of `make run`, restarted when they exit.

    A child that exits is started again at once, with a line on stderr saying so. One that
    exits more than `max_restarts` times within `window` seconds is not: `check` raises and
    `make run` stops, so that a crash loop is seen rather than scrolled past.
    """

    def __init__(
        self,
        *,
        max_restarts: int = 3,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.children: list[Child] = []
        self.max_restarts = max_restarts
        self.window = window
        self.clock = clock

    @staticmethod
    def _start(argv: list[str]) -> subprocess.Popen[bytes]:
        # Own process group: Ctrl-C reaches only this script, which then stops the children
        # itself, and a whole group (Celery's pool processes included) can be killed.
        return subprocess.Popen(argv, cwd=BASE_DIR, process_group=0)

    def spawn(self, name: str, argv: list[str]) -> None:
        self.children.append(Child(name, argv, self._start(argv)))

    def check(self, *, restart: bool = True) -> None:
        """Restart the children that exited; raise RuntimeError for one that exited too
        often, or for any that exited when `restart` is false (while starting up)."""
        for child in self.children:
            code = child.process.poll()
            if code is None:
                continue
            if not restart:
                raise RuntimeError(f"{child.name} {_describe_exit(code)}")
            now = self.clock()
            while child.restarted_at and child.restarted_at[0] <= now - self.window:
                child.restarted_at.popleft()
            if len(child.restarted_at) >= self.max_restarts:
                raise RuntimeError(
                    f"{child.name} {_describe_exit(code)}, after {len(child.restarted_at)} "
                    f"restarts within {self.window:g} s; not restarting it again"
                )
            child.restarted_at.append(now)
            print(
                f"devserver: {child.name} {_describe_exit(code)}; restarting it (restart "
                f"{len(child.restarted_at)} of at most {self.max_restarts} "
                f"within {self.window:g} s)",
                file=sys.stderr,
                flush=True,
            )
            _kill_group(child.process)
            child.process = self._start(child.argv)

    def stop_all(self) -> None:
        # SIGTERM everyone first so they shut down in parallel, then wait; Celery's warm
        # shutdown lets a running task finish.
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"devserver: {child.name} did not stop in time; killing it", file=sys.stderr)
                child.process.kill()
                child.process.wait()
            _kill_group(child.process)


def wait_for_http(port: int, supervisor: Supervisor) -> None:
    """Wait until Daphne answers any HTTP request; fail early if a child dies meanwhile."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        supervisor.check(restart=False)
        # http.client rather than urllib: urllib would honour http_proxy for 127.0.0.1.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/admin/login/")
            conn.getresponse().read()
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
        finally:
            conn.close()
    raise RuntimeError(f"Daphne did not answer on port {port} within 60 s")


def banner(port: int, token: str, graph_api_url: str, emulator_port: int | None) -> str:
    base = f"http://127.0.0.1:{port}"
    lines = [
        "",
        "=" * 72,
        "Messenger helpdesk is running (Ctrl-C to stop)",
        f"  Agent inbox:    {base}/",
        f"  Django admin:   {base}/admin/",
        f"  Demo login:     {DEMO_USERNAME} / {DEMO_PASSWORD}",
        f"  API docs:       {base}/api/v1/docs",
        f"  OpenAPI:        {base}/api/v1/openapi.json",
        f"  API token:      {token}",
        f"  Webhook:        {base}/webhooks/messenger/",
        f"  GRAPH_API_URL:  {graph_api_url}",
    ]
    if emulator_port is not None:
        emulator = f"http://127.0.0.1:{emulator_port}"
        lines += [
            f"  Customer page:  {emulator}/   (play the Messenger user)",
            f"  Emulator faults:{emulator}/control",
        ]
    lines += [f"  Redis:          {os.environ['REDIS_URL']}", "=" * 72, ""]
    return "\n".join(lines)


def token_from(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("API token"):
            return line.split(":", 1)[1].strip()
    return f"(not found in demo_seed output: {output.strip()!r})"


def environment_prepare() -> bool:
    """The working directory and environment of `make run` (and `make reset-demo`):
    the .env written on the first run, then lent to this process. False if unreadable."""
    # `python -m helpdesk.devserver` may be run from anywhere; var/ and manage.py are here.
    os.chdir(BASE_DIR)
    # The settings' .env (HELPDESK_ENV_FILE: another file, "" for none).
    env_name = os.environ.get("HELPDESK_ENV_FILE", str(BASE_DIR / ".env"))
    if env_name:
        env_file = Path(env_name)
        database = BASE_DIR / "var" / "helpdesk.sqlite3"
        if env_file_write(env_file, database_exists=database.exists()):
            print(f"devserver: wrote {env_file} (DEBUG=1, new development secrets)", flush=True)
        try:
            env_file_load(env_file)
        except envfile.EnvFileError as exc:
            print(f"devserver: {exc}", file=sys.stderr)
            return False
    os.environ.setdefault("DEBUG", "1")
    return True


def reset_demo() -> int:
    """`make reset-demo`: forget the emulator's world. The next `make run` starts a new
    one (new users, the clock where it really is) and, finding none of the helpdesk's
    demo contacts among its users, removes them with their tickets (`demo_seed`)."""
    if not environment_prepare():
        return 1
    emulator_port = int(os.environ.get("EMULATOR_PORT") or 8001)
    if not port_is_free(emulator_port):
        print(
            f"devserver: port {emulator_port} is in use: stop `make run` first (the running "
            "emulator would keep its world)",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(EMULATOR_STATE_DIR, ignore_errors=True)
    print(
        f"devserver: removed {EMULATOR_STATE_DIR.relative_to(BASE_DIR)}; the next `make run` "
        "starts a new emulator world and removes the demo page's conversations and tickets",
        flush=True,
    )
    return 0


def main() -> int:
    if not environment_prepare():
        return 1
    port = int(os.environ.get("PORT") or 8000)
    if not port_is_free(port):
        print(f"devserver: port {port} is in use; set PORT to another one", file=sys.stderr)
        return 1

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    var = BASE_DIR / "var"
    var.mkdir(exist_ok=True)
    redis_process: subprocess.Popen[bytes] | None = None
    supervisor = Supervisor()
    try:
        if not os.environ.get("REDIS_URL"):
            # On the settings' default port when it is free: `manage.py` commands run next
            # to `make run` (create_agent's live update of open inboxes) then reach it.
            redis_port = DEFAULT_REDIS_PORT if port_is_free(DEFAULT_REDIS_PORT) else None
            redis_process, redis_url = localservices.start_redis(var / "redis", port=redis_port)
            os.environ["REDIS_URL"] = redis_url
        emulator_port: int | None = None
        if not os.environ.get("GRAPH_API_URL"):
            emulator_port = int(os.environ.get("EMULATOR_PORT") or 8001)
            if not port_is_free(emulator_port):
                raise RuntimeError(
                    f"port {emulator_port} is in use; set EMULATOR_PORT to another one"
                )
            # The server only: the version is GRAPH_API_VERSION's (settings).
            os.environ["GRAPH_API_URL"] = f"http://127.0.0.1:{emulator_port}"
            # The helpdesk's clock follows the emulator's (moved on its control page); a
            # development setting, which production settings (DEBUG=0) would refuse.
            if os.environ["DEBUG"].lower() in {"1", "true", "yes", "on"}:
                os.environ.setdefault("DEV_CLOCK_FILE", str(EMULATOR_STATE_DIR / CLOCK_FILE))

        # Read after the environment is final, so the banner shows what the app uses.
        from helpdesk import settings  # noqa: PLC0415 -- after the environment is final

        manage("migrate", "--noinput")
        seed = ["demo_seed"]
        if emulator_port is not None:
            # First, so that the demo data can be checked against its users. Its world
            # (users, threads, clock) is kept in var/emulator across restarts.
            supervisor.spawn(
                "messenger emulator",
                [sys.executable, str(BASE_DIR / "manage.py"), "messenger_emulator",
                 "--port", str(emulator_port),
                 "--callback-url", f"http://127.0.0.1:{port}/webhooks/messenger/",
                 "--state-dir", str(EMULATOR_STATE_DIR),
                 # Most real pages today: Conversation Routing with the bot as default
                 # app, requests refused, the helpdesk allowed to take.
                 "--page-setup", "cr-take"],
            )  # fmt: skip
            localservices.wait_for_port(emulator_port, timeout=30)
            supervisor.check(restart=False)
            seed += ["--emulator-url", f"http://127.0.0.1:{emulator_port}"]
        seed_output = manage(*seed, capture=True)
        print(
            "\n".join(f"devserver: {line}" for line in seed_output.splitlines()
                      if not line.startswith(("API token", "Demo login"))),
            flush=True,
        )  # fmt: skip
        token = token_from(seed_output)

        supervisor.spawn(
            "daphne",
            [str(BIN_DIR / "daphne"), "-b", "127.0.0.1", "-p", str(port),
             "helpdesk.asgi:application"],
        )  # fmt: skip
        supervisor.spawn(
            "celery worker",
            [str(BIN_DIR / "celery"), "-A", "helpdesk", "worker", "--loglevel=INFO",
             "--concurrency=2"],
        )  # fmt: skip
        supervisor.spawn(
            "celery beat",
            [str(BIN_DIR / "celery"), "-A", "helpdesk", "beat", "--loglevel=INFO",
             "--schedule", str(var / "celerybeat-schedule")],
        )  # fmt: skip
        wait_for_http(port, supervisor)
        print(banner(port, token, settings.GRAPH_API_URL, emulator_port), flush=True)

        while True:
            supervisor.check()
            if redis_process is not None and redis_process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {redis_process.returncode}")
            time.sleep(0.5)
    except Shutdown as exc:
        print(f"\ndevserver: {exc}, stopping", file=sys.stderr, flush=True)
        return 0
    except (RuntimeError, subprocess.CalledProcessError, TimeoutError, ImproperlyConfigured) as exc:
        print(f"devserver: {exc}; stopping", file=sys.stderr, flush=True)
        return 1
    finally:
        # A second Ctrl-C must not abort the cleanup half-way.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        supervisor.stop_all()
        if redis_process is not None:
            localservices.stop(redis_process)


if __name__ == "__main__":
    if sys.argv[1:] == ["reset-demo"]:
        sys.exit(reset_demo())
    if sys.argv[1:]:
        sys.exit("usage: python -m helpdesk.devserver [reset-demo]")
    sys.exit(main())
