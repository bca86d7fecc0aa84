"""The webhook's own route on Daphne: the acknowledgement path, lean.

A secondary receiver sees the page's whole traffic on standby, and Meta unsubscribes an
app whose webhook fails for an hour, so the POST that Meta sends is answered in front of
Django's stack (helpdesk.asgi routes it here): the body is read and its signature and
JSON checked in the event loop, and the delivery is handed to Daphne's writer process
(`WriterProcess`; a `DeliveryWriter` thread with WEBHOOK_INTAKE_PROCESS off), which
stores every delivery that arrived meanwhile in one transaction (a group commit) and
enqueues their processing as one task. The 200 leaves only once the row is committed:
nothing acknowledged is lost, even if the process is killed the next instant.
Verification (GET) and everything else stay Django's (webhooks.views).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.db import connections

from helpdesk import metrics
from webhooks import services

logger = logging.getLogger(__name__)

PATH = "/webhooks/messenger/"
GROUP_MAX = 500  # deliveries in one transaction at most
RESTART_SECONDS = 1.0  # a writer process is started at most this often

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# A body to store, and where to say it was: its request's event loop and future.
_Item = tuple[bytes, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class StoreFailed(Exception):
    """The database did not take the group: nothing of it was acknowledged."""


class DeliveryWriter:
    """One thread per process that stores deliveries in groups.

    While one group commits, the next gathers: under load a group holds every delivery
    that arrived during the last commit, so the cost of a commit (and of an fsync, and of
    publishing a task) is paid per group, not per request. Each caller waits for its own
    group's commit and gets its outcome.
    """

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = 0

    async def store(self, body: bytes) -> None:
        """Return once `body` is committed; raise StoreFailed if its group was not."""
        self._start()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._items.put((body, loop, done))
        await done

    def _start(self) -> None:
        with self._lock:
            if self._pid != os.getpid() or self._thread is None:  # first use, or a fork
                self._items = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._run, name="webhook-writer", daemon=True
                )
                self._thread.start()
                self._pid = os.getpid()

    def stop(self) -> None:
        """Let the thread finish what is queued, close its connection and end (the next
        `store` starts another): a test's database can then be dropped."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None or self._pid != os.getpid():
                return
            self._items.put(None)
        thread.join()

    def _run(self) -> None:
        items = self._items
        while True:
            first = items.get()
            if first is None:
                connections.close_all()
                return
            group = [first]
            while len(group) < GROUP_MAX:
                try:
                    item = items.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    items.put(None)  # stop after this group
                    break
                group.append(item)
            self._commit(group)

    def _commit(self, group: list[_Item]) -> None:
        error = store_group([body for body, _, _ in group])
        # One wake-up per event loop (Daphne has one), not one per request.
        waiting: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, loop, done in group:
            waiting.setdefault(loop, []).append(done)
        for loop, futures in waiting.items():
            loop.call_soon_threadsafe(_settle, futures, error)


def store_group(bodies: list[bytes]) -> Exception | None:
    """Store a group of deliveries in one transaction (`services.deliveries_store`),
    once more on a fresh connection if the first try fails (the last connection may
    have died); returns None, or the error that kept the group out."""
    error: Exception | None = None
    for attempt in range(2):
        try:
            services.deliveries_store(bodies)
            return None
        except Exception as exc:  # noqa: BLE001 -- every waiter gets a 503, Meta sends it again
            logger.warning(
                "could not store %d webhook deliveries (%s: %s)%s",
                len(bodies), type(exc).__name__, exc, "" if attempt else "; trying again",
            )  # fmt: skip
            connections.close_all()
            error = exc
    return error


def _settle(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for done in futures:
        if done.cancelled():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(StoreFailed(str(error)))


# The writer process's protocol, on a socket pair: each delivery as a 4-byte big-endian
# length and its body; each group's outcome as a line, `ok <n>` or `err <n> <reason>`,
# for the next n deliveries in the order they were sent.
FRAME = struct.Struct(">I")


class WriterProcess:
    """A process of its own that stores the deliveries of this one (Daphne's), in groups.

    Storing in a thread of Daphne's process held the interpreter's lock for its SQL and
    its Celery publish, and every request waited on that: intake was about half of the
    bare endpoint's rate. The writer process (`webhooks.intake_writer`) does that work on
    the other core; the event loop only writes each body to its socket and settles the
    waiting requests when a group's line comes back. The process is started with Daphne
    (`prestart`, from helpdesk.asgi: the first delivery does not wait for it to import
    Django), or else by the first delivery; one that ends (killed, crashed) fails its
    pending requests with a 503, which Meta sends again, and the next delivery starts
    another. When Daphne ends, the writer reads what was sent to it, stores it and ends
    too.
    """

    def __init__(self) -> None:
        self._links: dict[asyncio.AbstractEventLoop, _Link] = {}
        self._spare: _Spawned | None = None
        self._pid = 0

    def prestart(self) -> None:
        """Start the writer process now, for the event loop that takes the first delivery."""
        self._forked()
        if self._spare is None:
            self._spare = _Spawned()

    def _forked(self) -> None:
        if self._pid != os.getpid():  # first use, or a fork
            self._links, self._spare, self._pid = {}, None, os.getpid()

    async def store(self, body: bytes) -> None:
        """Return once `body` is committed; raise StoreFailed if its group was not."""
        loop = asyncio.get_running_loop()
        self._forked()
        link = self._links.get(loop)
        if link is None or link.ended:
            if link is not None and time.monotonic() - link.spawned.started_at < RESTART_SECONDS:
                # One that ended at once (it cannot start?): not a process per request.
                raise StoreFailed("the writer process ended; starting another shortly")
            spawned, self._spare = self._spare or _Spawned(), None
            link = self._links[loop] = _Link(loop, spawned)
        await link.store(body)

    def stop(self) -> None:
        """End every writer process of this one, once it stored what it was sent."""
        links, self._links = self._links, {}
        for link in links.values():
            link.close()
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.socket.close()
            spare.wait()


class _Spawned:
    """A writer process just started, and our end of its socket pair."""

    def __init__(self) -> None:
        self.socket, theirs = socket.socketpair()
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(  # our own interpreter and module
            [sys.executable, "-m", "webhooks.intake_writer", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            cwd=settings.BASE_DIR,  # where `webhooks` is, wherever Daphne was started
        )
        theirs.close()

    def wait(self) -> None:
        """Wait for the process to end (its socket is closed: it stores what it read)."""
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _Link(asyncio.Protocol):
    """One writer process and the requests waiting on it, for one event loop. Its
    answers are read in the protocol's callback, which settles the requests at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, spawned: _Spawned) -> None:
        self.spawned = spawned
        self.ended = False
        self.pending: collections.deque[asyncio.Future[None]] = collections.deque()
        self._socket = spawned.socket
        self._transport: asyncio.Transport | None = None
        self._received = b""
        self._ready = loop.create_task(self._open(loop))

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        await loop.connect_accepted_socket(lambda: self, sock=self._socket)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment] # a socket's: a Transport

    async def store(self, body: bytes) -> None:
        await self._ready
        if self.ended or self._transport is None:
            raise StoreFailed("the writer process ended")
        done = asyncio.get_running_loop().create_future()
        self.pending.append(done)
        self._transport.write(FRAME.pack(len(body)) + body)
        await done

    def data_received(self, data: bytes) -> None:
        *lines, self._received = (self._received + data).split(b"\n")
        try:
            for line in lines:
                status, count, *why = line.decode().split(" ", 2)
                error = None if status == "ok" else Exception(why[0] if why else status)
                _settle([self.pending.popleft() for _ in range(int(count))], error)
        except (ValueError, IndexError) as exc:
            self._end(f"the writer process broke its protocol ({type(exc).__name__})")

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("the writer process ended")

    def _end(self, reason: str) -> None:
        if self.ended:
            return  # already ended, or closed by `close` (which waits for the process)
        logger.warning(
            "the webhook writer process ended (%s); the next delivery starts another", reason
        )
        self.ended = True
        _settle(list(self.pending), Exception(reason))
        self.pending.clear()
        if self._transport is not None:
            self._transport.close()
        # Reaped once it has exited (its socket closes a moment before it does).
        threading.Thread(
            target=self.spawned.process.wait, name="webhook-writer-reaper", daemon=True
        ).start()

    def close(self) -> None:
        """Close our end: the process stores what it read, then ends; wait for it."""
        self.ended = True
        if self._transport is not None:
            self._transport.close()
        else:
            self._socket.close()
        self.spawned.wait()


writer: DeliveryWriter | WriterProcess = (
    WriterProcess() if settings.WEBHOOK_INTAKE_PROCESS else DeliveryWriter()
)


def prestart() -> None:
    """Start Daphne's writer process with Daphne (helpdesk.asgi), if it has one."""
    if isinstance(writer, WriterProcess):
        writer.prestart()


async def webhook(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /webhooks/messenger/ as an ASGI app: 200 once stored, else 4xx/503 in words."""
    headers = {name.lower(): value for name, value in scope["headers"]}
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        length = int(headers.get(b"content-length", b"0") or 0)
    except ValueError:
        metrics.count("webhooks_rejected", reason="bad_length")
        await _answer(send, 400, "bad Content-Length")
        return
    if length > limit:
        metrics.count("webhooks_rejected", reason="too_large")
        await _answer(send, 413, "payload too large")
        return
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return  # nothing stored, nothing to answer
        body += message.get("body", b"")
        if len(body) > limit:
            metrics.count("webhooks_rejected", reason="too_large")
            await _answer(send, 413, "payload too large")
            return
        if not message.get("more_body", False):
            break
    raw = bytes(body)
    signature = headers.get(b"x-hub-signature-256", b"").decode("latin-1") or None
    if not services.signature_valid(body=raw, header=signature):
        metrics.count("webhooks_rejected", reason="signature")
        await _answer(send, 403, "invalid signature")
        return
    try:
        services.delivery_payload(body=raw)
    except services.MalformedDelivery as exc:
        metrics.count("webhooks_rejected", reason="malformed")
        await _answer(send, 400, str(exc))
        return
    try:
        await writer.store(raw)
    except StoreFailed:
        metrics.count("webhooks_rejected", reason="not_stored")
        await _answer(send, 503, "could not store the delivery; send it again")
        return
    metrics.count("webhooks_received")
    await _answer(send, 200, "EVENT_RECEIVED")


async def _answer(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
