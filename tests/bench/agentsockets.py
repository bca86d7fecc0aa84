"""What the `sockets` and `latency` scenarios share: the real stack against the
recording Graph fake, agents' inbox sockets held open from one asyncio loop, and a small
keep-alive HTTP client for that loop (no thread per request: the bench process itself
must not be what limits the figures)."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake

from tests.bench.figures import Options
from tests.e2e.test_several_daphnes import _login
from tests.support import payloads
from tests.support.fakegraph import Call, FakeGraph
from tests.support.stack import Stack, daphne_port


@contextmanager
def bench_stack(options: Options, **env: str) -> Iterator[Stack]:
    """Redis, Daphne, a Celery worker and beat on the scenario's database, the Graph API
    being the recording fake (`stack.fake`), whose calls are time-stamped on arrival
    (`stack.graph_times`: (time.monotonic(), call))."""
    raise_fd_limit()
    # Production's re-drive timing, not the tests' 1 s: under a backlog, a re-drive
    # every second of every delivery still queued would process each several times.
    env = {"REDRIVE_INTERVAL_SECONDS": "30", "REDRIVE_GRACE_SECONDS": "60", **env}
    fake = FakeGraph().start()
    times: list[tuple[float, Call]] = []
    answer = fake.answer

    def stamped(call: Call) -> Any:
        times.append((time.monotonic(), call))
        return answer(call)

    fake.answer = stamped  # type: ignore[method-assign]
    stack = Stack(
        tmp=options.tmp,
        graph_url=fake.url,
        settings=env,
        # "" is a SQLite file; a PostgreSQL server's URL gets a fresh database on it.
        database_server_url=options.database_url or "",
    )
    stack.fake = fake  # type: ignore[attr-defined]
    stack.graph_times = times  # type: ignore[attr-defined]
    try:
        stack.start()
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()
        fake.stop()


def raise_fd_limit() -> None:
    """Soft file-descriptor limit up to the hard one: a thousand sockets and more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_mb(pid: int) -> float:
    """A process's resident set size (Linux /proc), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def sessions(stack: Stack, agents: int) -> list[str]:
    """Session cookies of `agents` new agents, logged in through the login form (the way
    the inbox's socket authenticates)."""
    cookies = []
    for number in range(agents):
        name = f"bench{number}"
        stack.agent_token(name)
        cookies.append(_login(stack.base_url, name))
    return cookies


@dataclass
class Socket:
    """An agent's inbox socket; every event it receives is kept with its arrival time."""

    connection: ClientConnection
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async for raw in self.connection:
            frame = json.loads(raw)
            at = time.monotonic()
            # One event, or several in their order: {"events": [...]}.
            self.events.extend((at, event) for event in frame.get("events", [frame]))
            self.changed.set()

    async def wait_for(self, match: Any, *, since: int = 0, timeout: float = 30.0) -> float:
        """The arrival time of the first event from index `since` on that matches."""
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for at, event in self.events[seen:]:
                if match(event):
                    return at
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching event in {timeout} s; got {self.events[since:]}")
            self.changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    async def close(self) -> None:
        await self.connection.close()
        if self.reader is not None:
            await self.reader


async def open_socket(stack: Stack, cookie: str) -> Socket:
    port = daphne_port(stack)
    connection = await connect(
        f"ws://127.0.0.1:{port}/ws/inbox/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": f"sessionid={cookie}"},
        proxy=None,
        open_timeout=30,
        # No protocol pings: as idle as an agent's background tab.
        ping_interval=None,
        max_queue=None,
    )
    socket = Socket(connection)
    socket.reader = asyncio.create_task(socket._read())
    return socket


async def open_sockets(
    stack: Stack, cookies: list[str], count: int, *, at_once: int = 10
) -> list[Socket]:
    """`count` sockets, the agents' sessions taken in turn, `at_once` opening at a time."""
    gate = asyncio.Semaphore(at_once)

    async def one(number: int) -> Socket:
        async with gate:
            for attempt in range(3):
                try:
                    return await open_socket(stack, cookies[number % len(cookies)])
                except (InvalidHandshake, OSError, TimeoutError):
                    # Daphne gives up a handshake the app did not accept within 5 s
                    # (a busy sync thread): the inbox reconnects, and so do we.
                    if attempt == 2:
                        raise
                    await asyncio.sleep(1)
            raise AssertionError("unreachable")

    return list(await asyncio.gather(*(one(n) for n in range(count))))


class Refused(RuntimeError):
    """A request the helpdesk did not accept (e.g. a 500 while SQLite was locked)."""

    def __init__(self, status: int, answer: bytes) -> None:
        super().__init__(f"answered {status} {answer[:200]!r}")
        self.status = status


class WebhookRefused(Refused):
    """A webhook delivery not acknowledged: Meta would deliver it again."""


class Http:
    """One keep-alive HTTP/1.1 connection to Daphne, for an asyncio loop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        head.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            self.writer = None
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            data = b""
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                data += await self.reader.readexactly(size + 2)
                data = data[:-2]
            await self.reader.readline()
        else:
            data = await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.writer = None
        return status, data

    async def post_webhook(self, *events: dict[str, Any], channel: str = "messaging") -> None:
        body = payloads.body_bytes(payloads.delivery(*events, channel=channel))
        status, answer = await self.request(
            "POST",
            "/webhooks/messenger/",
            body,
            {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.signature(body)},
        )
        if (status, answer) != (200, b"EVENT_RECEIVED"):
            raise WebhookRefused(status, answer)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class HttpPool:
    """Up to `size` keep-alive connections, each used by one request at a time."""

    def __init__(self, port: int, size: int) -> None:
        self.idle: asyncio.Queue[Http] = asyncio.Queue()
        self.all = [Http(port) for _ in range(size)]
        for connection in self.all:
            self.idle.put_nowait(connection)

    async def take(self) -> Http:
        return await self.idle.get()

    def give(self, connection: Http) -> None:
        self.idle.put_nowait(connection)

    def close(self) -> None:
        for connection in self.all:
            connection.close()
