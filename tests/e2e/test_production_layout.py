"""The production layout, without containers: two Daphne processes behind a reverse
proxy, two Celery workers, one Celery beat, PostgreSQL and Redis, the processes the
deploy/ recipe runs (deploy/docker-compose.yml; deploy/systemd/ on hosts without
Docker), each a real process here. Meta is the project's Messenger Platform emulator:
its demo bot is the page's primary app, the helpdesk the secondary receiver.

What it proves: the handover story goes through that layout while one Daphne (A) and
one worker (1) die by `kill -9` in the middle, and nothing is lost or doubled. The
customer reads every agent reply once and in order, the helpdesk stores every customer
message once and in order, the Send API is called once per reply, the ticket closes and
the bot has the conversation back; the killed processes, started again, find nothing
left to do.

The kill comes right after Daphne A answered 200 to a customer's webhook, a moment
after A accepted the agent's reply (201): the webhook's task and the reply's may both be
on their way. Worker 1 is frozen (SIGSTOP) just before that reply, so whatever Redis
hands it from then on dies with it unstarted, and no send is cut off half-way through
its Send API call (such a send may have reached Meta: it waits for its echo, else fails
as "may not have been delivered" for the agent to retry; the chaos test counts those, a
story cannot assert them exactly). Beat re-drives what was lost; REDRIVE_LEASE_SECONDS
is the chaos run's 15 (production: 150), so that it does within the test's patience.

The proxy is a round-robin forwarder in this process. The emulator POSTs webhooks to it
and it sends each to the next live Daphne; the agent's reads alternate between the
Daphnes on their own turns; the story's writes name their Daphne (the claim and the
first reply on A, the rest on B). The killed Daphne leaves the rotation at once, as a
proxy's health check would take it out, and comes back once it listens again.
"""

from __future__ import annotations

import http.client
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from helpdesk.localservices import free_port, wait_for_port
from tests.chaos.database import Database
from tests.support import payloads
from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.polling import eventually
from tests.support.stack import Stack, daphne_port, daphne_start, emulator_stack
from webhooks.emulator import Emulator

ON_POSTGRESQL = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not ON_POSTGRESQL,
        reason="the production layout runs on PostgreSQL (the chaos test runs these "
        "processes on SQLite too)",
    ),
]

DAPHNE_A, DAPHNE_B = "daphne", "daphne-b"  # A is the stack's own
WORKER_1, WORKER_2 = "worker", "worker-2"  # worker 1 is the stack's own
PATIENCE = 60.0  # seconds: what a slow, shared machine may need; never a budget
# Headers that belong to one hop, which a proxy does not pass on.
HOP_BY_HOP = {"connection", "content-length", "host", "keep-alive", "transfer-encoding"}

CUSTOMER = [
    "My parcel 4417 never arrived.",
    "It was due on Monday.",
    "The tracking page says delivered.",  # Daphne A's last webhook: the kill follows
    "But there is nothing at my door.",
    "Can you send it again?",
]
REPLIES = [
    "Hi, I'm Ana. Let me check parcel 4417.",  # through Daphne A, just before the kill
    "The courier left it at their depot.",
    "I have asked them to bring it again.",
    "It will be with you tomorrow morning.",
]


class Proxy:
    """The reverse proxy, as little of it as the story needs: webhook POSTs forwarded
    round-robin to the live Daphnes (a Daphne that cannot be reached answers 502, and
    Meta sends the webhook again), `api()` the same rotation for the agent's reads."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.live = list(ports)
        # Each webhook POST: (the Daphne it went to, its status, whether it sprang the trap).
        self.log: list[tuple[str, int, bool]] = []
        # Webhooks and reads take turns apart: Meta posts one app's webhooks one at a
        # time, so they alternate exactly whatever the agent reads meanwhile.
        self._turns = {"webhooks": itertools.count(), "reads": itertools.count()}
        self._lock = threading.Lock()
        self._trap: tuple[bytes, str, Callable[[], None]] | None = None
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                proxy._forward(self)

        self.server = LoopbackServer(Handler)

    def url(self, path: str) -> str:
        return self.server.url(path)

    def next_upstream(self, kind: str) -> str:
        with self._lock:
            return self.live[next(self._turns[kind]) % len(self.live)]

    def api(self) -> str:
        """The API's base URL on the next live Daphne."""
        return f"http://127.0.0.1:{self.ports[self.next_upstream('reads')]}/api/v1"

    def take_out(self, name: str) -> None:
        with self._lock:
            self.live.remove(name)

    def put_back(self, name: str) -> None:
        with self._lock:
            self.live.append(name)

    def trap(self, marker: bytes, upstream: str, then: Callable[[], None]) -> None:
        """The next webhook whose body holds `marker` goes to `upstream`; once that
        answers 200, `then` runs before the 200 is passed on to Meta."""
        with self._lock:
            self._trap = (marker, upstream, then)

    def _forward(self, handler: QuietHandler) -> None:
        body = handler.body()
        with self._lock:
            trap = self._trap if self._trap is not None and self._trap[0] in body else None
        upstream = trap[1] if trap is not None else self.next_upstream("webhooks")
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection("127.0.0.1", self.ports[upstream], timeout=30)
        try:
            connection.request("POST", handler.path, body=body, headers=headers)
            response = connection.getresponse()
            status, answer = response.status, response.read()
            content_type = response.getheader("Content-Type")
        except (OSError, http.client.HTTPException):
            status, answer, content_type = 502, b"Bad Gateway", "text/plain"
        finally:
            connection.close()
        sprung = trap is not None and status == 200
        if trap is not None and sprung:
            with self._lock:
                self._trap = None
            trap[2]()
        with self._lock:
            self.log.append((upstream, status, sprung))
        handler.reply(status, answer, content_type)


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Emulator, Stack, Proxy]]:
    """The emulator, and the helpdesk's processes in production's layout behind the
    forwarder: Daphne A and B, worker 1 and 2, beat, Redis, a fresh PostgreSQL database."""
    with emulator_stack(tmp_path, REDRIVE_LEASE_SECONDS="15") as (emulator, stack):
        ports = {DAPHNE_A: daphne_port(stack), DAPHNE_B: free_port()}
        daphne_start(stack, DAPHNE_B, ports[DAPHNE_B])
        stack.spawn_worker(WORKER_2)
        proxy = Proxy(ports)
        proxy.server.start()
        try:
            emulator.set_callback_url(payloads.APP_ID, proxy.url("/webhooks/messenger/"))
            yield emulator, stack, proxy
        finally:
            proxy.server.stop()


def _kill_9(stack: Stack, name: str) -> None:
    process = stack.processes[name]
    process.kill()
    process.wait()


def _get(url: str, auth: dict[str, str], **params: Any) -> Any:
    response = requests.get(url, params=params, headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _post(url: str, auth: dict[str, str], body: dict[str, Any] | None = None, *, ok: int) -> Any:
    response = requests.post(url, json=body, headers=auth, timeout=30)
    assert response.status_code == ok, (response.status_code, response.text)
    return response.json()


def test_the_handover_story_survives_a_daphne_and_a_worker_killed(
    layout: tuple[Emulator, Stack, Proxy],
) -> None:
    emulator, stack, proxy = layout
    auth = {"Authorization": f"Bearer {stack.agent_token('ana')}"}
    api_a = f"http://127.0.0.1:{proxy.ports[DAPHNE_A]}/api/v1"
    api_b = f"http://127.0.0.1:{proxy.ports[DAPHNE_B]}/api/v1"
    psid = emulator.user_create("Grace", "Hopper").psid

    def history() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = _get(
            f"{proxy.api()}/tickets/{ticket_id}/messages", auth, limit=200
        )
        return messages

    def customer_texts() -> list[str]:
        return [m["text"] for m in history() if m["author_kind"] == "customer"]

    def agent_replies() -> list[tuple[str, str]]:
        return [(m["text"], m["status"]) for m in history() if m["author_kind"] == "agent"]

    def replies_sent(count: int) -> None:
        """Wait until the agent sees their first `count` replies sent, in order."""
        eventually(
            lambda: agent_replies() == [(text, "sent") for text in REPLIES[:count]],
            timeout=PATIENCE,
            what=lambda: f"{count} replies sent; the agent sees {agent_replies()}",
        )

    def customer_sees() -> list[tuple[str, str]]:
        """The agent's messages on the customer's side: text, and the helpdesk's
        metadata naming the stored message."""
        return [
            (m["text"], m["metadata"])
            for m in emulator.transcript(psid)
            if m.get("author") == "agent"
        ]

    # The customer talks to the bot, then asks for a person: the helpdesk sees it on
    # standby, requests the thread, the bot passes it, and a ticket waits.
    emulator.user_says(psid, "hello")
    greeting = eventually(
        lambda: [m for m in emulator.transcript(psid) if m["author"] == "bot"],
        timeout=PATIENCE,
        what="the bot's greeting",
    )[-1]
    emulator.user_taps_button(psid, greeting["mid"], 0)
    [ticket] = eventually(
        lambda: _get(f"{proxy.api()}/tickets", auth, status="waiting"),
        timeout=PATIENCE,
        what="a waiting ticket",
    )
    ticket_id = ticket["id"]
    assert (ticket["status"], ticket["control_state"], ticket["contact"]["psid"]) == (
        "waiting",
        "agent",
        psid,
    )
    assert emulator.owner(psid) == payloads.APP_ID

    # The agent claims it on Daphne A; the customer writes more.
    claimed = _post(f"{api_a}/tickets/{ticket_id}/claim", auth, ok=200)
    assert (claimed["status"], claimed["assignee"]["username"]) == ("open", "ana")
    for text in CUSTOMER[:2]:
        emulator.user_says(psid, text)
    eventually(
        lambda: customer_texts() == ["hello", "Talk to a human", *CUSTOMER[:2]],
        timeout=PATIENCE,
        what="the customer's first two messages in the ticket",
    )

    # Worker 1 freezes; the agent's first reply is accepted by Daphne A; the customer's
    # next webhook goes to Daphne A, and as soon as A has answered it 200, A and worker
    # 1 die (kill -9) and A leaves the proxy's rotation.
    killed = threading.Event()

    def kill_a_and_worker_1() -> None:
        _kill_9(stack, DAPHNE_A)
        proxy.take_out(DAPHNE_A)
        _kill_9(stack, WORKER_1)
        killed.set()

    proxy.trap(CUSTOMER[2].encode(), DAPHNE_A, kill_a_and_worker_1)
    os.kill(stack.processes[WORKER_1].pid, signal.SIGSTOP)
    first = _post(f"{api_a}/tickets/{ticket_id}/reply", auth, {"text": REPLIES[0]}, ok=201)
    emulator.user_says(psid, CUSTOMER[2])
    eventually(killed.is_set, timeout=PATIENCE, what="Daphne A answering the third message")

    # From here on only Daphne B and worker 2 run. The customer goes on writing; what
    # died with worker 1 is re-driven by beat. The agent replies through Daphne B, each
    # reply once the one before is sent (separate replies are separate tasks: the
    # outbox does not order them), and closes.
    emulator.user_says(psid, CUSTOMER[3])
    ids = [first["id"]]
    replies_sent(1)
    for n, text in enumerate(REPLIES[1:], start=2):
        if n == 3:
            emulator.user_says(psid, CUSTOMER[4])
        reply = _post(f"{api_b}/tickets/{ticket_id}/reply", auth, {"text": text}, ok=201)
        ids.append(reply["id"])
        replies_sent(n)
    eventually(
        lambda: customer_texts() == ["hello", "Talk to a human", *CUSTOMER],
        timeout=PATIENCE,
        what=lambda: f"every customer message, once, in order; stored: {customer_texts()}",
    )
    closed = _post(f"{api_b}/tickets/{ticket_id}/close", auth, {"outcome": "resolved"}, ok=200)
    assert closed["status"] == "closed"
    eventually(
        lambda: emulator.owner(psid) == payloads.BOT_APP_ID,
        timeout=PATIENCE,
        what="control back with the bot",
    )
    eventually(
        lambda: _get(f"{api_b}/tickets/{ticket_id}", auth)["control_state"] == "bot",
        timeout=PATIENCE,
        what="the helpdesk seeing the bot has it",
    )

    # The killed processes start again; Daphne A rejoins the rotation once it listens.
    # The customer talks to the bot again, through both Daphnes.
    stack.respawn(DAPHNE_A)
    stack.respawn(WORKER_1)
    wait_for_port(proxy.ports[DAPHNE_A], timeout=PATIENCE)
    back_at = len(proxy.log)
    proxy.put_back(DAPHNE_A)
    emulator.user_says(psid, "what are your opening hours?")
    eventually(
        lambda: emulator.transcript(psid)[-1]["author"] == "bot",
        timeout=PATIENCE,
        what="the bot answering again",
    )
    database = Database(stack.env["DATABASE_URL"])

    def deliveries() -> list[tuple[Any, ...]]:
        return database.rows(
            "SELECT status, count(*) FROM webhooks_webhookdelivery GROUP BY status"
        )

    eventually(
        lambda: emulator.wait_idle(timeout=1) and deliveries() == [("processed", len(proxy.log))],
        timeout=PATIENCE,
        what=lambda: f"every stored delivery processed: {deliveries()}",
    )
    time.sleep(3)  # beat re-drives every second: a lost copy of anything would go out now

    # The customer read every reply once, in order, each the message the helpdesk stored.
    assert customer_sees() == [
        (text, f"helpdesk:message={pk}") for text, pk in zip(REPLIES, ids, strict=True)
    ]
    # The helpdesk stored every customer message once, in order (the last, to the bot
    # after the close, folded as context like the first two), and every reply sent.
    assert [(m["text"], m["context"]) for m in history() if m["author_kind"] == "customer"] == [
        ("hello", True),
        ("Talk to a human", True),
        *((text, False) for text in CUSTOMER),
        ("what are your opening hours?", True),
    ]
    assert agent_replies() == [(text, "sent") for text in REPLIES]
    # The helpdesk's Graph calls: one request, the profile, the agent's persona, one
    # Send API call per reply, one pass; nothing doubled, nothing refused (the bot's too).
    assert sorted(
        (c["method"], c["path"], c["status"])
        for c in emulator.graph_calls
        if c["app_id"] == payloads.APP_ID
    ) == sorted(
        [
            ("POST", "/me/request_thread_control", 200),
            ("GET", f"/{psid}", 200),
            ("POST", "/me/personas", 200),
            *[("POST", "/me/messages", 200)] * len(REPLIES),
            ("POST", "/me/pass_thread_control", 200),
        ]
    )
    assert [c for c in emulator.graph_calls if c["status"] != 200] == []
    # The ticket is closed and the bot has the conversation, seen from either Daphne.
    assert emulator.owner(psid) == payloads.BOT_APP_ID
    for api in (api_a, api_b):
        final = _get(f"{api}/tickets/{ticket_id}", auth)
        assert (final["status"], final["control_state"]) == ("closed", "bot")
        assert [t["id"] for t in _get(f"{api}/tickets", auth, queue="closed")] == [ticket_id]
        assert _get(f"{api}/tickets", auth, queue="all_open") == []
    # Every webhook was answered 200 and acknowledged; A got webhooks before the kill
    # (the last one the trap's) and none until it was back; B got the ones in between.
    assert {status for _, status, _ in proxy.log} == {200}
    [kill_at] = [n for n, (_, _, sprung) in enumerate(proxy.log) if sprung]
    assert proxy.log[kill_at][0] == DAPHNE_A
    assert {name for name, _, _ in proxy.log[:kill_at]} == {DAPHNE_A, DAPHNE_B}
    assert {name for name, _, _ in proxy.log[kill_at + 1 : back_at]} == {DAPHNE_B}
    assert DAPHNE_A in {name for name, _, _ in proxy.log[back_at:]}
    assert {d.status for d in emulator.deliveries(payloads.APP_ID)} == {"delivered"}
    # The processes that were killed run again; none exited by itself.
    assert {name: p.poll() for name, p in stack.processes.items()} == dict.fromkeys(stack.processes)
