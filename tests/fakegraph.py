"""A recording fake of the Graph API on loopback: answers like Meta, records every call.

Tests script failures per path (`fail_next`) and read back exactly what was called.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERSION_PREFIX = re.compile(r"^/v\d+\.\d+")


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    delay: float = 0.0


def graph_error(
    code: int, subcode: int | None = None, message: str = "error", status: int = 400
) -> Scripted:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return Scripted(status, {"error": error})


@dataclass
class FakeGraph:
    calls: list[Call] = field(default_factory=list)
    scripted: dict[str, deque[Scripted]] = field(default_factory=lambda: defaultdict(deque))
    on_call: list[Callable[[Call], None]] = field(default_factory=list)
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _mid: int = 0

    def fail_next(self, path: str, answer: Scripted, times: int = 1) -> None:
        for _ in range(times):
            self.scripted[path].append(answer)

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 20.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.calls_to(path)
            if len(calls) >= count:
                return calls
            time.sleep(0.02)
        raise AssertionError(f"expected {count} call(s) to {path}, got {self.calls_to(path)}")

    def answer(self, call: Call) -> Scripted:
        with self._lock:
            self.calls.append(call)
            queue = self.scripted.get(call.path)
            if queue:
                return queue.popleft()
            self._mid += 1
            mid = self._mid
        if call.path == "/me/messages":
            psid = (call.body.get("recipient") or {}).get("id", "")
            if "sender_action" in call.body:
                return Scripted(200, {"recipient_id": psid})
            return Scripted(200, {"recipient_id": psid, "message_id": f"m_fake_{mid}"})
        if call.path in (
            "/me/pass_thread_control",
            "/me/request_thread_control",
            "/me/take_thread_control",
            "/me/release_thread_control",
        ):
            return Scripted(200, {"success": True})
        if call.path == "/me/thread_owner":
            return Scripted(200, {"data": []})
        psid = call.path.strip("/")
        if psid.isdigit():
            profile = self.profiles.get(
                psid,
                {
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "profile_pic": f"https://pics.example/{psid}.jpg",
                },
            )
            return Scripted(200, {**profile, "id": psid})
        return Scripted(
            404, {"error": {"message": "Unknown path", "type": "GraphMethodException", "code": 100}}
        )


def _handler(fake: FakeGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            path = VERSION_PREFIX.sub("", parts.path) or "/"
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            call = Call(self.command, path, query, body, dict(self.headers.items()))
            answer = fake.answer(call)
            if answer.delay:
                time.sleep(answer.delay)
            data = json.dumps(answer.body).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a scripted timeout)
            for hook in list(fake.on_call):
                hook(call)

        do_GET = _handle
        do_POST = _handle

    return Handler


def start_fake_graph() -> tuple[FakeGraph, ThreadingHTTPServer]:
    fake = FakeGraph()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v23.0"
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return fake, server
