"""The Celery app, and the worker's consumer (`CELERY_WORKER_CONSUMER` in the settings)."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Callable
from typing import Any

from celery import Celery, signals
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

logger = logging.getLogger(__name__)

app = Celery("helpdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

WORKER_APPLICATION = "helpdesk-worker"  # a worker's PostgreSQL connections' application_name
_worker = False  # set in a worker's processes (worker_init, before its pool starts)


@signals.worker_init.connect
def _database_connections_kept(**_: Any) -> None:
    """In a worker, database connections outlive a task (WORKER_DATABASE_CONN_MAX_AGE),
    and are checked (a cheap query) before the first use in each task: a database that
    restarted meanwhile costs a new connection, not a failed task. Runs in the worker's
    main process before its pool starts: prefork children inherit it."""
    global _worker
    from django.conf import settings  # noqa: PLC0415 -- Django is set up by now

    _worker = True
    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = settings.WORKER_DATABASE_CONN_MAX_AGE
        database["CONN_HEALTH_CHECKS"] = True
        if database["ENGINE"] == "django.db.backends.postgresql":
            # Told apart from Daphne's in pg_stat_activity.
            database.setdefault("OPTIONS", {}).setdefault("application_name", WORKER_APPLICATION)


@signals.task_prerun.connect
@signals.task_postrun.connect
def _database_connections_checked(task: Any = None, **_: Any) -> None:
    """Around each task in a worker, as Django does around each request: close the
    connections that are too old or broken (CELERY_DB_REUSE_MAX keeps Celery's fixup
    from closing all of them every time). Not for a task run eagerly, in a caller's
    transaction."""
    if not _worker or getattr(getattr(task, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections  # noqa: PLC0415 -- Django is set up by now

    close_old_connections()


class Consumer(CeleryConsumer):
    """Celery's consumer, made to survive losing Redis while it holds messages.

    When the broker connection breaks, Celery 5.7 (`on_connection_error_after_connected`,
    celery/celery#10242) first `collect()`s the connection and then `close()`s it. On the
    Redis transport `collect()` detaches the transport from the connection
    (`transport.client = None`) but keeps the default channel whenever closing that channel
    failed half-way, which it does when Redis is gone (its pending BRPOP read raises).
    `close()` then closes that channel again, which restores the messages the worker holds
    unacknowledged (a retry waiting for its countdown, a running acks_late task), and kombu,
    looking up the broker's address on the detached transport, raises `AttributeError`.
    That is not a connection error: it escapes the reconnect loop and the worker exits
    ("Restoring 1 unacknowledged message(s)", then "Unrecoverable error: AttributeError").

    Here that one `AttributeError` of the second close is logged and ignored: the close has
    already released the channel's sockets, Celery's handler goes on (reconnect, prefetch),
    and nothing is lost. The worker forgets the messages it held; Redis redelivers them
    after its visibility timeout if it kept its data, and beat's re-drive sends the work
    they stood for (persisted rows) in any case.
    """

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            # Only this connection, which Celery drops right after, closes leniently.
            connection.close = _lenient(  # type: ignore[method-assign]
                connection.close,
                "The lost broker connection could not restore the messages it held (%r); "
                "they are redelivered after the visibility timeout or re-driven from the "
                "database",
            )
        # A task that was running when the connection broke finishes later and acks its
        # message on the dropped channel, whose transport is detached too: the same
        # AttributeError, from the event loop. The message cannot be acked there anyway
        # (Redis redelivers it, or lost it on restart, and the task is idempotent).
        qos = getattr(getattr(getattr(self, "task_consumer", None), "channel", None), "qos", None)
        if qos is not None:
            for name in ("ack", "reject"):
                setattr(
                    qos,
                    name,
                    _lenient(
                        getattr(qos, name),
                        f"A message of the lost broker connection could not be {name}ed "
                        "(%r); Redis redelivers it after the visibility timeout (its task is "
                        "idempotent), or lost it and the database re-drives its work",
                    ),
                )
        super().on_connection_error_after_connected(exc)


def _lenient(call: Callable[..., None], message: str) -> Callable[..., None]:
    """`call`, logging (`message` % the error) the AttributeError that a transport
    detached by `collect()` raises, and only that."""

    def lenient(*args: Any, **kwargs: Any) -> None:
        try:
            call(*args, **kwargs)
        except AttributeError as exc:  # the transport collect() detached: see Consumer
            logger.warning(message, exc)

    return lenient


_log_tokens: dict[str, Any] = {}


@signals.task_prerun.connect
def _log_ids_bound(
    task_id: str = "",
    task: Any = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """The task's lines carry its id and the delivery, conversation or ticket it is for."""
    from helpdesk import logs  # noqa: PLC0415 -- Django is set up by now

    arguments: dict[str, Any]
    try:
        bound = inspect.signature(task.run).bind_partial(*args, **(kwargs or {}))
        arguments = dict(bound.arguments)
    except (TypeError, ValueError, AttributeError):
        arguments = dict(kwargs or {})
    _log_tokens[task_id] = logs.ids_set(
        logs.task_ids(task_id, getattr(task, "name", ""), arguments)
    )


@signals.task_postrun.connect
def _log_ids_unbound(task_id: str = "", **_: Any) -> None:
    from helpdesk import logs  # noqa: PLC0415

    token = _log_tokens.pop(task_id, None)
    if token is not None:
        # ValueError: set in another context (a retried task's thread); let it be.
        with contextlib.suppress(ValueError):
            logs.ids_reset(token)


@signals.setup_logging.connect
def _logging_as_configured(loglevel: Any = None, **_: Any) -> None:
    """Workers and beat log as every other process (settings.LOGGING: one JSON object
    per line in production), at the level their `--loglevel` names: Celery's own setup,
    which would replace it, is skipped."""
    from logging.config import dictConfig  # noqa: PLC0415

    from django.conf import settings  # noqa: PLC0415 -- Django is set up by now

    dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)
