"""The fault schedule: every `fault_interval` seconds (± a third, at random) the next
fault of the plan, round and round until the load is done.

Process faults go through the supervisor (`kill -9` and a down time of 0.5 to 3 s,
Redis and PostgreSQL restarts); Graph faults are armed in the emulator (the next calls
fail); webhook faults are windows (on now, off a little later).
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable

from tests.chaos.supervisor import REDIS, Supervisor
from tests.chaos.world import (
    API_DAPHNE,
    GRAPH_CONFIRM_SECONDS,
    GRAPH_TIMEOUT_FAULT_SECONDS,
    HOOKS_DAPHNE,
    WORKERS,
    World,
)
from tests.support import payloads

logger = logging.getLogger(__name__)

# What each fault is called in the plan and in the report.
FAULTS = {
    "kill_worker": "Celery worker killed (kill -9)",
    "kill_daphne": "webhook Daphne killed (kill -9)",
    "kill_daphne_api": "API Daphne killed (kill -9)",
    "kill_beat": "Celery beat killed (kill -9)",
    "restart_redis": "Redis restarted (empty)",
    "restart_postgres": "PostgreSQL restarted",
    "graph_5xx": "Graph 5xx bursts armed",
    "graph_timeout_applied": "Graph timeouts that took effect armed",
    "graph_timeout": "Graph timeouts (not applied) armed",
    "late_echoes": "late-echo windows",
    "lost_answer_late_echo": "sends answered late and echoed late (past the deadline)",
    "duplicate": "duplicate-delivery windows",
    "out_of_order": "out-of-order windows",
    "bot_takes": "bot took a conversation back",
}
PLAN = (
    "kill_worker",
    "graph_5xx",
    "kill_daphne",
    "graph_timeout_applied",
    "restart_redis",
    "late_echoes",
    "restart_postgres",
    "kill_daphne_api",
    "duplicate",
    "kill_worker",
    "graph_timeout",
    "out_of_order",
    "kill_beat",
    "bot_takes",
    "kill_worker",
    "graph_5xx",
    "lost_answer_late_echo",
    "kill_daphne",
    "kill_worker",
)
# One of each kind: the shortened run inside `make test`.
SHORT_PLAN = (
    "kill_worker",
    "graph_5xx",
    "kill_daphne",
    "graph_timeout_applied",
    "restart_redis",
    "late_echoes",
    "restart_postgres",
    "duplicate",
)


class Monkey:
    def __init__(
        self, world: World, supervisor: Supervisor, *, plan: tuple[str, ...], rng: random.Random
    ) -> None:
        unknown = set(plan) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults in the plan: {', '.join(sorted(unknown))}")
        if world.cluster is None:  # SQLite: no server to restart
            plan = tuple(f for f in plan if f != "restart_postgres")
        self.world = world
        self.supervisor = supervisor
        self.plan = plan
        self.rng = rng
        self.done: Counter[str] = Counter()
        self.graph_faults_armed: Counter[str] = Counter()  # calls that will fail, by kind
        self.echoes_held_seconds: list[float] = []
        self.graph_faults_unused = 0
        self.plan_done = threading.Event()  # every fault of the plan happened once
        self._stop = threading.Event()
        self._windows: list[threading.Timer] = []
        self._thread = threading.Thread(target=self._run, name="chaos-monkey", daemon=True)

    def start(self) -> Monkey:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the fault under way, end the webhook windows, disarm Graph faults."""
        self._stop.set()
        self._thread.join(timeout=120)
        for timer in self._windows:
            timer.cancel()
        # Armed Graph faults that no call used up (the load ended first).
        self.graph_faults_unused = sum(
            f["remaining"] for f in self.world.emulator.graph_faults.view()
        )
        self.world.emulator.graph_faults.clear()
        self.world.emulator.dispatcher.faults_clear()

    def _run(self) -> None:
        interval = self.world.options.fault_interval
        for index in range(10**9):
            if self._stop.wait(self.rng.uniform(interval * 2 / 3, interval * 4 / 3)):
                return
            name = self.plan[index % len(self.plan)]
            try:
                getattr(self, name)()
                self.done[name] += 1
                logger.info("fault: %s", FAULTS[name])
            except Exception:
                logger.exception("fault %s could not be injected", name)
            if index + 1 == len(self.plan):
                self.plan_done.set()

    def _down_for(self) -> float:
        return self.rng.uniform(0.5, 3.0)

    # --- processes ------------------------------------------------------------------

    def kill_worker(self) -> None:
        self.supervisor.kill(self.rng.choice(WORKERS), down_for=self._down_for())

    def kill_daphne(self) -> None:
        self.supervisor.kill(HOOKS_DAPHNE, down_for=self._down_for())

    def kill_daphne_api(self) -> None:
        self.supervisor.kill(API_DAPHNE, down_for=self._down_for())

    def kill_beat(self) -> None:
        self.supervisor.kill("beat", down_for=self._down_for())

    def restart_redis(self) -> None:
        self.supervisor.kill(REDIS, down_for=self._down_for())

    def restart_postgres(self) -> None:
        self.supervisor.postgres_restart(down_for=self._down_for())

    # --- the Graph API ------------------------------------------------------------------

    def _arm(self, label: str, kind: str, count: int, **fault: object) -> None:
        self.world.emulator.fail_next_graph_calls(kind, count, app_id=payloads.APP_ID, **fault)
        self.graph_faults_armed[label] += count

    def graph_5xx(self) -> None:
        self._arm(
            "5xx",
            "5xx",
            self.rng.randint(3, 8),
            status=self.rng.choice((500, 502, 503)),
            path=self.rng.choice(("messages", "thread_control", None)),
        )

    def graph_timeout_applied(self) -> None:
        self._arm(
            "timeout (applied)",
            "timeout",
            self.rng.randint(1, 3),
            seconds=GRAPH_TIMEOUT_FAULT_SECONDS,
            applied=True,
            path=self.rng.choice(("messages", "messages", "thread_control")),
        )

    def graph_timeout(self) -> None:
        self._arm(
            "timeout",
            "timeout",
            1,
            seconds=GRAPH_TIMEOUT_FAULT_SECONDS,
            path=self.rng.choice(("messages", "thread_control")),
        )

    # --- webhooks ---------------------------------------------------------------------

    def _window(self, on: Callable[[], None], off: Callable[[], None]) -> None:
        on()
        timer = threading.Timer(self.world.options.fault_interval * 1.5, off)
        timer.daemon = True
        self._windows.append(timer)
        timer.start()

    def late_echoes(self) -> None:
        # Sometimes longer than GRAPH_CONFIRM_SECONDS: a reply whose answer was lost
        # fails as "may not have been delivered" before its echo comes.
        seconds = self.rng.choice((3.0, 6.0, 12.0))
        self.echoes_held_seconds.append(seconds)
        emulator = self.world.emulator
        self._window(
            lambda: emulator.webhook_faults(late_seconds=seconds),
            lambda: emulator.webhook_faults(late_seconds=0),
        )

    def lost_answer_late_echo(self) -> None:
        """The next sends take effect but their answers are lost, and their echoes come
        after GRAPH_CONFIRM_SECONDS: the replies fail as "may not have been delivered",
        then their echoes confirm them."""
        self._arm(
            "timeout (applied)",
            "timeout",
            2,
            seconds=GRAPH_TIMEOUT_FAULT_SECONDS,
            applied=True,
            path="messages",
        )
        seconds = float(GRAPH_CONFIRM_SECONDS + 6)
        self.echoes_held_seconds.append(seconds)
        emulator = self.world.emulator
        self._window(
            lambda: emulator.webhook_faults(late_seconds=seconds),
            lambda: emulator.webhook_faults(late_seconds=0),
        )

    def duplicate(self) -> None:
        emulator = self.world.emulator
        self._window(
            lambda: emulator.webhook_faults(duplicate=True),
            lambda: emulator.webhook_faults(duplicate=False),
        )

    def out_of_order(self) -> None:
        emulator = self.world.emulator
        self._window(
            lambda: emulator.webhook_faults(out_of_order=True),
            lambda: emulator.webhook_faults(out_of_order=False),
        )

    def bot_takes(self) -> None:
        emulator = self.world.emulator
        with emulator.platform.lock:
            psids = [psid for (_, psid) in emulator.platform.threads]
        served = [psid for psid in psids if emulator.owner(psid) == payloads.APP_ID]
        if served:
            emulator.take_control(self.rng.choice(served), metadata="chaos: the bot takes over")
