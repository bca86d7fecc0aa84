"""Redis dies (SIGKILL) and comes back on the same port while the Celery worker holds a
task waiting for its retry's countdown: the worker survives, and the held work is done
once (issue 8, point 2).

Real processes: Redis, Daphne, the Celery worker and beat, the recording Graph fake (which
plays the bot: it passes the thread when asked).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from tests.support import payloads
from tests.support.fakegraph import Call, Scripted, graph_error
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack, fake_graph_stack

pytestmark = pytest.mark.e2e

REQUEST = "/me/request_thread_control"
# A Graph call that times out is retried no sooner than GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS:
# the retry's countdown keeps the task in the worker, unacknowledged, while Redis dies.
# Beat re-drives a pending request once it is REDRIVE_GRACE_SECONDS old: after the restart,
# so that what brings the work back is seen, not a re-drive before the kill.
ENV = {
    "GRAPH_API_TIMEOUT_SECONDS": "1",
    "GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS": "120",
    "REDRIVE_GRACE_SECONDS": "12",
}


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    with fake_graph_stack(tmp_path, **ENV) as stack:
        yield stack


def _worker_log(stack: Stack) -> str:
    return (stack.tmp / "worker.log").read_text()


def _worker_alive(stack: Stack) -> None:
    code = stack.processes["worker"].poll()
    assert code is None, f"the worker exited with code {code}:\n{_worker_log(stack)[-3000:]}"


def test_the_worker_survives_redis_killed_while_it_holds_a_retry(stack):
    fake, clock = stack.fake, Clock()
    token = stack.agent_token("ana")
    api = f"{stack.base_url}/api/v1"

    def bot_passes_control(call: Call) -> None:
        # The bot passes the thread when a request reaches it: not the one that timed out.
        if call.path == REQUEST and len(fake.calls_to(REQUEST)) > 1:
            threading.Thread(
                target=stack.post_webhook, args=(payloads.pass_control(ts=clock()),)
            ).start()

    fake.on_call.append(bot_passes_control)

    # given: the user asks for a human; the request for the thread times out (the fake
    # answers too late, with an error) ...
    fake.fail_next(REQUEST, replace(graph_error(2, status=503), delay=2.5))
    # Its outcome is unknown: Meta is asked who owns the thread before anything is made
    # again, and that answer is late too, so the task waits for its retry.
    fake.fail_next("/me/thread_owner", Scripted(200, {"data": []}, delay=2.5))
    stack.post_webhook(payloads.user_message("hello?", ts=clock()), channel="standby")
    stack.post_webhook(payloads.postback("Talk to a human", ts=clock()), channel="standby")
    # ... and its retry waits for its countdown in the worker, unacknowledged
    held = eventually(
        lambda: re.search(
            r"handover_request\[([0-9a-f-]+)\] retry: Retry in ([\d.]+)s", _worker_log(stack)
        ),
        what="the request's retry",
    )
    assert float(held.group(2)) >= 120
    eventually(
        lambda: _worker_log(stack).count(f"handover_request[{held.group(1)}] received") == 2,
        what="the retry received by the worker",
    )
    assert len(fake.calls_to(REQUEST)) == 1

    # when: Redis is killed, and comes back (empty) on the same port
    stack.kill_redis()
    eventually(
        lambda: "Connection to broker lost" in _worker_log(stack), what="the worker noticing"
    )
    time.sleep(1)
    stack.start_redis()

    # then: the same worker process reconnects ...
    def reconnected() -> bool:
        _worker_alive(stack)
        return _worker_log(stack).count("Connected to redis") == 2

    eventually(reconnected, timeout=45, what="the worker reconnected")
    # ... the held work is done, once: its message went with Redis's data and the worker
    # dropped its copy on reconnecting; beat re-drives the conversation still `requested`,
    # and the worker consumes that and the bot's answer (a new webhook delivery)
    tickets = eventually(
        lambda: requests.get(
            f"{api}/tickets", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json(),
        timeout=45,
        what="the ticket the bot's answer opens",
    )
    assert [(t["status"], t["control_state"]) for t in tickets] == [("waiting", "agent")]
    time.sleep(3)  # beat re-drives every second: nothing may be asked twice
    assert len(fake.calls_to(REQUEST)) == 2  # the one that timed out, then the one answered
    _worker_alive(stack)
    log = _worker_log(stack)
    assert "Unrecoverable error" not in log
    assert log.count(f"handover_request[{held.group(1)}] succeeded") == 0  # never ran again
    assert stack.processes["beat"].poll() is None
