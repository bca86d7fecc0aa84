"""A webhook load generator: signed one-event standby deliveries with unique mids, sent
over keep-alive HTTP/1.1 connections from several processes (one Python process could
not load a fast endpoint on its own). Each delivery's digest is kept with its answer,
so that what was acknowledged can be compared with what was stored."""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import time
from dataclasses import dataclass, field

from tests.support import payloads


@dataclass
class Outcome:
    acked: list[str] = field(default_factory=list)  # digests answered 200
    refused: dict[int, int] = field(default_factory=dict)  # other statuses: how many
    errors: int = 0  # connections that broke (a server killed mid-request)
    latencies_ms: list[float] = field(default_factory=list)  # of the 200s
    acked_at: list[float] = field(default_factory=list)  # time.monotonic() of each 200
    seconds: float = 0.0

    def merge(self, other: Outcome) -> None:
        self.acked += other.acked
        for status, count in other.refused.items():
            self.refused[status] = self.refused.get(status, 0) + count
        self.errors += other.errors
        self.latencies_ms += other.latencies_ms
        self.acked_at += other.acked_at
        self.seconds = max(self.seconds, other.seconds)


def bodies(prefix: str, count: int, *, ts: int) -> list[bytes]:
    """`count` deliveries whose mids and texts are unique (prefix them per run)."""
    return [
        payloads.body_bytes(
            payloads.delivery(
                payloads.user_message(
                    f"load {prefix} {n}",
                    ts=ts + n,
                    psid=f"39{n % 5000:014d}",
                    mid=f"m_load_{prefix}_{n}",
                ),
                channel="standby",
            )
        )
        for n in range(count)
    ]


def _request(port: int, body: bytes) -> bytes:
    return (
        b"POST /webhooks/messenger/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Content-Type: application/json\r\nX-Hub-Signature-256: %s\r\n"
        b"Content-Length: %d\r\n\r\n" % (port, payloads.signature(body).encode(), len(body))
    ) + body


async def _connection(port: int, work: list[bytes], deadline: float, outcome: Outcome) -> None:
    reader = writer = None
    while work and time.monotonic() < deadline:
        body = work.pop()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(_request(port, body))
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            close = False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif name.strip().lower() == b"connection" and b"close" in value.lower():
                    close = True
            await reader.readexactly(length)
            if status == 200:
                outcome.acked.append(hashlib.sha256(body).hexdigest())
                outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
                outcome.acked_at.append(time.monotonic())
            else:
                outcome.refused[status] = outcome.refused.get(status, 0) + 1
            if close:
                writer.close()
                reader = writer = None
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            # A killed server: the body goes back, to be sent again (as Meta would, byte
            # for byte) once a server answers.
            outcome.errors += 1
            work.append(body)
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.1)
    if writer is not None:
        writer.close()


def _process(port: int, work: list[bytes], connections: int, seconds: float, queue: object) -> None:
    outcome = Outcome()

    async def main() -> None:
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(
            *(_connection(port, work, deadline, outcome) for _ in range(connections))
        )
        outcome.seconds = time.monotonic() - started

    asyncio.run(main())
    queue.put(outcome)  # type: ignore[attr-defined]


def post_load(
    port: int,
    work: list[bytes],
    *,
    connections: int = 32,
    processes: int = 2,
    seconds: float = 10.0,
) -> Outcome:
    """Send `work` (signed bodies) to the webhook on `port` from `processes` processes
    sharing `connections` keep-alive connections, until it is all answered or `seconds`
    passed. A connection that breaks is opened again and its body sent again (each
    break counts as an error)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    shares = [work[n::processes] for n in range(processes)]
    children = [
        context.Process(
            target=_process, args=(port, share, connections // processes, seconds, queue)
        )
        for share in shares
    ]
    for child in children:
        child.start()
    total = Outcome()
    for _ in children:
        total.merge(queue.get())
    for child in children:
        child.join()
    return total
