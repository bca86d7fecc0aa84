"""The Messenger Platform's rules: a pure, synchronous core without HTTP.

Every operation (a Graph API call, something the user does) takes the state lock,
checks the rules of messenger-platform.md §8, changes the state, and returns a `Result`:
the Graph answer plus the webhooks the platform would send. Nothing leaves this module:
the caller (`Emulator`) hands the webhooks to the dispatcher while still holding
`Platform.lock`, so webhooks are queued in the order the transitions happened.

Rule tags in comments follow §8: [doc], [legacy], [conv] (an emulator convention where
Meta is silent).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from webhooks.emulator.clock import ClockLike
from webhooks.emulator.config import (
    INBOX_APP_IDS,
    PAGE_INBOX_APP_ID,
    AppConfig,
    EmulatorConfig,
    PageConfig,
)
from webhooks.emulator.errors import (
    OUTSIDE_WINDOW_MESSAGE,
    EmulatorError,
    PlatformRefusal,
    invalid,
    not_owner,
    permissions_error,
)
from webhooks.emulator.messages import URL, message_content

HOUR_MS = 3600 * 1000
WINDOW_MS = 24 * HOUR_MS
HUMAN_AGENT_WINDOW_MS = 7 * 24 * HOUR_MS
CONTROL_LAPSE_MS = 24 * HOUR_MS
MAX_EXTEND_SECONDS = 7 * 24 * 3600
TYPING_MS = 20_000  # Messenger hides a typing indicator after 20 s

MESSAGING = "messaging"
STANDBY = "standby"

SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen", "react", "unreact"})
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
DEPRECATED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"})
VALID_TAGS = frozenset({"HUMAN_AGENT"})
NOTIFICATION_TYPES = frozenset({"REGULAR", "SILENT_PUSH", "NO_PUSH"})
PROFILE_FIELDS = frozenset({"id", "name", "first_name", "last_name", "profile_pic"})
GATED_PROFILE_FIELDS = {
    "locale": "pages_user_locale",
    "timezone": "pages_user_timezone",
    "gender": "pages_user_gender",
}
HANDOVER_FIELDS = frozenset({"messaging_handovers", "messaging_handover"})


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
    seen_at: int | None = None
    delivered_watermark: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)
    # mid -> the app that sent it: postback payloads go only to that app (§2.5).
    sent_by: dict[str, str] = field(default_factory=dict)


@dataclass
class Subscription:
    fields: frozenset[str]
    active: bool = True


class Platform:
    """The emulated Messenger Platform: pages, apps, users, threads, and their rules.

    Thread-safe: every public method takes `lock` (re-entrant, so a caller may hold it
    across a call and the queueing of the webhooks it returns).
    """

    def __init__(self, config: EmulatorConfig, clock: ClockLike) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.public_url = ""  # set by the server: profile pictures are served there
        self._rng: random.Random = (
            random.Random(config.seed) if config.seed is not None else random.SystemRandom()
        )
        self.pages: dict[str, PageConfig] = {p.page_id: p for p in config.pages}
        self.apps: dict[str, AppConfig] = {a.app_id: a for a in config.apps}
        self.tokens: dict[str, tuple[str, str]] = {}
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        for app in config.apps:
            for page_id, token in app.page_tokens.items():
                if page_id not in self.pages:
                    raise ValueError(f"app {app.app_id} has a token for unknown page {page_id}")
                if token in self.tokens:
                    raise ValueError("two apps share a page access token")
                self.tokens[token] = (app.app_id, page_id)
                self.subscriptions[(app.app_id, page_id)] = Subscription(app.subscribed_fields)
        for page in config.pages:
            if page.mode == "legacy" and not page.primary_app_id:
                raise ValueError(f"legacy page {page.page_id} needs a primary receiver")
        self.users: dict[tuple[str, str], User] = {}
        self.threads: dict[tuple[str, str], Thread] = {}
        self.personas: dict[str, dict[str, Any]] = {}
        self.reusable_attachments: set[str] = set()
        self._seq = 0
        self._next_psid = 3100000000000001
        self._next_id = 5000000000000001
        self._send_times: dict[str, deque[float]] = {}
        for seed in config.users:
            self.user_create(
                page_id=seed.page_id,
                first_name=seed.first_name,
                last_name=seed.last_name,
                psid=seed.psid,
            )

    # --- ids --------------------------------------------------------------------

    def _mid(self) -> str:
        raw = bytes(self._rng.getrandbits(8) for _ in range(30))
        return "m_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _numeric_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def fbtrace_id(self) -> str:
        raw = bytes(self._rng.getrandbits(8) for _ in range(8))
        return base64.b64encode(raw).decode().rstrip("=")

    # --- users and threads ------------------------------------------------------

    def user_create(
        self, *, page_id: str, first_name: str, last_name: str, psid: str | None = None
    ) -> User:
        """Add a Messenger user of a page (PSIDs are page-scoped numeric strings)."""
        with self.lock:
            page = self._page_or_404(page_id)
            first_name, last_name = first_name.strip()[:50], last_name.strip()[:50]
            if not first_name:
                raise EmulatorError("first_name is required")
            if psid is None:
                while f"{self._next_psid}" in {p for (_, p) in self.users}:
                    self._next_psid += 1
                psid = str(self._next_psid)
                self._next_psid += 1
            elif not psid.isdigit():
                raise EmulatorError("a PSID is a numeric string")
            if (page_id, psid) in self.users:
                raise EmulatorError(f"user {psid} already exists on page {page_id}")
            user = User(psid=psid, page_id=page_id, first_name=first_name, last_name=last_name)
            self.users[(page_id, psid)] = user
            # [legacy] the primary receiver owns every thread by default; CR starts idle.
            owner = page.primary_app_id if page.mode == "legacy" else None
            self.threads[(page_id, psid)] = Thread(page_id=page_id, psid=psid, owner=owner)
            return user

    def _page_or_404(self, page_id: str) -> PageConfig:
        page = self.pages.get(page_id)
        if page is None:
            raise EmulatorError(f"no page {page_id}", status=404)
        return page

    def _thread_or_404(self, page_id: str, psid: str) -> Thread:
        thread = self.threads.get((page_id, psid))
        if thread is None:
            raise EmulatorError(f"no user {psid} on page {page_id}", status=404)
        return thread

    def expiration(self, thread: Thread) -> int | None:
        """When the current owner's control lapses (CR), epoch ms; None in legacy/idle."""
        page = self.pages[thread.page_id]
        if page.mode == "legacy" or thread.owner is None:
            return None
        # [doc] control lapses 24 h after the user's last message, unless extended.
        base = thread.last_user_at if thread.last_user_at is not None else thread.control_since
        expires = (base or 0) + CONTROL_LAPSE_MS
        if thread.extended_until is not None:
            expires = max(expires, thread.extended_until)
        return expires

    def _refresh(self, thread: Thread, now: int) -> None:
        """Apply what time did: a lapsed CR control makes the thread idle.

        [conv] No webhook on lapse (Meta's is unconfirmed, §6.4): apps find out from
        `thread_owner` or a refused send. Caller holds `lock`.
        """
        expires = self.expiration(thread)
        if expires is not None and now >= expires:
            previous = thread.owner
            self._set_owner(thread, None, now)
            # Stamped when it lapsed, not when someone noticed.
            self._note(thread, expires, f"Control of {self._app_name(previous)} lapsed (idle)")

    def _set_owner(self, thread: Thread, owner: str | None, now: int) -> None:
        thread.owner = owner
        thread.control_since = now if owner is not None else None
        thread.extended_until = None
        if thread.typing_app_id != owner:
            thread.typing_app_id = None

    def _app_name(self, app_id: str | None) -> str:
        if app_id is None:
            return "nobody"
        if app_id == PAGE_INBOX_APP_ID:
            return "Page Inbox"
        app = self.apps.get(app_id)
        return app.name if app else app_id

    def _append(self, thread: Thread, entry: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        entry = {"seq": self._seq, **entry}
        thread.transcript.append(entry)
        return entry

    def _note(self, thread: Thread, now: int, text: str) -> None:
        """A platform event line in the transcript (the customer page shows it faded)."""
        self._append(thread, {"kind": "event", "author": "system", "text": text, "timestamp": now})

    # --- routing ----------------------------------------------------------------

    def _subscribed(self, page_id: str) -> list[AppConfig]:
        """Apps whose webhooks for this page are on, in configuration order."""
        return [
            app
            for app in self.apps.values()
            if (sub := self.subscriptions.get((app.app_id, page_id))) is not None and sub.active
        ]

    def _fields(self, app_id: str, page_id: str) -> frozenset[str]:
        sub = self.subscriptions.get((app_id, page_id))
        return sub.fields if sub and sub.active else frozenset()

    def _router(self, page: PageConfig, thread: Thread) -> str | None:
        """Who gets `messaging[]`: the owner, or on an idle CR thread the default app."""
        if thread.owner is not None:
            return thread.owner
        if page.mode == "cr":
            return page.primary_app_id
        return None

    def _route(
        self, page: PageConfig, thread: Thread, event: dict[str, Any], field_name: str, now: int
    ) -> list[Webhook]:
        """[doc] §8.3-4: the owner on messaging[], every other app on standby[]."""
        router = self._router(page, thread)
        hooks = []
        for app in self._subscribed(page.page_id):
            fields = self._fields(app.app_id, page.page_id)
            if page.mode == "cr-zero-config" or app.app_id == router:
                channel = MESSAGING
                if field_name not in fields:
                    continue
            else:
                channel = STANDBY
                if "standby" not in fields:
                    continue
            body = event
            postback = event.get("postback")
            if postback is not None:
                # [doc] §8.4: only the app that sent the button gets the payload, and
                # never on standby.
                button_app = thread.sent_by.get(postback.get("_button_mid", ""))
                keep = channel == MESSAGING and button_app in (None, app.app_id)
                stripped = {k: v for k, v in postback.items() if k != "_button_mid"}
                if not keep:
                    stripped.pop("payload", None)
                body = {**event, "postback": stripped}
            hooks.append(Webhook(app.app_id, page.page_id, channel, body, now))
        return hooks

    def _echo_hooks(
        self, page: PageConfig, thread: Thread, echo: dict[str, Any], now: int
    ) -> list[Webhook]:
        """[doc] §8.5: echoes to every app subscribed to message_echoes."""
        router = self._router(page, thread)
        hooks = []
        for app in self._subscribed(page.page_id):
            if "message_echoes" not in self._fields(app.app_id, page.page_id):
                continue
            on_messaging = page.mode == "cr-zero-config" or app.app_id == router
            channel = MESSAGING if on_messaging else STANDBY
            hooks.append(Webhook(app.app_id, page.page_id, channel, echo, now))
        return hooks

    def _handover_hook(
        self, page: PageConfig, app_id: str | None, event: dict[str, Any], now: int
    ) -> list[Webhook]:
        """Handover notices are always on messaging[] (§2.6), if the app subscribed."""
        if app_id is None or app_id not in self.apps:
            return []  # the Page Inbox is not one of our apps: nothing to deliver
        if not (self._fields(app_id, page.page_id) & HANDOVER_FIELDS):
            return []
        return [Webhook(app_id, page.page_id, MESSAGING, event, now)]

    def _user_event(self, thread: Thread, now: int, **body: Any) -> dict[str, Any]:
        return {
            "sender": {"id": thread.psid},
            "recipient": {"id": thread.page_id},
            "timestamp": now,
            **body,
        }

    # --- what the user does (customer page) ---------------------------------------

    def user_message(
        self,
        *,
        page_id: str,
        psid: str,
        text: str = "",
        quick_reply: tuple[str, int] | None = None,
    ) -> Result:
        """The user sends text, or taps quick reply `index` of message `mid`."""
        with self.lock:
            page = self._page_or_404(page_id)
            thread = self._thread_or_404(page_id, psid)
            now = self.clock.now_ms()
            self._refresh(thread, now)
            message: dict[str, Any] = {"mid": self._mid()}
            payload = None
            if quick_reply is not None:
                reply = self._find_choice(thread, quick_reply, "quick_replies")
                text, payload = reply["title"], reply["payload"]
                message["text"] = text
                message["quick_reply"] = {"payload": payload}
            else:
                text = text.strip()
                if not text:
                    raise EmulatorError("text is required")
                if len(text) > 2000:
                    raise EmulatorError("text is limited to 2000 characters")
                message["text"] = text
            note = self._user_opens(page, thread, now)
            entry = self._append(
                thread,
                {
                    "kind": "message",
                    "author": "user",
                    "mid": message["mid"],
                    "text": text,
                    "quick_reply_payload": payload,
                    "timestamp": now,
                },
            )
            if note:
                self._note(thread, now, note)
            event = self._user_event(thread, now, message=message)
            return Result(entry, self._route(page, thread, event, "messages", now))

    def user_postback(self, *, page_id: str, psid: str, mid: str, index: int) -> Result:
        """The user taps postback button `index` of message `mid`."""
        with self.lock:
            page = self._page_or_404(page_id)
            thread = self._thread_or_404(page_id, psid)
            now = self.clock.now_ms()
            self._refresh(thread, now)
            button = self._find_choice(thread, (mid, index), "buttons")
            if button.get("type") != "postback":
                raise EmulatorError("that button is not a postback button")
            note = self._user_opens(page, thread, now)
            postback_mid = self._mid()
            entry = self._append(
                thread,
                {
                    "kind": "postback",
                    "author": "user",
                    "mid": postback_mid,
                    "text": button["title"],
                    "postback_payload": button["payload"],
                    "timestamp": now,
                },
            )
            if note:
                self._note(thread, now, note)
            event = self._user_event(
                thread,
                now,
                postback={
                    "mid": postback_mid,
                    "title": button["title"],
                    "payload": button["payload"],
                    "_button_mid": mid,  # routing only, removed before delivery
                },
            )
            return Result(entry, self._route(page, thread, event, "messaging_postbacks", now))

    def user_read(self, *, page_id: str, psid: str) -> Result:
        """The user's Messenger shows the page's messages: delivery, then read (§2.7)."""
        with self.lock:
            page = self._page_or_404(page_id)
            thread = self._thread_or_404(page_id, psid)
            now = self.clock.now_ms()
            self._refresh(thread, now)
            unseen = [
                e
                for e in thread.transcript
                if e["kind"] == "message"
                and e["author"] != "user"
                and e["timestamp"] > thread.delivered_watermark
            ]
            if not unseen:
                return Result({"delivered": []})
            watermark = max(e["timestamp"] for e in unseen)
            thread.delivered_watermark = watermark
            # Meta's delivery example carries no timestamp (§2.7).
            delivery = {
                "sender": {"id": psid},
                "recipient": {"id": page_id},
                "delivery": {"mids": [e["mid"] for e in unseen], "watermark": watermark},
            }
            read = self._user_event(thread, now, read={"watermark": watermark})
            hooks = self._route(page, thread, delivery, "message_deliveries", now)
            hooks += self._route(page, thread, read, "message_reads", now)
            return Result({"delivered": [e["mid"] for e in unseen]}, hooks)

    def _user_opens(self, page: PageConfig, thread: Thread, now: int) -> str | None:
        """A user message or tap: opens the window; routes an idle CR thread.

        Returns the routing note for the transcript (added after the user's entry).
        """
        thread.last_user_at = now
        thread.typing_app_id = None
        if page.mode == "cr" and thread.owner is None and page.primary_app_id:
            # [doc] §6.2: organic messages on an idle thread go to the default app,
            # which then controls the thread. [conv] no webhook announces it.
            self._set_owner(thread, page.primary_app_id, now)
            return f"Routed to {self._app_name(page.primary_app_id)} (default app)"
        return None

    def _find_choice(self, thread: Thread, ref: tuple[str, int], kind: str) -> dict[str, Any]:
        mid, index = ref
        for entry in thread.transcript:
            if entry.get("mid") == mid and entry["author"] != "user":
                choices: list[dict[str, Any]] = entry.get(kind) or []
                if 0 <= index < len(choices):
                    return choices[index]
                break
        raise EmulatorError(f"no such {kind[:-1].replace('_', ' ')} on message {mid}")

    # --- Graph API -------------------------------------------------------------

    def app_for_token(self, token: str | None) -> str | None:
        found = self.tokens.get(token or "")
        return found[0] if found else None

    def graph(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        access_token: str | None,
        appsecret_proof: str | None = None,
    ) -> Result:
        """One Graph API call (path without the version prefix, e.g. `/me/messages`).

        Never raises PlatformRefusal: errors come back as a Result with Graph's envelope.
        """
        with self.lock:
            try:
                app, page = self._authenticate(access_token, appsecret_proof)
                return self._dispatch(method.upper(), path, params, app, page)
            except PlatformRefusal as error:
                return Result(error.envelope(self.fbtrace_id()), status=error.status)

    def _authenticate(self, token: str | None, proof: str | None) -> tuple[AppConfig, PageConfig]:
        if not token:
            raise PlatformRefusal(104, "An access token is required to request this resource.")
        found = self.tokens.get(token)
        if found is None:
            raise PlatformRefusal(190, "Invalid OAuth access token - Cannot parse access token")
        app = self.apps[found[0]]
        if proof:
            expected = hmac.new(app.secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(proof.lower(), expected):
                raise invalid("Invalid appsecret_proof provided in the API argument")
        elif app.require_appsecret_proof:
            raise invalid("API calls from the server require an appsecret_proof argument")
        return app, self.pages[found[1]]

    def _dispatch(
        self, method: str, path: str, params: dict[str, Any], app: AppConfig, page: PageConfig
    ) -> Result:
        parts = [p for p in path.split("/") if p]
        if not parts or len(parts) > 2:
            raise PlatformRefusal(2500, f"Unknown path components: {path}")
        node, edge = parts[0], (parts[1] if len(parts) == 2 else None)
        if node == "me" or node == page.page_id:
            return self._page_call(method, edge, params, app, page)
        if node in self.pages:
            # A page node with another page's token.
            raise invalid("The access token does not belong to this page", 33)
        if edge is None and (page.page_id, node) in self.users:
            if method != "GET":
                raise invalid(f"Unsupported {method.lower()} request.")
            return self._profile(app, self.users[(page.page_id, node)], params)
        persona = self.personas.get(node)
        if edge is None and persona is not None and persona["page_id"] == page.page_id:
            if method not in ("GET", "DELETE"):
                raise invalid(f"Unsupported {method.lower()} request.")
            if method == "DELETE":
                del self.personas[node]
                return Result({"success": True})
            public = {k: v for k, v in persona.items() if k != "page_id"}
            return Result(public)
        raise invalid(
            f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation",
            33,
        )

    def _page_call(
        self,
        method: str,
        edge: str | None,
        params: dict[str, Any],
        app: AppConfig,
        page: PageConfig,
    ) -> Result:
        posts = {
            "messages": self._send,
            "pass_thread_control": self._pass_call,
            "take_thread_control": self._take_call,
            "request_thread_control": self._request_call,
            "release_thread_control": self._release_call,
            "extend_thread_control": self._extend_call,
        }
        gets = {
            None: self._page_info,
            "thread_owner": self._thread_owner,
            "secondary_receivers": self._secondary_receivers,
            "personas": self._personas_list,
            "subscribed_apps": self._subscribed_apps,
        }
        if method == "POST" and edge in posts:
            return posts[edge](app, page, params)
        if method == "GET" and edge in gets:
            return gets[edge](app, page, params)
        if method == "POST" and edge == "personas":
            return self._persona_create(app, page, params)
        if method == "POST" and edge == "subscribed_apps":
            return self._subscribe_call(app, page, params)
        if method == "DELETE" and edge == "subscribed_apps":
            self.subscriptions[(app.app_id, page.page_id)].active = False
            return Result({"success": True})
        if edge in posts or edge in gets or edge in ("personas", "subscribed_apps"):
            raise invalid(f"Unsupported {method.lower()} request.")
        raise PlatformRefusal(2500, f"Unknown path components: /{edge}")

    # --- parameters ----------------------------------------------------------------

    @staticmethod
    def _json_param(params: dict[str, Any], name: str) -> Any:
        """Form and query parameters carry objects as JSON strings (Meta's curl samples
        even use single quotes); a JSON body carries them as objects."""
        value = params.get(name)
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                return json.loads(value)
            except ValueError:
                try:
                    return json.loads(value.replace("'", '"'))
                except ValueError:
                    raise invalid(f"Param {name} must be a JSON object") from None
        return value

    def _recipient(self, page: PageConfig, params: dict[str, Any], now: int) -> tuple[User, Thread]:
        recipient = self._json_param(params, "recipient")
        if isinstance(recipient, dict):
            psid = recipient.get("id")
            if psid is None:
                raise invalid("The parameter recipient must have an id")
        elif isinstance(recipient, str | int) and str(recipient).strip():
            psid = recipient
        else:
            raise invalid("The parameter recipient is required")
        key = (page.page_id, str(psid))
        if key not in self.users:
            raise invalid("No matching user found", 2018001)
        thread = self.threads[key]
        self._refresh(thread, now)
        return self.users[key], thread

    @staticmethod
    def _metadata(params: dict[str, Any], name: str = "metadata") -> str | None:
        value = params.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid(f"Param {name} must be a string")
        # [conv] 1000 characters, like the Send API's message.metadata (§7.3).
        if len(value) > 1000:
            raise invalid(f"Param {name} must be at most 1000 characters long")
        return value

    @staticmethod
    def _app_id_param(params: dict[str, Any], name: str) -> str | None:
        value = params.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not str(value).isdigit():
            raise invalid(f"Param {name} must be a valid app id")
        return str(value)

    # --- Send API ---------------------------------------------------------------

    def _check_rate(self, page: PageConfig) -> None:
        limit = self.config.send_rate_limit_per_second
        if not limit:
            return
        times = self._send_times.setdefault(page.page_id, deque())
        now = time.monotonic()
        while times and now - times[0] > 1.0:
            times.popleft()
        if len(times) >= limit:
            raise PlatformRefusal(613, "(#613) Calls to this API have exceeded the rate limit.")
        times.append(now)

    def _may_send(self, app: AppConfig, page: PageConfig, thread: Thread) -> bool:
        """[legacy/conv] §8.7: only the owner sends; idle CR: only the default app."""
        if page.mode == "cr-zero-config":
            return True  # "All applications can respond ... without restrictions"
        if thread.owner is not None:
            return thread.owner == app.app_id
        return page.mode == "cr" and app.app_id == page.primary_app_id

    def _send(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        self._check_rate(page)
        now = self.clock.now_ms()
        user, thread = self._recipient(page, params, now)
        action = params.get("sender_action")
        message = self._json_param(params, "message")
        if action is not None:
            return self._sender_action(app, page, thread, params, action, message, now)
        if not isinstance(message, dict):
            raise invalid("The parameter message is required")
        content = message_content(
            message,
            public_url=self.public_url,
            reusable_attachments=self.reusable_attachments,
        )
        metadata = self._metadata(message)
        messaging_type = params.get("messaging_type")
        if messaging_type not in MESSAGING_TYPES:
            raise invalid("param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        tag = params.get("tag")
        if messaging_type == "MESSAGE_TAG":
            if tag in DEPRECATED_TAGS:
                raise invalid(f"The tag {tag} is deprecated and can no longer be used")
            if tag not in VALID_TAGS:
                raise invalid("param tag must be a valid message tag")
        elif tag is not None:
            raise invalid("param tag is only allowed with messaging_type MESSAGE_TAG")
        notification = params.get("notification_type", "REGULAR")
        if notification not in NOTIFICATION_TYPES:
            raise invalid("param notification_type must be one of REGULAR, SILENT_PUSH, NO_PUSH")
        persona = None
        if params.get("persona_id") is not None:
            persona = self.personas.get(str(params["persona_id"]))
            if persona is None or persona["page_id"] != page.page_id:
                raise invalid("Invalid persona_id")
        control = self._json_param(params, "thread_control")
        if control is not None:
            control = self._thread_control_param(page, control)
        reply_to = self._json_param(params, "reply_to")
        if reply_to is not None:
            known = {e.get("mid") for e in thread.transcript}
            if not isinstance(reply_to, dict) or reply_to.get("mid") not in known:
                raise invalid("Invalid reply_to message id")

        if not self._may_send(app, page, thread):
            raise not_owner()
        self._check_window(app, thread, messaging_type, tag, now)

        mid = self._mid()
        thread.sent_by[mid] = app.app_id
        if thread.typing_app_id == app.app_id:
            thread.typing_app_id = None
        answer: dict[str, Any] = {"recipient_id": user.psid, "message_id": mid}
        if content.get("reusable"):
            attachment_id = self._numeric_id()
            self.reusable_attachments.add(attachment_id)
            answer["attachment_id"] = attachment_id
        entry = {
            "kind": "message",
            "author": self._role(app.app_id),
            "app_id": app.app_id,
            "app_name": app.name,
            "mid": mid,
            "text": content["text"],
            "attachments": content["attachments"],
            "cards": content["cards"],
            "buttons": content["buttons"],
            "quick_replies": content["quick_replies"],
            "persona": (
                {"name": persona["name"], "profile_picture_url": persona["profile_picture_url"]}
                if persona
                else None
            ),
            "messaging_type": messaging_type,
            "tag": tag,
            "metadata": metadata,
            "timestamp": now,
        }
        self._append(thread, entry)
        echo_message: dict[str, Any] = {"is_echo": True, "app_id": int(app.app_id)}
        if metadata is not None:
            echo_message["metadata"] = metadata
        echo_message["mid"] = mid
        if content["text"] is not None and not content["template"]:
            echo_message["text"] = content["text"]
        if content["echo_attachments"]:
            echo_message["attachments"] = content["echo_attachments"]
        echo = {
            "sender": {"id": page.page_id},
            "recipient": {"id": user.psid},
            "timestamp": now,
            "message": echo_message,
        }
        hooks = self._echo_hooks(page, thread, echo, now)
        if control is not None:
            # §3.5: the inline handover happens after the message is sent.
            if control["control_type"] == "release":
                self._release(app, page, thread, None, now)
            else:
                target = control.get("app_id") or page.primary_app_id
                hooks += self._pass(app, page, thread, target, None, now)
        return Result(answer, hooks)

    def _role(self, app_id: str) -> str:
        if app_id == PAGE_INBOX_APP_ID:
            return "inbox"
        app = self.apps.get(app_id)
        return app.role if app else "app"

    def _thread_control_param(self, page: PageConfig, control: Any) -> dict[str, Any]:
        if page.mode == "legacy":
            raise invalid("thread_control is only available with Conversation Routing")
        if not isinstance(control, dict):
            raise invalid("Param thread_control must be an object")
        kind = control.get("control_type", "release")  # "released by default" (§3.5)
        if kind not in ("release", "pass"):
            raise invalid("thread_control.control_type must be pass or release")
        app_id = self._app_id_param(control, "app_id")
        if kind == "pass" and app_id is None and not page.primary_app_id:
            raise invalid("thread_control.app_id is required without a default app")
        return {"control_type": kind, "app_id": app_id}

    def _check_window(
        self, app: AppConfig, thread: Thread, messaging_type: str, tag: str | None, now: int
    ) -> None:
        """[doc] §8.8: 24 h for RESPONSE/UPDATE, 7 days for HUMAN_AGENT (with the feature)."""
        last = thread.last_user_at
        if messaging_type == "MESSAGE_TAG" and tag == "HUMAN_AGENT":
            if not app.human_agent:
                # [conv] Meta's exact error is unpublished; a permissions error, not retried.
                raise permissions_error(
                    "the HUMAN_AGENT tag requires the Human Agent feature for this app"
                )
            limit = HUMAN_AGENT_WINDOW_MS
        else:
            limit = WINDOW_MS
        if last is None or now - last > limit:
            raise PlatformRefusal(10, OUTSIDE_WINDOW_MESSAGE, 2018278)

    def _sender_action(
        self,
        app: AppConfig,
        page: PageConfig,
        thread: Thread,
        params: dict[str, Any],
        action: Any,
        message: Any,
        now: int,
    ) -> Result:
        if message is not None:
            raise invalid("sender_action cannot be sent with a message")
        if action not in SENDER_ACTIONS:
            raise invalid(
                "param sender_action must be one of typing_on, typing_off, mark_seen, "
                "react, unreact"
            )
        for extra in ("messaging_type", "tag"):
            if extra in params:
                raise invalid(f"param {extra} cannot be sent with a sender_action")
        payload = self._json_param(params, "payload")
        if action in ("react", "unreact") and (
            not isinstance(payload, dict) or not payload.get("message_id")
        ):
            raise invalid("param payload.message_id is required for react and unreact")
        if not self._may_send(app, page, thread):
            raise not_owner()
        # [conv] sender actions are owner-checked, not window-checked (Meta is silent).
        if action == "typing_on":
            thread.typing_app_id, thread.typing_until = app.app_id, now + TYPING_MS
        elif action == "typing_off" and thread.typing_app_id == app.app_id:
            thread.typing_app_id = None
        elif action == "mark_seen":
            thread.seen_at = now
        elif action in ("react", "unreact"):
            assert isinstance(payload, dict)
            for entry in thread.transcript:
                if entry.get("mid") == payload["message_id"]:
                    entry["reaction"] = payload.get("reaction") if action == "react" else None
        return Result({"recipient_id": thread.psid})

    # --- thread control ---------------------------------------------------------

    def _valid_target(self, page: PageConfig, target: str | None) -> str:
        if target is None:
            raise invalid("The parameter target_app_id is required")
        if target in INBOX_APP_IDS:
            return target
        sub = self.subscriptions.get((target, page.page_id))
        if sub is None or not sub.active:
            raise invalid(f"Invalid target_app_id {target}: not an app of this page")
        return target

    def _pass(
        self,
        app: AppConfig,
        page: PageConfig,
        thread: Thread,
        target: str | None,
        metadata: str | None,
        now: int,
    ) -> list[Webhook]:
        """[doc] §8.9 pass_thread_control. Caller holds `lock` and has refreshed the thread."""
        owner = thread.owner
        # Idle: any app on a zero-config page, the default app on a CR page.
        default_app = page.mode == "cr" and app.app_id == page.primary_app_id
        idle_pass = owner is None and (page.mode == "cr-zero-config" or default_app)
        if owner != app.app_id and not idle_pass:
            raise not_owner()
        target = self._valid_target(page, target)
        if target == app.app_id and not idle_pass:
            raise invalid("Cannot pass thread control to the app that owns the thread")
        self._set_owner(thread, target, now)
        self._note(thread, now, f"{app.name} passed control to {self._app_name(target)}")
        notice: dict[str, Any] = {"previous_owner_app_id": owner, "new_owner_app_id": target}
        if metadata is not None:
            notice["metadata"] = metadata
        event = self._user_event(thread, now, pass_thread_control=notice)
        hooks = self._handover_hook(page, target, event, now)
        if self.config.pass_notifies_previous_owner and owner not in (None, target):
            hooks += self._handover_hook(page, owner, event, now)
        return hooks

    def _pass_call(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        now = self.clock.now_ms()
        _, thread = self._recipient(page, params, now)
        target = self._app_id_param(params, "target_app_id")
        metadata = self._metadata(params)
        return Result({"success": True}, self._pass(app, page, thread, target, metadata, now))

    def _may_take(self, app_id: str, page: PageConfig, thread: Thread) -> None:
        """[doc/legacy] §8.10: who may take control of this thread."""
        if page.mode == "cr-zero-config":
            raise permissions_error("take_thread_control is blocked without a default app")
        if app_id == PAGE_INBOX_APP_ID:
            return  # the Inbox takes control when a person replies in it (§6.2)
        if page.mode == "legacy":
            if app_id != page.primary_app_id:
                raise permissions_error("only the primary receiver may take thread control")
            return
        if thread.owner is None:
            return  # any app may take an idle thread
        if app_id not in page.take_control_app_ids:
            raise permissions_error("this app is not allowed to take control of conversations")

    def control_take(
        self, *, app_id: str, page_id: str, psid: str, metadata: str | None = None
    ) -> Result:
        """An app takes the thread now (the control page's "bot takes control" fault).

        Goes through the same rules as the Graph call; a refusal is an EmulatorError.
        """
        with self.lock:
            page = self._page_or_404(page_id)
            thread = self._thread_or_404(page_id, psid)
            app = self.apps.get(app_id)
            if app is None and app_id != PAGE_INBOX_APP_ID:
                raise EmulatorError(f"no app {app_id}", status=404)
            now = self.clock.now_ms()
            self._refresh(thread, now)
            try:
                hooks = self._take(app_id, page, thread, metadata, now)
            except PlatformRefusal as error:
                raise EmulatorError(error.message, status=409) from None
            return Result({"success": True}, hooks)

    def _take(
        self, app_id: str, page: PageConfig, thread: Thread, metadata: str | None, now: int
    ) -> list[Webhook]:
        self._may_take(app_id, page, thread)
        previous = thread.owner
        if previous == app_id:
            return []  # [conv] taking a thread you own changes nothing
        self._set_owner(thread, app_id, now)
        self._note(thread, now, f"{self._app_name(app_id)} took control")
        notice: dict[str, Any] = {"previous_owner_app_id": previous, "new_owner_app_id": app_id}
        if metadata is not None:
            notice["metadata"] = metadata
        event = self._user_event(thread, now, take_thread_control=notice)
        return self._handover_hook(page, previous, event, now)

    def _take_call(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        now = self.clock.now_ms()
        _, thread = self._recipient(page, params, now)
        metadata = self._metadata(params)
        return Result({"success": True}, self._take(app.app_id, page, thread, metadata, now))

    def _request_call(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        """[doc] §8.11: a non-owner asks; the owner (legacy: the primary) is told."""
        now = self.clock.now_ms()
        _, thread = self._recipient(page, params, now)
        metadata = self._metadata(params)
        if thread.owner == app.app_id:
            raise invalid("This app already owns the thread")
        if page.mode == "legacy" and app.app_id == page.primary_app_id:
            raise permissions_error("only secondary receivers may request thread control")
        if page.mode == "cr-zero-config" and thread.owner is None:
            if self.config.zero_config_request_grants:
                # "only the first application to invoke the API will receive control"
                self._set_owner(thread, app.app_id, now)
                self._note(thread, now, f"{app.name} requested control and got it (idle)")
                notice: dict[str, Any] = {
                    "previous_owner_app_id": None,
                    "new_owner_app_id": app.app_id,
                }
                if metadata is not None:
                    notice["metadata"] = metadata
                event = self._user_event(thread, now, pass_thread_control=notice)
                return Result({"success": True}, self._handover_hook(page, app.app_id, event, now))
            return Result({"success": True})
        if page.mode == "legacy":
            to = page.primary_app_id
        else:
            # [conv] an idle CR thread: the default app, which handles idle threads, decides.
            to = thread.owner if thread.owner is not None else page.primary_app_id
        self._note(thread, now, f"{app.name} requested control from {self._app_name(to)}")
        request: dict[str, Any] = {"requested_owner_app_id": int(app.app_id)}
        if metadata is not None:
            request["metadata"] = metadata
        event = self._user_event(thread, now, request_thread_control=request)
        return Result({"success": True}, self._handover_hook(page, to, event, now))

    def _release(
        self,
        app: AppConfig,
        page: PageConfig,
        thread: Thread,
        metadata: str | None,
        now: int,
    ) -> list[Webhook]:
        """[doc] §8.12. Caller holds `lock` and has refreshed the thread."""
        if thread.owner is None and page.mode == "cr" and app.app_id == page.primary_app_id:
            return []  # the default app "releasing" an idle thread: nothing to do
        if thread.owner != app.app_id:
            raise not_owner()
        if page.mode == "legacy":
            # [conv] legacy pages had no idle state: release hands the thread back to
            # the primary receiver, which is told as if it had been passed.
            if app.app_id == page.primary_app_id:
                return []
            return self._pass(app, page, thread, page.primary_app_id, metadata, now)
        self._set_owner(thread, None, now)
        self._note(thread, now, f"{app.name} released control (idle)")
        # [doc] the Send-API release sends no webhook; [conv] nor does the edge (§2.6).
        return []

    def _release_call(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        now = self.clock.now_ms()
        _, thread = self._recipient(page, params, now)
        metadata = self._metadata(params)
        hooks = self._release(app, page, thread, metadata, now)
        return Result({"success": True}, hooks)

    def _extend_call(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        """[doc] §3.6, §8.13: the owner keeps control for `duration` seconds (≤ 7 days)."""
        now = self.clock.now_ms()
        _, thread = self._recipient(page, params, now)
        if page.mode == "legacy":
            raise invalid("extend_thread_control is only available with Conversation Routing")
        if thread.owner != app.app_id:
            raise not_owner()
        duration = params.get("duration")
        try:
            seconds = -1 if isinstance(duration, bool) or duration is None else int(duration)
        except (TypeError, ValueError):
            seconds = -1
        if not 1 <= seconds <= MAX_EXTEND_SECONDS:
            raise invalid(f"Param duration must be between 1 and {MAX_EXTEND_SECONDS} seconds")
        current = self.expiration(thread) or now
        thread.extended_until = max(current, now + seconds * 1000)
        self._note(thread, now, f"{app.name} extended control")
        return Result({"success": True})

    def _thread_owner(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        """[doc] §3.7, §8.14: who owns the thread, as much as this app may see."""
        now = self.clock.now_ms()
        _, thread = self._recipient(page, params, now)
        if page.mode == "legacy":
            return Result({"data": [{"thread_owner": {"app_id": thread.owner}}]})
        if thread.owner is None:
            return Result({"data": []})
        expires = self.expiration(thread)
        seconds = (expires or 0) // 1000
        if app.app_id in (thread.owner, page.primary_app_id):
            return Result(
                {"data": [{"thread_owner": {"app_id": thread.owner, "expiration": seconds}}]}
            )
        # [conv] others learn only that the thread is owned, and until when.
        return Result({"data": [{"thread_owner": {"expiration": seconds}}]})

    def _secondary_receivers(
        self, app: AppConfig, page: PageConfig, params: dict[str, Any]
    ) -> Result:
        """[legacy] §8.15: the primary lists the other apps; others get a permissions error."""
        if app.app_id != page.primary_app_id:
            raise permissions_error("only the primary receiver may list secondary receivers")
        fields = self._fields_param(params, default="id,name")
        data = []
        for other in self._subscribed(page.page_id):
            if other.app_id == app.app_id:
                continue
            item = {"id": other.app_id, "name": other.name}
            data.append({k: v for k, v in item.items() if k in fields})
        return Result({"data": data})

    # --- other nodes -------------------------------------------------------------

    @staticmethod
    def _fields_param(params: dict[str, Any], *, default: str) -> list[str]:
        raw = params.get("fields") or default
        if not isinstance(raw, str):
            raise invalid("Param fields must be a comma-separated string")
        return [f.strip() for f in raw.split(",") if f.strip()]

    def _profile(self, app: AppConfig, user: User, params: dict[str, Any]) -> Result:
        """[doc] §5, §8.20: the basic fields; gated ones fail the whole request."""
        fields = self._fields_param(params, default="first_name,last_name,profile_pic")
        for name in fields:
            if name in GATED_PROFILE_FIELDS and name not in app.approved_profile_fields:
                raise invalid(
                    f"Requesting field {name} requires the {GATED_PROFILE_FIELDS[name]} "
                    "permission, which this app does not have"
                )
            if name not in PROFILE_FIELDS and name not in GATED_PROFILE_FIELDS:
                raise invalid(f"Tried accessing nonexisting field ({name}) on node type (User)")
        values = {
            "id": user.psid,
            "name": user.name,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "profile_pic": f"{self.public_url}/emulator/avatar/{user.page_id}/{user.psid}.svg",
            "locale": "en_US",
            "timezone": 0,
            "gender": "",
        }
        body = {name: values[name] for name in fields}
        body["id"] = user.psid
        return Result(body)

    def _page_info(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        fields = self._fields_param(params, default="id,name")
        values: dict[str, Any] = {
            "id": page.page_id,
            "name": page.name,
            "messaging_feature_status": {
                "hop_v2": False,
                "msgr_multi_app": page.mode != "legacy",
                "ig_multi_app": False,
            },
        }
        unknown = [f for f in fields if f not in values]
        if unknown:
            raise invalid(f"Tried accessing nonexisting field ({unknown[0]}) on node type (Page)")
        body = {name: values[name] for name in fields}
        body["id"] = page.page_id
        return Result(body)

    def _persona_create(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        name, picture = params.get("name"), params.get("profile_picture_url")
        if not isinstance(name, str) or not name.strip() or len(name) > 50:
            raise invalid("The parameter name is required (at most 50 characters)")
        if not isinstance(picture, str) or not URL.match(picture):
            raise invalid("The parameter profile_picture_url is required")
        persona_id = self._numeric_id()
        self.personas[persona_id] = {
            "name": name,
            "profile_picture_url": picture,
            "id": persona_id,
            "page_id": page.page_id,
        }
        return Result({"id": persona_id})

    def _personas_list(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        data = [
            {k: v for k, v in p.items() if k != "page_id"}
            for p in self.personas.values()
            if p["page_id"] == page.page_id
        ]
        return Result({"data": data})

    def _subscribed_apps(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        data = [
            {
                "category": "Business",
                "link": "",
                "name": other.name,
                "id": other.app_id,
                "subscribed_fields": sorted(self._fields(other.app_id, page.page_id)),
            }
            for other in self._subscribed(page.page_id)
        ]
        return Result({"data": data})

    def _subscribe_call(self, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
        """§1.6: the app (re)installs itself on the page, e.g. after being unsubscribed."""
        raw = params.get("subscribed_fields")
        if isinstance(raw, list):
            raw = ",".join(str(f) for f in raw)
        if not isinstance(raw, str) or not raw.strip():
            raise invalid("The parameter subscribed_fields is required")
        fields = frozenset(f.strip() for f in raw.split(",") if f.strip())
        self.subscriptions[(app.app_id, page.page_id)] = Subscription(fields)
        return Result({"success": True})

    # --- the emulator's own operations (control page) -------------------------------

    def subscription_set(self, *, app_id: str, page_id: str, active: bool) -> None:
        """Turn an app's webhooks for a page on or off (Meta unsubscribes failing apps)."""
        with self.lock:
            sub = self.subscriptions.get((app_id, page_id))
            if sub is None:
                raise EmulatorError(f"app {app_id} is not connected to page {page_id}", 404)
            sub.active = active

    def inbox_reply(self, *, page_id: str, psid: str, text: str) -> Result:
        """A person answers from the Page Inbox: the Inbox takes control, then sends.

        §6.2: replying in a conversation the Inbox does not control makes it take control.
        """
        with self.lock:
            page = self._page_or_404(page_id)
            thread = self._thread_or_404(page_id, psid)
            now = self.clock.now_ms()
            self._refresh(thread, now)
            text = text.strip()
            if not text:
                raise EmulatorError("text is required")
            if now - (thread.last_user_at or -WINDOW_MS - 1) > WINDOW_MS:
                raise EmulatorError("the 24-hour window is closed", status=409)
            hooks: list[Webhook] = []
            if page.mode != "cr-zero-config":
                hooks += self._take(PAGE_INBOX_APP_ID, page, thread, None, now)
            mid = self._mid()
            thread.sent_by[mid] = PAGE_INBOX_APP_ID
            entry = self._append(
                thread,
                {
                    "kind": "message",
                    "author": "inbox",
                    "app_id": PAGE_INBOX_APP_ID,
                    "app_name": "Page Inbox",
                    "mid": mid,
                    "text": text,
                    "attachments": [],
                    "cards": [],
                    "buttons": [],
                    "quick_replies": [],
                    "persona": None,
                    "timestamp": now,
                },
            )
            echo = {
                "sender": {"id": page_id},
                "recipient": {"id": psid},
                "timestamp": now,
                "message": {
                    "is_echo": True,
                    "app_id": int(PAGE_INBOX_APP_ID),
                    "mid": mid,
                    "text": text,
                },
            }
            hooks += self._echo_hooks(page, thread, echo, now)
            return Result(entry, hooks)

    def primary_set(self, *, page_id: str, app_id: str) -> Result:
        """Change the primary receiver / default app; [doc] §8.16 `app_roles` webhooks."""
        with self.lock:
            page = self._page_or_404(page_id)
            if (app_id, page_id) not in self.subscriptions:
                raise EmulatorError(f"app {app_id} is not connected to page {page_id}", 404)
            if page.mode == "cr-zero-config":
                raise EmulatorError("a zero-config page has no default app", 409)
            previous = page.primary_app_id
            page.primary_app_id = app_id
            now = self.clock.now_ms()
            hooks: list[Webhook] = []
            if page.mode == "legacy" and previous != app_id:
                roles = ((app_id, "primary_receiver"), (previous, "secondary_receiver"))
                for changed, role in roles:
                    if changed is None:
                        continue
                    event = {
                        "recipient": {"id": page_id},
                        "timestamp": now,
                        "app_roles": {changed: [role]},
                    }
                    hooks += self._handover_hook(page, changed, event, now)
            return Result({"primary_app_id": app_id}, hooks)

    # --- views (customer page, control page, tests) -----------------------------------

    def thread_view(self, *, page_id: str, psid: str, after: int = 0) -> dict[str, Any]:
        with self.lock:
            page = self._page_or_404(page_id)
            thread = self._thread_or_404(page_id, psid)
            now = self.clock.now_ms()
            self._refresh(thread, now)
            user = self.users[(page_id, psid)]
            typing = None
            if thread.typing_app_id and thread.typing_until > now:
                typing = {
                    "app_id": thread.typing_app_id,
                    "name": self._app_name(thread.typing_app_id),
                    "author": self._role(thread.typing_app_id),
                }
            return {
                "page": {"id": page.page_id, "name": page.name, "mode": page.mode},
                "user": self.user_json(user),
                "owner": (
                    {
                        "app_id": thread.owner,
                        "name": self._app_name(thread.owner),
                        "author": self._role(thread.owner),
                    }
                    if thread.owner
                    else None
                ),
                "expiration": self.expiration(thread),
                "last_user_at": thread.last_user_at,
                "window_open": thread.last_user_at is not None
                and now - thread.last_user_at <= WINDOW_MS,
                "human_agent_window_open": thread.last_user_at is not None
                and now - thread.last_user_at <= HUMAN_AGENT_WINDOW_MS,
                "typing": typing,
                "seen_at": thread.seen_at,
                "now": now,
                # Copies: the caller serializes them after the lock is released.
                "messages": [copy.deepcopy(e) for e in thread.transcript if e["seq"] > after],
            }

    def user_json(self, user: User) -> dict[str, Any]:
        return {
            "psid": user.psid,
            "page_id": user.page_id,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "name": user.name,
            "profile_pic": f"{self.public_url}/emulator/avatar/{user.page_id}/{user.psid}.svg",
        }

    def state_view(self) -> dict[str, Any]:
        """Everything the control page shows (but deliveries, which the dispatcher has)."""
        with self.lock:
            now = self.clock.now_ms()
            threads = []
            for (page_id, psid), thread in self.threads.items():
                self._refresh(thread, now)
                last = thread.last_user_at
                threads.append(
                    {
                        "page_id": page_id,
                        "psid": psid,
                        "user": self.users[(page_id, psid)].name,
                        "owner": thread.owner,
                        "owner_name": self._app_name(thread.owner) if thread.owner else None,
                        "expiration": self.expiration(thread),
                        "last_user_at": last,
                        "window_open": last is not None and now - last <= WINDOW_MS,
                        "human_agent_window_open": last is not None
                        and now - last <= HUMAN_AGENT_WINDOW_MS,
                        "messages": sum(1 for e in thread.transcript if e["kind"] != "event"),
                    }
                )
            return {
                "now": now,
                "clock_offset_seconds": self.clock.offset_seconds,
                "pages": [
                    {
                        "id": p.page_id,
                        "name": p.name,
                        "mode": p.mode,
                        "primary_app_id": p.primary_app_id,
                        "take_control_app_ids": sorted(p.take_control_app_ids),
                    }
                    for p in self.pages.values()
                ],
                "apps": [
                    {
                        "app_id": a.app_id,
                        "name": a.name,
                        "role": a.role,
                        "callback_url": a.callback_url,
                        "in_process": a.handler is not None,
                        "human_agent": a.human_agent,
                        "subscriptions": [
                            {
                                "page_id": page_id,
                                "active": sub.active,
                                "fields": sorted(sub.fields),
                            }
                            for (app_id, page_id), sub in self.subscriptions.items()
                            if app_id == a.app_id
                        ],
                    }
                    for a in self.apps.values()
                ],
                "users": [self.user_json(u) for u in self.users.values()],
                "threads": threads,
            }

    def owner(self, *, page_id: str, psid: str) -> str | None:
        """The thread's owner now (after any lapse); None when idle."""
        with self.lock:
            thread = self._thread_or_404(page_id, psid)
            self._refresh(thread, self.clock.now_ms())
            return thread.owner


def appsecret_proof(secret: str, token: str) -> str:
    """HMAC-SHA256(app secret, access token), hex: what Graph checks (§4.8)."""
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
