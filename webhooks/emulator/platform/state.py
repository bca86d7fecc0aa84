"""The platform's records and its mutable world.

`Webhook` and `Result` are what every operation gives back; `User`, `Thread` and
`Subscription` are what it changes; `PlatformState` holds all of them, plus the pages,
apps and tokens of the configuration, the personas and the id counters.

Nothing here locks: every method expects its caller to hold `Platform.lock`.
"""

from __future__ import annotations

import base64
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from webhooks.emulator.clock import ClockLike
from webhooks.emulator.config import PAGE_INBOX_APP_ID, AppConfig, EmulatorConfig, PageConfig
from webhooks.emulator.errors import EmulatorError

HOUR_MS = 3600 * 1000


@dataclass(frozen=True)
class Webhook:
    """One event for one app, on one channel; the dispatcher wraps it in an envelope."""

    app_id: str
    page_id: str
    channel: str
    event: dict[str, Any]
    time: int


@dataclass
class Result:
    """What an operation answers, and the webhooks it causes (in order)."""

    body: dict[str, Any]
    webhooks: list[Webhook] = field(default_factory=list)
    status: int = 200


@dataclass
class User:
    psid: str
    page_id: str
    first_name: str
    last_name: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class Thread:
    """One conversation (page + PSID) and its thread-control state.

    `owner` is None when the thread is idle (Conversation Routing). Legacy threads are
    owned by the primary receiver unless passed or taken.
    """

    page_id: str
    psid: str
    owner: str | None
    control_since: int | None = None
    extended_until: int | None = None
    last_user_at: int | None = None
    typing_app_id: str | None = None
    typing_until: int = 0
    # The persona a typing indicator was sent with (`persona_id`), as the customer sees it.
    typing_persona: dict[str, Any] | None = None
    seen_at: int | None = None
    delivered_watermark: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)
    # mid -> the app that sent it: postback payloads go only to that app (§2.5).
    sent_by: dict[str, str] = field(default_factory=dict)


@dataclass
class Subscription:
    fields: frozenset[str]
    active: bool = True


class PlatformState:
    """Pages, apps, tokens, subscriptions, users, threads, personas, and id counters.

    Raises ValueError for a configuration Meta would not allow (a token for an unknown
    page, two apps sharing a token, a legacy page without a primary receiver). Holds
    no users yet: `Platform` seeds them through `user_actions.user_create`.
    Not thread-safe: callers hold `Platform.lock`.
    """

    def __init__(self, config: EmulatorConfig, clock: ClockLike) -> None:
        self.config = config
        self.clock = clock
        self.public_url = ""  # set by the server: profile pictures are served there
        self.rng: random.Random = (
            random.Random(config.seed) if config.seed is not None else random.SystemRandom()
        )
        self.pages: dict[str, PageConfig] = {p.page_id: p for p in config.pages}
        # The modes the pages started with (a saved world belongs to them, `statefile`).
        self.initial_modes: dict[str, str] = {p.page_id: p.mode for p in config.pages}
        self.apps: dict[str, AppConfig] = {a.app_id: a for a in config.apps}
        self.tokens: dict[str, tuple[str, str]] = {}
        # (app id, page id) -> the token the configuration issued (before any reissue).
        self.config_tokens: dict[tuple[str, str], str] = {}
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        for app in config.apps:
            for page_id, token in app.page_tokens.items():
                if page_id not in self.pages:
                    raise ValueError(f"app {app.app_id} has a token for unknown page {page_id}")
                if token in self.tokens:
                    raise ValueError("two apps share a page access token")
                self.tokens[token] = (app.app_id, page_id)
                self.config_tokens[(app.app_id, page_id)] = token
                self.subscriptions[(app.app_id, page_id)] = Subscription(app.subscribed_fields)
        for page in config.pages:
            if page.mode == "legacy" and not page.primary_app_id:
                raise ValueError(f"legacy page {page.page_id} needs a primary receiver")
        self.users: dict[tuple[str, str], User] = {}
        self.threads: dict[tuple[str, str], Thread] = {}
        self.personas: dict[str, dict[str, Any]] = {}
        # Page-level faults that last until cleared (§9.4): restricted pages, and per
        # (app id, page id) an expired token or a revoked pages_messaging permission.
        self.restricted_pages: set[str] = set()
        self.expired_tokens: set[tuple[str, str]] = set()
        self.revoked_permissions: set[tuple[str, str]] = set()
        # Tokens replaced by `token_reissue`: token -> (app id, page id); they answer 190/460.
        self.invalidated_tokens: dict[str, tuple[str, str]] = {}
        # page id -> the default app a switch to zero-config put aside, to come back to.
        self.previous_primary: dict[str, str] = {}
        self.reusable_attachments: set[str] = set()
        # attachment id -> (type, uploads.Upload): files apps uploaded, served to the
        # customer page; kept in memory only (not in the state file).
        self.uploads: dict[str, tuple[str, Any]] = {}
        self.send_times: dict[str, deque[float]] = {}  # page id -> recent sends (rate limit)
        self.seq = 0
        self.next_psid = config.first_psid
        self.next_id = 5000000000000001

    # --- ids: drawn from one seeded generator, so a seeded run repeats its ids ----------

    def mid(self) -> str:
        raw = bytes(self.rng.getrandbits(8) for _ in range(30))
        return "m_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def numeric_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def fbtrace_id(self) -> str:
        raw = bytes(self.rng.getrandbits(8) for _ in range(8))
        return base64.b64encode(raw).decode().rstrip("=")

    # --- look-ups ------------------------------------------------------------------------

    def page_or_404(self, page_id: str) -> PageConfig:
        page = self.pages.get(page_id)
        if page is None:
            raise EmulatorError(f"no page {page_id}", status=404)
        return page

    def thread_or_404(self, page_id: str, psid: str) -> Thread:
        thread = self.threads.get((page_id, psid))
        if thread is None:
            raise EmulatorError(f"no user {psid} on page {page_id}", status=404)
        return thread

    def app_name(self, app_id: str | None) -> str:
        if app_id is None:
            return "nobody"
        if app_id == PAGE_INBOX_APP_ID:
            return "Page Inbox"
        app = self.apps.get(app_id)
        return app.name if app else app_id

    def role(self, app_id: str) -> str:
        """Who wrote a message, as the pages label it: "inbox", or the app's role."""
        if app_id == PAGE_INBOX_APP_ID:
            return "inbox"
        app = self.apps.get(app_id)
        return app.role if app else "app"

    def subscribed(self, page_id: str) -> list[AppConfig]:
        """Apps whose webhooks for this page are on, in configuration order."""
        return [
            app
            for app in self.apps.values()
            if (sub := self.subscriptions.get((app.app_id, page_id))) is not None and sub.active
        ]

    def fields(self, app_id: str, page_id: str) -> frozenset[str]:
        """The webhook fields an app receives for a page; none while unsubscribed."""
        sub = self.subscriptions.get((app_id, page_id))
        return sub.fields if sub and sub.active else frozenset()

    # --- the transcript (what the customer page shows) -----------------------------------

    def append(self, thread: Thread, entry: dict[str, Any]) -> dict[str, Any]:
        """Add an entry with the next `seq`, which the pages poll with (`?after=`)."""
        self.seq += 1
        entry = {"seq": self.seq, **entry}
        thread.transcript.append(entry)
        return entry

    def note(self, thread: Thread, now: int, text: str) -> None:
        """A platform event line in the transcript (the customer page shows it faded)."""
        self.append(thread, {"kind": "event", "author": "system", "text": text, "timestamp": now})
