"""Celery plumbing both apps share: enqueueing work, and the base of tasks that call
the Graph API.

Enqueueing never fails its caller: the work is already a row in the database (a
delivery, a pending message, a conversation in `requested`…), and beat re-drives rows
whose task was lost, so a broker outage costs latency, never data.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, transaction

from webhooks.graph import GraphError

logger = logging.getLogger(__name__)


class _Publisher:
    """Runs side effects that leave the process (publishing a task, a live event) on one
    background thread per process, in the order they were submitted.

    The request or task that submits them never waits on Redis: a hung broker (SIGSTOP,
    a network stall) used to hold every webhook acknowledgement for 5 to 15 seconds. A
    job lost with its process is not lost work: the rows it names are re-driven. With
    SIDE_EFFECTS_IN_BACKGROUND off (the in-process test suite), jobs run inline.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid = 0

    def submit(self, job: Callable[[], object]) -> None:
        if not settings.SIDE_EFFECTS_IN_BACKGROUND:
            job()
            return
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked worker child
                self._jobs = queue.SimpleQueue()
                threading.Thread(target=self._run, name="side-effects", daemon=True).start()
                self._pid = os.getpid()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:
                logger.exception("a background side effect failed")
            finally:
                close_old_connections()  # for a job that touched the database


publisher = _Publisher()


class Batches:
    """Ids for one list-taking task, published together from the background publisher:
    the ids added while a publish waits or runs go in the next one, and publishes are
    at least `gap` seconds apart. Under load one task then names what many commits
    stored (a Celery publish costs about a millisecond of CPU, more than a group's
    INSERT); idle, the first ids go at once. A publish that fails hands its ids to
    `on_failure` (rows to re-drive early)."""

    def __init__(
        self,
        task: Task[Any, Any],
        *,
        on_failure: Callable[[list[int]], None],
        gap: float = 0.010,
        largest: int = 1000,
    ) -> None:
        self._task, self._on_failure, self._gap, self._largest = task, on_failure, gap, largest
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._queued = False
        self._last = 0.0

    def add(self, ids: list[int]) -> None:
        with self._lock:
            self._ids += ids
            if self._queued:
                return
            self._queued = True
        publisher.submit(self._publish)

    def _publish(self) -> None:
        if settings.SIDE_EFFECTS_IN_BACKGROUND:
            time.sleep(max(0.0, self._last + self._gap - time.monotonic()))
        with self._lock:
            ids, self._ids, self._queued = self._ids, [], False
        self._last = time.monotonic()
        for start in range(0, len(ids), self._largest):
            chunk = ids[start : start + self._largest]
            enqueue(self._task, chunk, on_failure=functools.partial(self._on_failure, chunk))


# --- Leases: a task queued for a row is not queued again by the re-drive ---------------
#
# Graph tasks take one id. Queueing one marks `queued:<task>:<id>` in the cache (Redis in
# production, shared by every process) for REDRIVE_LEASE_SECONDS; the task clears it
# when it starts. The re-drive queues only rows without a mark: a backlog is not
# multiplied by re-queueing what still waits. A cache that does not answer costs a
# duplicate (tasks are idempotent), never a lost task.


def _lease_key(task: Task[Any, Any], pk: int) -> str:
    return f"queued:{task.name}:{pk}"


def _lease_mark(task: Task[Any, Any], pk: int) -> None:
    try:
        cache.set(_lease_key(task, pk), 1, timeout=settings.REDRIVE_LEASE_SECONDS)
    except Exception as exc:  # noqa: BLE001 -- the cache is an optimisation here
        logger.warning("could not mark %s %s as queued (%s)", task.name, pk, type(exc).__name__)


def lease_release(task: Task[Any, Any], pk: int) -> None:
    try:
        cache.delete(_lease_key(task, pk))
    except Exception as exc:  # noqa: BLE001 -- the cache is an optimisation here
        logger.warning("could not clear the mark of %s %s (%s)", task.name, pk, type(exc).__name__)


def lease_take(task: Task[Any, Any], pk: int) -> bool:
    """Whether the re-drive may queue `task(pk)`: no copy was queued within the lease."""
    try:
        return bool(cache.add(_lease_key(task, pk), 1, timeout=settings.REDRIVE_LEASE_SECONDS))
    except Exception as exc:  # noqa: BLE001 -- without the cache, queue (a duplicate is harmless)
        logger.warning("could not read the mark of %s %s (%s)", task.name, pk, type(exc).__name__)
        return True


def enqueue(
    task: Task[Any, Any], *args: int | list[int], on_failure: Callable[[], None] | None = None
) -> bool:
    """Publish `task(*args)` now. A broker failure is logged, not raised; `on_failure`
    then runs (e.g. to mark the row for an early re-drive). Returns whether it was sent."""
    pk = args[0] if isinstance(task, GraphTask) and len(args) == 1 else None
    if isinstance(pk, int):
        _lease_mark(task, pk)  # before: an eager task clears it when it runs
    try:
        task.delay(*args)
    except Exception as exc:  # noqa: BLE001 -- any broker failure: the row is safe, beat re-drives
        logger.warning(
            "could not enqueue %s%r (%s); it will be re-driven", task.name, args, type(exc).__name__
        )
        if isinstance(pk, int):
            lease_release(task, pk)
        if on_failure is not None:
            on_failure()
        return False
    return True


def enqueue_on_commit(
    task: Task[Any, Any], *args: int | list[int], on_failure: Callable[[], None] | None = None
) -> None:
    """Publish `task(*args)` once the current transaction commits (never, if it rolls
    back), from the background publisher: the caller does not wait on the broker."""
    transaction.on_commit(
        lambda: publisher.submit(lambda: enqueue(task, *args, on_failure=on_failure))
    )


class Busy(Exception):
    """Another worker holds the work right now: the task tries again in `retry_in`
    seconds (about one by default)."""

    def __init__(self, reason: str, *, retry_in: float = 1.0) -> None:
        super().__init__(reason)
        self.retry_in = retry_in


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, base * 2**retries]."""
    return random.uniform(0, settings.GRAPH_RETRY_BACKOFF_SECONDS * (2**retries))


class GraphTask(Task):  # type: ignore[type-arg] # Celery's Task is generic only in stubs
    """Base of the tasks whose service calls the Graph API.

    The service raises `GraphError` only for transient failures (it records terminal
    ones itself); those are retried with `backoff_seconds`, up to GRAPH_RETRY_MAX times,
    then `give_up` is called once with the last reason. A send that timed out may have
    reached Meta, so its retry waits at least GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS, long
    enough for its echo to confirm it. `Busy` (another worker is on it) retries after
    about a second; a call another worker is making (`GraphError.retry_in`) once it is
    over. Neither counts as failing: they never lead to `give_up`.

    Tasks are acked late: a worker that dies mid-task leaves the message to another.
    """

    acks_late = True
    max_retries = None  # counted against GRAPH_RETRY_MAX, read at run time, in __call__
    time_limit = 60

    def give_up(self, pk: int, /, *, reason: str) -> None:
        """Retries are exhausted for the row `pk` (these tasks take one id). Tasks whose
        work must then be marked failed override this."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Celery's tracer has already pushed this run's request (with its retry count).
        if len(args) == 1 and isinstance(args[0], int):
            lease_release(self, args[0])
        try:
            return self.run(*args, **kwargs)
        except Busy as busy:
            raise self.retry(countdown=busy.retry_in + backoff_seconds(0)) from None
        except GraphError as exc:
            if not exc.retryable:
                raise
            if exc.retry_in is not None:
                # Another worker is making this very call, and its task applies the
                # outcome: giving up now would contradict what that call may do. This
                # copy reads the outcome once the call is over or its worker stopped.
                raise self.retry(countdown=exc.retry_in + backoff_seconds(0)) from None
            if self.request.retries >= settings.GRAPH_RETRY_MAX:
                self.give_up(*args, reason=exc.describe())
                return None
            countdown = backoff_seconds(self.request.retries)
            if exc.uncertain:
                countdown = max(countdown, settings.GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS)
            raise self.retry(countdown=countdown) from None
