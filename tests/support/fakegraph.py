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
from dataclasses import dataclass, field, replace
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.polling import eventually
from webhooks.emulator.platform.uploads import Upload
from webhooks.emulator.server import multipart_fields

VERSION_PREFIX = re.compile(r"^/v\d+\.\d+")


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    headers: dict[str, str]
    # What the fake answered (its JSON body).
    answered: dict[str, Any] = field(default_factory=dict)
    # A multipart call's files: field name -> (file name, Content-Type, bytes).
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    delay: float = 0.0
    # Only a call it accepts gets this answer (None: the next call to the path).
    when: Callable[[Call], bool] | None = None


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
    # What `GET /me/thread_owner` names (None: the thread is idle, `{"data": []}`).
    thread_owner_app_id: str | None = None
    # Its `expiration` (epoch seconds), when it names an owner.
    thread_owner_expiration: int | None = None
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _mid: int = 0
    _server: LoopbackServer | None = None

    def start(self) -> Self:
        """Serve on a free loopback port; `url` is then the Graph API base URL."""
        self._server = LoopbackServer(_handler(self)).start()
        self.url = self._server.url("/v23.0")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def fail_next(
        self,
        path: str,
        answer: Scripted,
        times: int = 1,
        when: Callable[[Call], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls to `path` (those `when` accepts) with `answer`."""
        for _ in range(times):
            self.scripted[path].append(replace(answer, when=when))

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def sends(self) -> list[Call]:
        """Calls to the Send API: messages and sender actions."""
        return self.calls_to("/me/messages")

    def business_calls(self) -> list[Call]:
        """Every call but persona creation (made once per agent and page, before their
        first reply): what tests of other behaviour compare."""
        return [c for c in self.calls if c.path != "/me/personas"]

    def sender_actions(self) -> list[Call]:
        """Send API calls that are sender actions (the typing indicator)."""
        return [c for c in self.calls if "sender_action" in c.body]

    def wait_for(self, path: str, count: int = 1, timeout: float = 20.0) -> list[Call]:
        """The calls to `path` once there are at least `count` of them."""

        def enough() -> list[Call] | None:
            calls = self.calls_to(path)
            return calls if len(calls) >= count else None

        return eventually(
            enough,
            timeout=timeout,
            what=lambda: f"{count} call(s) to {path}, got {self.calls_to(path)}",
        )

    def answer(self, call: Call) -> Scripted:
        scripted = self._answer(call)
        call.answered = scripted.body
        return scripted

    def _answer(self, call: Call) -> Scripted:
        with self._lock:
            self.calls.append(call)
            queue = self.scripted.get(call.path)
            for scripted in queue or ():
                if scripted.when is None or scripted.when(call):
                    queue.remove(scripted)  # type: ignore[union-attr]
                    return scripted
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
            "/me/extend_thread_control",
        ):
            return Scripted(200, {"success": True})
        if call.path == "/me/thread_owner":
            if self.thread_owner_app_id is None:
                return Scripted(200, {"data": []})
            owner: dict[str, Any] = {"app_id": self.thread_owner_app_id}
            if self.thread_owner_expiration is not None:
                owner["expiration"] = self.thread_owner_expiration
            return Scripted(200, {"data": [{"thread_owner": owner}]})
        if call.path == "/me/personas":
            return Scripted(200, {"id": f"persona_{mid}"})
        if call.path == "/me/message_attachments":
            return Scripted(200, {"attachment_id": str(7000000000000000 + mid)})
        if call.path == "/me":
            return Scripted(200, {"id": "page"})
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


def _handler(fake: FakeGraph) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            path = VERSION_PREFIX.sub("", parts.path) or "/"
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            raw = self.body()
            files: dict[str, tuple[str, str, bytes]] = {}
            content_type = self.headers.get("Content-Type") or ""
            if content_type.startswith("multipart/form-data"):
                # Each form field a JSON value (as graph.py sends them), files apart.
                body = {}
                for name, value in (multipart_fields(content_type, raw) or {}).items():
                    if isinstance(value, Upload):
                        files[name] = (value.name, value.content_type, value.data)
                        continue
                    try:
                        body[name] = json.loads(value)
                    except ValueError:
                        body[name] = value
            else:
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
            call = Call(self.command, path, query, body, dict(self.headers.items()), files=files)
            answer = fake.answer(call)
            if answer.delay:
                time.sleep(answer.delay)
            self.reply(answer.status, json.dumps(answer.body).encode(), "application/json")
            for hook in list(fake.on_call):
                hook(call)

        do_GET = _handle
        do_POST = _handle

    return Handler
