"""The worker's consumer: losing the broker connection must not stop the worker.

The real failure (Redis killed under a held retry) is tested with real processes in
tests/e2e/test_broker_restart.py; here, what the consumer does with Celery's cleanup."""

from __future__ import annotations

import logging

import pytest
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.utils.imports import symbol_by_name

from helpdesk.celery import Consumer, app


class Connection:
    """Stands in for kombu's Connection; `close` fails as the detached transport makes it."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.calls: list[str] = []

    def collect(self) -> None:
        self.calls.append("collect")

    def close(self) -> None:
        self.calls.append("close")
        if self.error is not None:
            raise self.error


def celery_cleanup(self: CeleryConsumer, exc: Exception) -> None:
    """Celery 5.7's handler, as far as the connection goes: collect, close, forget."""
    connection, self.connection = self.connection, None
    connection.collect()
    connection.close()


@pytest.fixture
def consumer(monkeypatch) -> Consumer:
    monkeypatch.setattr(CeleryConsumer, "on_connection_error_after_connected", celery_cleanup)
    return Consumer.__new__(Consumer)  # the handler needs no running worker


def test_the_worker_uses_the_consumer():
    assert symbol_by_name(app.conf.worker_consumer) is Consumer


def test_the_attribute_error_of_closing_a_collected_redis_connection_is_logged(consumer, caplog):
    connection = Connection(AttributeError("'NoneType' object has no attribute 'hostname'"))
    consumer.connection = connection

    with caplog.at_level(logging.WARNING, logger="helpdesk.celery"):
        consumer.on_connection_error_after_connected(ConnectionError("lost"))

    assert (connection.calls, consumer.connection) == (["collect", "close"], None)
    assert [r.getMessage() for r in caplog.records] == [
        "The lost broker connection could not restore the messages it held "
        "(AttributeError(\"'NoneType' object has no attribute 'hostname'\")); they are "
        "redelivered after the visibility timeout or re-driven from the database"
    ]


def test_a_clean_close_logs_nothing(consumer, caplog):
    connection = Connection(None)
    consumer.connection = connection

    with caplog.at_level(logging.DEBUG, logger="helpdesk.celery"):
        consumer.on_connection_error_after_connected(ConnectionError("lost"))

    assert (connection.calls, caplog.records) == (["collect", "close"], [])


def test_other_errors_of_the_close_are_left_to_celery(consumer):
    consumer.connection = Connection(ValueError("not ours to hide"))

    with pytest.raises(ValueError, match="not ours to hide"):
        consumer.on_connection_error_after_connected(ConnectionError("lost"))


class QoS:
    """Stands in for kombu's Redis QoS of the dropped channel: its transport is detached."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def ack(self, delivery_tag: int) -> None:
        self.calls.append(("ack", delivery_tag))
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    def reject(self, delivery_tag: int, requeue: bool = False) -> None:
        self.calls.append(("reject", delivery_tag))
        raise KeyError(delivery_tag)  # anything else is Celery's business


def test_a_task_finishing_after_the_loss_acks_its_message_without_stopping_the_worker(
    consumer, caplog
):
    qos = QoS()
    consumer.connection = Connection(None)
    consumer.task_consumer = type("TaskConsumer", (), {"channel": type("C", (), {"qos": qos})})()

    consumer.on_connection_error_after_connected(ConnectionError("lost"))
    with caplog.at_level(logging.WARNING, logger="helpdesk.celery"):
        qos.ack(7)  # the running task's late acknowledgement, from the event loop
    with pytest.raises(KeyError):
        qos.reject(8)

    assert qos.calls == [("ack", 7), ("reject", 8)]
    assert [r.getMessage() for r in caplog.records] == [
        "A message of the lost broker connection could not be acked (AttributeError(\"'NoneType'"
        " object has no attribute 'hostname'\")); Redis redelivers it after the visibility "
        "timeout (its task is idempotent), or lost it and the database re-drives its work"
    ]
