"""The chaos run's supervisor: it kills processes on purpose (`kill -9`), restarts them
after their down time, and restarts any process that exits on its own, counting how
often it had to (a Celery worker may exit for good when Redis restarts under it).

Redis and PostgreSQL are restarted here too: Redis is killed and started again on its
port with nothing in it (no persistence: every queued task is gone, as after a crash);
PostgreSQL is stopped in fast mode (connections cut, transactions rolled back) and
started again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from tests.support.pgcluster import Cluster
from tests.support.stack import Stack

logger = logging.getLogger(__name__)

REDIS = "redis"


class Supervisor:
    """Keeps every process of `stack` running, from a thread, until `stop`."""

    def __init__(self, stack: Stack, cluster: Cluster | None) -> None:
        self.stack = stack
        self.cluster = cluster
        self.unexpected_exits: Counter[str] = Counter()
        self.killed: Counter[str] = Counter()
        self._down_until: dict[str, float] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    # --- faults ---------------------------------------------------------------------

    def kill(self, name: str, *, down_for: float) -> None:
        """`kill -9` a process (or Redis); it is started again after `down_for` seconds."""
        with self._lock:
            process = self.stack.processes[name]
            self._down_until[name] = time.monotonic() + down_for
            process.kill()
            process.wait()
            self.killed[name] += 1
        logger.info("killed %s (pid %s), down for %.1f s", name, process.pid, down_for)

    def postgres_restart(self, *, down_for: float) -> None:
        """Stop PostgreSQL (fast: connections cut), wait, start it again. Blocks."""
        assert self.cluster is not None
        self.cluster.stop()
        self.killed["postgresql"] += 1
        time.sleep(down_for)
        self.cluster.start()

    def all_up(self, timeout: float = 60.0) -> None:
        """End every down time now; returns once every process runs again."""
        with self._lock:
            for name in self._down_until:
                self._down_until[name] = 0.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._down_until:
                    return
            time.sleep(0.05)
        raise AssertionError(f"processes still down after {timeout:g} s: {self._down_until}")

    # --- the loop -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.wait(0.1):
            with self._lock:
                self._check()

    def _check(self) -> None:
        now = time.monotonic()
        for name, process in list(self.stack.processes.items()):
            due = self._down_until.get(name)
            if due is not None:
                if now >= due:
                    self._respawn(name)
                    del self._down_until[name]
                continue
            if process.poll() is not None:
                self.unexpected_exits[name] += 1
                logger.warning(
                    "%s (pid %s) exited by itself with code %s; starting it again",
                    name,
                    process.pid,
                    process.returncode,
                )
                self._respawn(name)

    def _respawn(self, name: str) -> None:
        if name == REDIS:
            self.stack.start_redis()  # on the same port: every client reconnects
        else:
            self.stack.respawn(name)
