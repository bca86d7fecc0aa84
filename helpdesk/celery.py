"""The Celery app, and the worker's consumer (`CELERY_WORKER_CONSUMER` in the settings)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

logger = logging.getLogger(__name__)

app = Celery("helpdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
