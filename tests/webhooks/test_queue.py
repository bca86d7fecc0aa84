"""GraphTask, the base of every task that calls the Graph API: which errors retry,
how long they wait, and when the task gives up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from unittest import mock

import pytest
from celery import shared_task
from celery.exceptions import Retry

from tests.support.polling import eventually
from webhooks.graph import GraphError
from webhooks.queue import Batches, Busy, GraphTask

runs: list[int] = []
given_up: list[tuple[int, str]] = []
script: Iterator[BaseException | None] = iter(())


class RecordingTask(GraphTask):
    def give_up(self, pk: int, /, *, reason: str) -> None:
        given_up.append((pk, reason))


@shared_task(base=RecordingTask, name="tests.webhooks.test_queue.scripted")
def scripted(pk: int) -> str:
    runs.append(pk)
    error = next(script)
    if error is not None:
        raise error
    return "done"


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    runs.clear()
    given_up.clear()
    yield


def play(*outcomes: BaseException | None) -> None:
    global script
    script = iter(outcomes)


def transient(**extra: object) -> GraphError:
    return GraphError(message="busy", code=2, retryable=True, **extra)  # type: ignore[arg-type]


def test_a_transient_error_is_retried_until_it_succeeds():
    play(transient(), transient(), None)
    result = scripted.apply(args=(7,))  # eager: retries run at once, without countdown
    assert runs == [7, 7, 7]
    assert given_up == []
    assert result.successful()


def test_after_graph_retry_max_retries_the_task_gives_up_once_with_the_last_reason(settings):
    settings.GRAPH_RETRY_MAX = 2
    play(
        transient(), transient(), GraphError(message="still down", http_status=503, retryable=True)
    )
    scripted.apply(args=(7,))
    assert runs == [7, 7, 7]  # the first run and two retries
    assert given_up == [(7, "the Graph API answered HTTP 503: still down")]


def test_a_terminal_error_is_not_retried_and_not_given_up():
    play(GraphError(message="bad token", code=190, retryable=False))
    result = scripted.apply(args=(7,))
    assert runs == [7]
    assert given_up == []
    assert result.failed()
    assert "code=190" in repr(result.result)  # the GraphError, as Celery keeps it


@pytest.mark.parametrize("uncertain", [False, True])
def test_an_uncertain_send_waits_long_enough_for_its_echo(settings, uncertain):
    settings.GRAPH_RETRY_BACKOFF_SECONDS = 0.001
    settings.GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS = 15
    play(transient(uncertain=uncertain))
    with mock.patch.object(scripted, "retry", side_effect=Retry()) as retry:
        scripted.apply(args=(7,))
    countdown = retry.call_args.kwargs["countdown"]
    assert (countdown >= 15) is uncertain
    assert 0 <= countdown <= (15 if uncertain else 0.001)


def test_busy_retries_in_about_a_second_and_is_never_given_up(settings):
    settings.GRAPH_RETRY_BACKOFF_SECONDS = 0.5
    play(Busy("another worker is sending it"))
    with mock.patch.object(scripted, "retry", side_effect=Retry()) as retry:
        scripted.apply(args=(7,))
    assert 1 <= retry.call_args.kwargs["countdown"] <= 1.5
    assert given_up == []


def test_a_call_another_worker_is_making_is_waited_for_and_never_given_up(settings):
    """CI's chaos run: a re-driven copy of a hand-back met the first copy's pass still in
    flight five times, gave up, and reopened a ticket whose conversation that very pass
    had given back to the bot."""
    settings.GRAPH_RETRY_MAX = 2
    settings.GRAPH_RETRY_BACKOFF_SECONDS = 0.5
    in_flight = GraphError(message="in flight", retryable=True, retry_in=12.0)
    play(in_flight, in_flight, in_flight, in_flight, None)
    result = scripted.apply(args=(7,))
    assert runs == [7] * 5  # beyond GRAPH_RETRY_MAX
    assert given_up == []
    assert result.successful()

    play(in_flight)
    with mock.patch.object(scripted, "retry", side_effect=Retry()) as retry:
        scripted.apply(args=(7,))
    assert 12 <= retry.call_args.kwargs["countdown"] <= 12.5


# --- Batches: one publish for the ids several commits stored --------------------------


def _blocked_task() -> tuple[mock.Mock, threading.Event, list[list[int]]]:
    """A task whose publish waits for `gate`; the ids of each publish, in order."""
    gate, published = threading.Event(), []
    task = mock.Mock()
    task.name = "tests.batches"

    def delay(ids: list[int]) -> None:
        gate.wait(30)
        published.append(list(ids))

    task.delay.side_effect = delay
    return task, gate, published


def test_ids_added_while_a_publish_runs_go_together_in_the_next(settings):
    settings.SIDE_EFFECTS_IN_BACKGROUND = True
    task, gate, published = _blocked_task()
    failed: list[list[int]] = []
    batches = Batches(task, on_failure=failed.append, gap=0)
    batches.add([1])
    eventually(lambda: task.delay.called, what="the first publish to start")
    batches.add([2, 3])
    batches.add([4])
    gate.set()
    eventually(lambda: len(published) == 2, what="the second publish")
    assert published == [[1], [2, 3, 4]]
    assert task.delay.call_count == 2 and failed == []


def test_a_refused_publish_hands_its_ids_to_on_failure_and_the_next_goes_on(settings):
    settings.SIDE_EFFECTS_IN_BACKGROUND = True
    task = mock.Mock()
    task.name = "tests.batches"
    task.delay.side_effect = [ConnectionError("broker down"), None]
    failed: list[list[int]] = []
    batches = Batches(task, on_failure=failed.append, gap=0, largest=2)
    batches.add([1, 2, 3])  # two tasks: [1, 2] refused, [3] sent
    eventually(lambda: task.delay.call_count == 2, what="both publishes")
    assert [c.args for c in task.delay.call_args_list] == [([1, 2],), ([3],)]
    eventually(lambda: failed == [[1, 2]], what="the refused ids handed on")
