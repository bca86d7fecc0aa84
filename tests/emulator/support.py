"""Helpers for the emulator's tests: a core with a still clock, Graph clients per app,
and a recording webhook receiver on loopback (the "helpdesk")."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.polling import eventually
from webhooks.emulator import EmulatorConfig, ManualClock, Platform, Result, UserConfig
from webhooks.emulator.config import AppConfig
from webhooks.emulator.platform import Webhook, appsecret_proof

T0 = 1_800_000_000_000  # ms
HOUR = 3600
DAY = 24 * HOUR
PAGE = "1000000000000001"
HELPDESK = "100000000000001"
BOT = "200000000000002"
OTHER = "300000000000003"
PAGE_INBOX = "263902037430900"
HELPDESK_TOKEN = "demo-page-token"
BOT_TOKEN = "demo-bot-token"
OTHER_TOKEN = "other-page-token"
HELPDESK_SECRET = "dev-app-secret"
BOT_SECRET = "demo-bot-secret"
OTHER_SECRET = "other-secret"
PSID = "3000000000000003"

NOT_OWNER = {
    "message": "(#10) The action is invalid since it's not the thread owner.",
    "type": "OAuthException",
    "code": 10,
    "error_subcode": 2018300,
}
TAKE_WITHOUT_CR = {
    "message": "(#27) Take thread control is not supported when Conversation Routing is not "
    "enabled",
    "type": "OAuthException",
    "code": 27,
}
OUTSIDE_WINDOW = {
    "message": "(#10) This message is sent outside of allowed window.",
    "type": "OAuthException",
    "code": 10,
    "error_subcode": 2018278,
}


def error_of(result: Result) -> dict[str, Any]:
    """The error envelope without its random fbtrace_id (checked to be there)."""
    assert result.status == 400, result.body
    assert set(result.body) == {"error"}, result.body
    error = dict(result.body["error"])
    assert isinstance(error.pop("fbtrace_id"), str)
    return error


def config(
    mode: str = "cr", *, other_app: bool = False, human_agent: bool = False, **changes: Any
) -> EmulatorConfig:
    """The demo setup with no callback URLs, one user (PSID), a fixed seed."""
    cfg = EmulatorConfig.demo(
        mode=mode,  # type: ignore[arg-type]
        port=0,
        helpdesk_callback_url=None,
        helpdesk_human_agent=human_agent,
        users=[UserConfig("Ada", "Lovelace", psid=PSID)],
    )
    if other_app:
        cfg.apps.append(
            AppConfig(
                app_id=OTHER,
                name="Other App",
                secret=OTHER_SECRET,
                page_tokens={PAGE: OTHER_TOKEN},
            )
        )
    cfg.seed = 7
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


@dataclass
class App:
    """A Graph client for one app, calling the core directly."""

    platform: Platform
    token: str
    secret: str
    proof: bool = True

    def call(self, method: str, path: str, **params: Any) -> Result:
        return self.platform.graph(
            method,
            path,
            params,
            access_token=self.token,
            appsecret_proof=appsecret_proof(self.secret, self.token) if self.proof else None,
        )

    def post(self, edge: str, **params: Any) -> Result:
        return self.call("POST", f"/me/{edge}", **params)

    def send_text(self, text: str, psid: str = PSID, **extra: Any) -> Result:
        params: dict[str, Any] = {"messaging_type": "RESPONSE", **extra}
        params["message"] = {"text": text, **params.pop("message", {})}
        return self.post("messages", recipient={"id": psid}, **params)

    def pass_to(self, target: str, metadata: str | None = None, psid: str = PSID) -> Result:
        params: dict[str, Any] = {"recipient": {"id": psid}, "target_app_id": target}
        if metadata is not None:
            params["metadata"] = metadata
        return self.post("pass_thread_control", **params)

    def thread_owner(self, psid: str = PSID) -> Result:
        return self.call("GET", "/me/thread_owner", recipient=psid)


@dataclass
class World:
    platform: Platform
    clock: ManualClock
    helpdesk: App
    bot: App
    other: App

    def says(self, text: str, psid: str = PSID) -> Result:
        return self.platform.user_message(page_id=PAGE, psid=psid, text=text)

    def owner(self, psid: str = PSID) -> str | None:
        return self.platform.owner(page_id=PAGE, psid=psid)

    def transcript(self, psid: str = PSID) -> list[dict[str, Any]]:
        return self.platform.thread_view(page_id=PAGE, psid=psid)["messages"]


def world(mode: str = "cr", **kwargs: Any) -> World:
    clock = ManualClock(T0)
    platform = Platform(config(mode, **kwargs), clock)
    return World(
        platform=platform,
        clock=clock,
        helpdesk=App(platform, HELPDESK_TOKEN, HELPDESK_SECRET),
        bot=App(platform, BOT_TOKEN, BOT_SECRET),
        other=App(platform, OTHER_TOKEN, OTHER_SECRET),
    )


def user_event(body: dict[str, Any], ts: int = T0, psid: str = PSID) -> dict[str, Any]:
    return {"sender": {"id": psid}, "recipient": {"id": PAGE}, "timestamp": ts, **body}


def hooks_to(hooks: list[Webhook]) -> list[tuple[str, str]]:
    return [(h.app_id, h.channel) for h in hooks]


# --- a recording webhook receiver on loopback ---------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for entry in self.payload["entry"]:
            for channel in ("messaging", "standby"):
                out += [(channel, e) for e in entry.get(channel, [])]
        return out


@dataclass
class Receiver:
    """Answers POSTs with scripted statuses (default 200) and records them."""

    secret: str = HELPDESK_SECRET
    verify_token: str = "dev-verify-token"
    received: list[Received] = field(default_factory=list)
    script: deque[tuple[int, float]] = field(default_factory=deque)
    default_status: int = 200
    url: str = ""
    _server: LoopbackServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
                ok = query.get("hub.mode") == "subscribe" and (
                    query.get("hub.verify_token") == receiver.verify_token
                )
                body = query.get("hub.challenge", "").encode() if ok else b"forbidden"
                self.reply(200 if ok else 403, body)

            def do_POST(self) -> None:
                raw = self.body()
                with receiver._lock:
                    status, delay = (
                        receiver.script.popleft()
                        if receiver.script
                        else (receiver.default_status, 0.0)
                    )
                    receiver.received.append(
                        Received("POST", self.path, dict(self.headers.items()), raw)
                    )
                if delay:
                    time.sleep(delay)
                self.reply(status, b"EVENT_RECEIVED")

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url("/webhooks/messenger/")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def posts(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        return [e for r in self.posts() for e in r.events()]

    def wait_for_posts(self, count: int, timeout: float = 5.0) -> list[Received]:
        eventually(
            lambda: len(self.posts()) >= count,
            timeout=timeout,
            interval=0.01,
            what=lambda: f"{count} webhook POSTs, got {len(self.posts())}",
        )
        return self.posts()


def valid_signature(received: Received, secret: str) -> bool:
    expected = hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    return received.headers.get("X-Hub-Signature-256") == f"sha256={expected}"


def user_texts(receiver: Receiver) -> list[str]:
    """Texts of the user's messages the receiver got (not echoes), in arrival order."""
    return [
        e["message"]["text"]
        for _, e in receiver.events()
        if "message" in e and not e["message"].get("is_echo")
    ]
