"""Redis dies (SIGKILL) and comes back on the same port while the Celery worker holds a
task waiting for its retry's countdown: the worker survives, and the held work is done
once (issue 8, point 2).

Real processes: Redis, Daphne, the Celery worker and beat, the recording Graph fake.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from tests.support import payloads
from tests.support.fakegraph import graph_error
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack, fake_graph_stack

pytestmark = pytest.mark.e2e

# A send that times out is retried no sooner than GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS: the
# retry's countdown keeps the message in the worker, unacknowledged, while Redis dies.
# Beat re-drives a pending message once it is REDRIVE_GRACE_SECONDS old: later than the
# restart, so that what brings the work back is seen, not a re-drive before the kill.
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
    ana = {"Authorization": f"Bearer {token}"}
    api = f"{stack.base_url}/api/v1"
    stack.post_webhook(payloads.user_message("hello?", ts=clock()), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), metadata="help"))
    [ticket] = eventually(
        lambda: requests.get(f"{api}/tickets", headers=ana, timeout=5).json(), what="a ticket"
    )
    url = f"{api}/tickets/{ticket['id']}"
    assert requests.post(f"{url}/claim", headers=ana, timeout=10).status_code == 200

    def reply_status(reply_id: int) -> str:
        messages = requests.get(f"{url}/messages", headers=ana, timeout=5).json()
        [reply] = [m for m in messages if m["id"] == reply_id]
        return reply["status"]

    def sends_of(text: str) -> list:
        return [c for c in fake.sends() if c.body.get("message", {}).get("text") == text]

    # given: the reply's first send times out (the fake answers too late, with an error)
    fake.fail_next("/me/messages", replace(graph_error(2, status=503), delay=2.5))
    reply = requests.post(f"{url}/reply", json={"text": "held"}, headers=ana, timeout=10)
    assert reply.status_code == 201, reply.text
    reply_id = reply.json()["id"]
    # ... and its retry waits for its countdown in the worker, unacknowledged
    held = eventually(
        lambda: re.search(
            r"message_send\[([0-9a-f-]+)\] retry: Retry in ([\d.]+)s", _worker_log(stack)
        ),
        what="the send's retry",
    )
    assert float(held.group(2)) >= 120
    eventually(
        lambda: _worker_log(stack).count(f"message_send[{held.group(1)}] received") == 2,
        what="the retry received by the worker",
    )
    assert (len(sends_of("held")), reply_status(reply_id)) == (1, "pending")

    # when: Redis is killed, and comes back (empty) on the same port
    stack.kill_redis()
    eventually(
        lambda: "Connection to broker lost" in _worker_log(stack),
        what="the worker noticing",
    )
    time.sleep(1)
    stack.start_redis()

    # then: the same worker process reconnects and consumes new tasks
    def reconnected() -> bool:
        _worker_alive(stack)
        return _worker_log(stack).count("Connected to redis") == 2

    eventually(reconnected, timeout=45, what="the worker reconnected")
    after = requests.post(f"{url}/reply", json={"text": "after"}, headers=ana, timeout=10)
    assert after.status_code == 201
    eventually(
        lambda: reply_status(after.json()["id"]) == "sent",
        timeout=45,
        what="a reply written after the restart sent",
    )
    # ... and the held work is done, once: the message was lost with Redis's data and the
    # worker dropped its copy on reconnecting; beat re-drives the pending row
    eventually(lambda: reply_status(reply_id) == "sent", timeout=45, what="the held reply sent")
    time.sleep(3)  # beat re-drives every second: nothing may be sent twice
    assert len(sends_of("held")) == 2  # the timed-out attempt, then the one that was sent
    assert len(sends_of("after")) == 1
    _worker_alive(stack)
    log = _worker_log(stack)
    assert "Unrecoverable error" not in log
    assert stack.processes["beat"].poll() is None
