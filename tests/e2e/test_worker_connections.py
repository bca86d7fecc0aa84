"""A Celery worker keeps its PostgreSQL connections from task to task, and a connection
that broke meanwhile costs a new one, not a failed task (helpdesk.celery: Celery's
Django fixup closed them around every task, and a connection per task cost more than
applying a task's ten deliveries: issue 12, point 3).

Real processes: Redis, Daphne, the Celery worker (threads x4) and beat, the recording
Graph fake; the worker's connections are seen in pg_stat_activity by their
application_name.
"""

from __future__ import annotations

import psycopg
import pytest

from helpdesk.celery import WORKER_APPLICATION
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack

pytestmark = pytest.mark.e2e

CONCURRENCY = 4  # Stack.spawn_worker's threads: at most one connection each


def _postgres(stack: Stack) -> psycopg.Connection:
    url = stack.env["DATABASE_URL"]
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("the worker's connections are seen in PostgreSQL's pg_stat_activity")
    return psycopg.connect(url, autocommit=True)


def _worker_backends(db: psycopg.Connection) -> set[int]:
    rows = db.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = %s",
        [WORKER_APPLICATION],
    ).fetchall()
    return {pid for (pid,) in rows}


def _deliveries(db: psycopg.Connection) -> list[tuple[str, int]]:
    return db.execute(
        "SELECT status, attempts FROM webhooks_webhookdelivery ORDER BY id"
    ).fetchall()


def _chat(stack: Stack, db: psycopg.Connection, clock: Clock, count: int) -> None:
    """`count` messages, one at a time: each its own delivery and task, processed."""
    for n in range(count):
        done = len(_deliveries(db)) + 1
        stack.post_webhook(
            payloads.user_message(f"message {n}", ts=clock(), mid=f"m_conn_{clock()}"),
            channel="standby",
        )
        eventually(
            lambda done=done: [s for s, _ in _deliveries(db)].count("processed") == done,
            what=lambda done=done: f"delivery {done} processed:\n{stack.logs()[-3000:]}",
        )


def test_the_worker_keeps_its_connections_across_tasks(stack):
    clock = Clock()
    with _postgres(stack) as db:
        _chat(stack, db, clock, 3)
        # After its tasks the worker still holds its connections, idle ...
        first = _worker_backends(db)
        assert 1 <= len(first) <= CONCURRENCY

        _chat(stack, db, clock, 12)

        # ... and ten more tasks later it still has them: no connection per task.
        later = _worker_backends(db)
        assert first <= later
        assert len(later) <= CONCURRENCY
        assert _deliveries(db) == [("processed", 1)] * 15


def test_a_connection_that_broke_between_tasks_is_replaced_without_failing_a_task(stack):
    clock = Clock()
    with _postgres(stack) as db:
        _chat(stack, db, clock, 3)
        broken = _worker_backends(db)
        assert broken
        # The database ends the worker's sessions while it is idle (a restart, a
        # failover, an idle timeout).
        for pid in broken:
            db.execute("SELECT pg_terminate_backend(%s)", [pid])
        eventually(lambda: not (_worker_backends(db) & broken))

        _chat(stack, db, clock, 2 * CONCURRENCY)

        # Each delivery was processed at its first attempt, on new connections.
        assert _deliveries(db) == [("processed", 1)] * (3 + 2 * CONCURRENCY)
        assert _worker_backends(db)
        assert not (_worker_backends(db) & broken)
