"""`/healthz` and `/readyz` on a real Daphne with production settings: what a load
balancer, a Compose healthcheck or a systemd watchdog asks (deploy/)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from helpdesk.localservices import free_port
from tests.support.polling import eventually
from tests.support.stack import Stack, daphne_start, fake_graph_stack

pytestmark = pytest.mark.e2e

# Production's https redirect on, and a public host name only: a probe on the process's
# own address must still be answered, without a redirect or a 400.
ENV = {"SECURE_SSL_REDIRECT": "1", "ALLOWED_HOSTS": "helpdesk.example.com"}


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    with fake_graph_stack(tmp_path, **ENV) as stack:
        yield stack


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str] | str, str]:
    response = requests.request(method, url, timeout=15, allow_redirects=False)
    body = response.json() if response.content else ""
    return response.status_code, body, response.headers.get("Cache-Control", "")


def _log(stack: Stack, name: str = "daphne") -> str:
    return (stack.tmp / f"{name}.log").read_text()


def test_both_answer_a_probe_on_the_process_address_with_only_a_status(stack):
    assert _get(f"{stack.base_url}/healthz") == (200, {"status": "ok"}, "no-store")
    assert _get(f"{stack.base_url}/readyz") == (200, {"status": "ready"}, "no-store")
    # HEAD, as some balancers probe: the status without a body
    assert _get(f"{stack.base_url}/readyz", "HEAD") == (200, "", "no-store")
    # anything else is refused, and changes nothing
    response = requests.post(f"{stack.base_url}/readyz", timeout=15)
    assert (response.status_code, response.headers["Allow"]) == (405, "GET, HEAD")
    # the rest of the site is still behind the https redirect and the host check
    assert requests.get(f"{stack.base_url}/login/", timeout=15).status_code == 400


def test_readyz_fails_while_redis_is_down_and_recovers_when_it_is_back(stack):
    stack.kill_redis()
    # healthz is about the process: still up
    assert _get(f"{stack.base_url}/healthz")[:2] == (200, {"status": "ok"})
    assert _get(f"{stack.base_url}/readyz")[:2] == (503, {"status": "unavailable"})
    log = _log(stack)
    assert "readyz: Redis is not answering" in log
    assert "readyz: the channel layer is not answering" in log
    assert "readyz: the database is not answering" not in log
    assert stack.env["REDIS_URL"] not in log  # no address (nor a password in it) logged

    stack.start_redis()
    eventually(
        lambda: _get(f"{stack.base_url}/readyz")[:2] == (200, {"status": "ready"}),
        timeout=60,
        what="readyz ready again once Redis is back",
    )


def test_readyz_fails_when_the_database_does_not_answer(stack):
    # A second Daphne of the same deployment whose database is out of reach (a closed
    # port on loopback): up, not ready.
    port = free_port()
    unreachable = f"postgres://helpdesk:secret-in-url@127.0.0.1:{free_port()}/helpdesk"
    stack.env = {**stack.env, "DATABASE_URL": unreachable}
    daphne_start(stack, "daphne-nodb", port)
    base = f"http://127.0.0.1:{port}"
    assert _get(f"{base}/healthz")[:2] == (200, {"status": "ok"})
    assert _get(f"{base}/readyz")[:2] == (503, {"status": "unavailable"})
    eventually(lambda: "readyz:" in _log(stack, "daphne-nodb"), what="the reason in the log")
    log = _log(stack, "daphne-nodb")
    assert re.findall(r"readyz: (.+?) is not answering", log) == ["the database"]
    assert "secret-in-url" not in log
    # the healthy process beside it is unaffected
    assert _get(f"{stack.base_url}/readyz")[:2] == (200, {"status": "ready"})
