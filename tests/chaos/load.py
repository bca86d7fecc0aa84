"""The load: customers talking through the emulator, agents working through the API.

Customers are emulator users. While the bot owns a conversation they ask it things (the
helpdesk gets their messages and the bot's echoes on standby); some ask for a person,
the helpdesk requests the thread and the bot passes it; then they talk to the agent.
Every text is unique (`[c123] …`), so the database can be checked text by text.

Agents are API clients (`Authorization: Bearer`), one thread each: claim a waiting
ticket, reply a few times, close (sometimes with a closing message). What the API
answered is written down: a 201 is a reply requested; a 409 a refusal with its reason;
no answer (the Daphne process was killed) an outcome unknown to the agent, which the
audit looks up by its unique text.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.support import payloads
from webhooks.emulator import Emulator

logger = logging.getLogger(__name__)

QUESTIONS = (
    "what are your opening hours?",
    "how long does shipping take?",
    "can I return a parcel?",
    "hello there",
    "is the shop open on Saturday?",
    "thanks!",
)
TO_THE_AGENT = (
    "my order number is {n}",
    "it arrived broken",
    "can you check the tracking?",
    "ok, thanks",
    "still there?",
)
ASK_FOR_A_PERSON = "can I talk to a human please"
# A customer whose request got no handover for this long may ask again.
ASK_AGAIN_AFTER = 20.0


class Customers:
    """Emulator users who talk, from one thread, as fast as the system takes it."""

    def __init__(
        self,
        emulator: Emulator,
        *,
        users: int,
        tickets_wanted: int,
        rng: random.Random,
        busy: Callable[[], bool],
    ) -> None:
        self.emulator = emulator
        self.rng = rng
        self.busy = busy
        self.tickets_wanted = tickets_wanted
        self.psids = [emulator.user_create(f"Chaos{i}", f"Customer{i}").psid for i in range(users)]
        self.texts: list[str] = []  # everything the customers typed, each unique
        self.actions: Counter[str] = Counter()
        self._asked: dict[str, float] = {}
        self._serial = itertools.count(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-customers", daemon=True)

    def start(self) -> Customers:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.busy():
                self._stop.wait(0.02)
                continue
            try:
                self.step()
            except Exception:  # a refused action (e.g. a window) is not the point here
                logger.exception("a customer action failed")
                self._stop.wait(0.1)

    def _say(self, psid: str, text: str) -> None:
        text = f"[c{next(self._serial)}] {text}"
        self.texts.append(text)
        self.emulator.user_says(psid, text)

    def step(self) -> None:
        owners = {psid: self.emulator.owner(psid) for psid in self.psids}
        now = time.monotonic()
        served = [p for p, owner in owners.items() if owner == payloads.APP_ID]
        asking = [
            p for p, t in self._asked.items() if now - t < ASK_AGAIN_AFTER and p not in served
        ]
        with_bot = [p for p, owner in owners.items() if owner != payloads.APP_ID]
        if len(served) + len(asking) < self.tickets_wanted:
            candidates = [p for p in with_bot if p not in asking]
            if candidates:
                psid = self.rng.choice(candidates)
                self._asked[psid] = now
                self._say(psid, ASK_FOR_A_PERSON)
                self.actions["asked for a person"] += 1
                return
        psid = self.rng.choice(self.psids)
        if owners[psid] == payloads.APP_ID:
            if self.rng.random() < 0.15:
                self.emulator.user_reads(psid)
                self.actions["read receipts"] += 1
                return
            self._say(psid, self.rng.choice(TO_THE_AGENT).format(n=self.rng.randint(1000, 9999)))
            self.actions["messages to an agent"] += 1
        else:
            self._say(psid, self.rng.choice(QUESTIONS))
            self.actions["messages to the bot"] += 1


@dataclass
class Replies:
    """What the agents asked for, and what the API answered."""

    requested: dict[int, str] = field(default_factory=dict)  # 201: message id -> text
    refused: Counter[str] = field(default_factory=Counter)  # 409 reasons
    unknown: list[str] = field(default_factory=list)  # texts with no answer, or a 5xx
    closing: list[str] = field(default_factory=list)  # closing messages of 200 closes
    closing_unknown: list[str] = field(default_factory=list)
    closes: int = 0
    closes_refused: Counter[str] = field(default_factory=Counter)
    claims: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Agent:
    """One agent working tickets through the API, from its own thread."""

    def __init__(
        self,
        name: str,
        token: str,
        *,
        urls: list[str],
        replies: Replies,
        serial: itertools.count[int],
        rng: random.Random,
    ) -> None:
        self.name = name
        self.urls = urls
        self.replies = replies
        self.serial = serial
        self.rng = rng
        self.session = requests.Session()
        self.session.trust_env = False  # loopback, never a proxy
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"chaos-{name}", daemon=True)

    def start(self) -> Agent:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    # --- HTTP -------------------------------------------------------------------------

    def _get(self, path: str, **params: Any) -> Any:
        """GET from the first Daphne that answers; None if none did."""
        for url in self.urls:
            try:
                response = self.session.get(f"{url}/api/v1{path}", params=params, timeout=10)
            except requests.RequestException:
                continue
            if response.status_code == 200:
                return response.json()
        return None

    def _post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int | None, Any]:
        """POST once, to the first Daphne that takes the connection. (None, None) when
        the request may have been handled but no answer came."""
        for url in self.urls:
            try:
                response = self.session.post(f"{url}/api/v1{path}", json=body or {}, timeout=15)
            except requests.ConnectionError as exc:
                if _refused(exc):
                    continue  # never reached this Daphne: try the other
                return None, None
            except requests.RequestException:
                return None, None
            logger.debug(
                "%s POST %s: %s in %.2f s",
                self.name,
                path,
                response.status_code,
                response.elapsed.total_seconds(),
            )
            try:
                return response.status_code, response.json()
            except ValueError:
                return response.status_code, None
        return None, None

    # --- work -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ticket = self._next_ticket()
                if ticket is None:
                    self._stop.wait(0.3)
                    continue
                self._work(ticket)
            except Exception:
                logger.exception("agent %s stumbled", self.name)
                self._stop.wait(0.5)

    def _next_ticket(self) -> dict[str, Any] | None:
        mine = self._get("/tickets", queue="mine")
        if mine:
            return dict(mine[0])
        waiting = self._get("/tickets", queue="waiting") or []
        self.rng.shuffle(waiting)
        for ticket in waiting[:3]:
            status, _ = self._post(f"/tickets/{ticket['id']}/claim")
            if status == 200:
                with self.replies.lock:
                    self.replies.claims += 1
                return dict(ticket)
        return None

    def _pause(self) -> None:
        self._stop.wait(self.rng.uniform(0.1, 0.8))

    def _work(self, ticket: dict[str, Any]) -> None:
        ticket_id = ticket["id"]
        for _ in range(self.rng.randint(1, 4)):
            if self._stop.is_set():
                return
            text = f"[a{next(self.serial)}] {self.name} here, let me check that for you"
            status, body = self._post(f"/tickets/{ticket_id}/reply", {"text": text})
            with self.replies.lock:
                if status == 201:
                    self.replies.requested[int(body["id"])] = text
                elif status is None or status >= 500:
                    self.replies.unknown.append(text)
                else:
                    self.replies.refused[_reason(status, body)] += 1
            if status == 409:
                break
            self._pause()
        closing = ""
        if self.rng.random() < 0.3:
            closing = f"[a{next(self.serial)}] {self.name}: glad I could help, goodbye"
        status, body = self._post(
            f"/tickets/{ticket_id}/close", {"outcome": "resolved", "closing_message": closing}
        )
        if status == 409 and closing:  # e.g. control was taken: close without a message
            closing = ""
            status, body = self._post(f"/tickets/{ticket_id}/close", {"outcome": "resolved"})
        with self.replies.lock:
            if status == 200:
                self.replies.closes += 1
                if closing:
                    self.replies.closing.append(closing)
            elif status is None or status >= 500:
                if closing:
                    self.replies.closing_unknown.append(closing)
            else:
                self.replies.closes_refused[_reason(status, body)] += 1
        self._pause()


def _refused(exc: requests.ConnectionError) -> bool:
    return "Connection refused" in str(exc) or "NewConnectionError" in str(exc)


def _reason(status: int, body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"{status}: {detail or 'no detail'}"[:120]
