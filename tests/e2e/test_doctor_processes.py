"""The doctor page's checks of the processes, with real ones: Redis, a Celery worker
and beat, each stopped in turn (agents.services.doctor; the page checks, against the
emulator, are in tests/agents/test_doctor.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.polling import eventually
from tests.support.stack import Stack, fake_graph_stack

pytestmark = pytest.mark.e2e

# What the doctor page computes, from a process of the deployment (its environment).
SYSTEM = (
    "import json; from agents.services import doctor; "
    "print(json.dumps({c.name: [c.status.value, c.verdict] for c in doctor.system_checks()}))"
)


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    with fake_graph_stack(tmp_path) as stack:
        yield stack


def _system(stack: Stack) -> dict[str, list[str]]:
    answer: dict[str, list[str]] = json.loads(stack.manage("shell", "-c", SYSTEM).splitlines()[-1])
    return answer


def _statuses(stack: Stack) -> dict[str, str]:
    return {name: status for name, (status, _) in _system(stack).items()}


def _forget_the_tick(stack: Stack) -> None:
    stack.manage(
        "shell", "-c", "from django.core.cache import cache; cache.delete('doctor:heartbeat')"
    )


def test_the_doctor_sees_each_process_stop(stack):
    # given: everything runs, and beat has ticked once through a worker
    healthy = {
        "Graph API version": "ok",
        "Webhook deliveries": "ok",
        "Database": "ok",
        "Redis": "ok",
        "Channel layer": "ok",
        "Celery workers": "ok",
        "Celery beat": "ok",
    }
    eventually(lambda: _statuses(stack) == healthy, timeout=60, what="every check ok")
    assert _system(stack)["Celery workers"][1].startswith("1 answered: worker@")

    # when the worker stops: no one answers, and beat's tick cannot be run to tell
    stack.processes["worker"].kill()
    stack.processes["worker"].wait()
    _forget_the_tick(stack)
    checks = _system(stack)
    assert checks["Celery workers"] == [
        "failing",
        "No worker answered: webhooks are stored but not applied, and replies are not sent.",
    ]
    assert checks["Celery beat"] == [
        "unknown",
        "Beat has not ticked yet, but no worker runs its ticks to tell.",
    ]

    # when beat stops (the worker back): its tick grows old
    stack.respawn("worker")
    stack.processes["beat"].kill()
    stack.processes["beat"].wait()
    stack.manage(
        "shell", "-c", "from django.core.cache import cache; cache.delete('doctor:heartbeat')"
    )
    eventually(
        lambda: _statuses(stack)["Celery workers"] == "ok", timeout=60, what="the worker back"
    )
    # never ticked (beat may have just started): a warning; ticked long ago: failing
    status, verdict = _system(stack)["Celery beat"]
    assert (status, verdict.split(" (")[0]) == ("warning", "Beat has not ticked yet")
    stack.manage(
        "shell",
        "-c",
        "import time; from django.core.cache import cache; "
        "cache.set('doctor:heartbeat', time.time() - 600, timeout=None)",
    )
    status, verdict = _system(stack)["Celery beat"]
    assert (status, verdict.split(" (")[0]) == ("failing", "Beat last ticked 10 minutes ago")

    # when Redis stops: Redis, the channel layer, and what is asked through it
    stack.kill_redis()
    checks = _statuses(stack)
    assert {k: checks[k] for k in ("Database", "Redis", "Channel layer")} == {
        "Database": "ok",
        "Redis": "failing",
        "Channel layer": "failing",
    }
    assert checks["Celery workers"] in ("unknown", "failing")
    assert checks["Celery beat"] == "unknown"
