"""The demo bot: the page's primary receiver / default app, running inside the emulator.

It is an ordinary app to the platform: it gets signed webhooks (through the same
dispatcher, in-process), checks the signature, and acts through Graph calls made with
its own page token, so every platform rule applies to it as to the helpdesk.

Behaviour (issue 3, point 3):
- on a message or postback it owns: greets, answers a few canned questions (opening
  hours, shipping, returns), and always offers a "Talk to a human" postback button and
  quick reply (payload `TALK_TO_HUMAN`);
- when the user asks for a human it says a person will join, and does not pass by itself:
  the helpdesk (on standby) asks with `request_thread_control`, and the bot passes
  control to the requester. With `passes_on_button` it passes on its own instead;
- when control comes back (`pass_thread_control` naming the bot) it welcomes the user
  back;
- it ignores what it receives on standby, and events it has already handled (Meta may
  deliver twice).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from webhooks.emulator.config import AppConfig
from webhooks.emulator.platform import Result

logger = logging.getLogger(__name__)

TALK_TO_HUMAN = "TALK_TO_HUMAN"
HUMAN_TITLE = "Talk to a human"

GREETING = (
    "Hi! I'm the {page} bot. I can tell you our opening hours or how shipping works, "
    "or find you a person."
)
ANSWERS = {
    "HOURS": "We're open Monday to Friday, 9:00 to 18:00, and Saturday 10:00 to 14:00.",
    "SHIPPING": "Orders ship within 1 business day; delivery takes 2 to 4 days.",
    "RETURNS": "You can return anything within 30 days for a full refund.",
}
KEYWORDS = {
    "HOURS": ("hour", "open", "close"),
    "SHIPPING": ("ship", "deliver", "parcel", "track"),
    "RETURNS": ("return", "refund"),
}
ASKING_FOR_HUMAN = "OK! A person from our team will join this conversation shortly."
PASSING = "Connecting you with a person from our team…"
WELCOME_BACK = "Welcome back! The bot is here again. Anything else I can help with?"
HANDOVER_METADATA = "demo-bot: the user asked for a person"

GraphCaller = Callable[..., Result]


class DemoBot:
    """An in-process app; `handle` is its webhook endpoint."""

    def __init__(
        self,
        *,
        app: AppConfig,
        graph: GraphCaller,
        page_names: Mapping[str, str],
        passes_on_button: bool = False,
        handover_app_id: str | None = None,
    ) -> None:
        self.app = app
        self._graph = graph
        self._page_names = dict(page_names)
        self.passes_on_button = passes_on_button
        self.handover_app_id = handover_app_id
        self._seen: deque[str] = deque(maxlen=5000)
        self._seen_set: set[str] = set()
        self._lock = threading.Lock()

    # --- the webhook endpoint --------------------------------------------------------

    def handle(self, body: bytes, headers: Mapping[str, str]) -> int:
        """Verify like any receiver (raw bytes, own secret), then act; returns HTTP status."""
        expected = "sha256=" + hmac.new(self.app.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("X-Hub-Signature-256", ""), expected):
            return 403
        payload = json.loads(body)
        for entry in payload.get("entry") or []:
            page_id = str(entry.get("id"))
            # Standby is for information only: the bot acts only on what it owns.
            for event in entry.get("messaging") or []:
                if self._first_time(event):
                    self._on_event(page_id, event)
        return 200

    def _first_time(self, event: dict[str, Any]) -> bool:
        message = event.get("message") or event.get("postback") or {}
        key = message.get("mid") or json.dumps(event, sort_keys=True)
        with self._lock:
            if key in self._seen_set:
                return False
            if len(self._seen) == self._seen.maxlen:
                self._seen_set.discard(self._seen[0])
            self._seen.append(key)
            self._seen_set.add(key)
            return True

    def _on_event(self, page_id: str, event: dict[str, Any]) -> None:
        psid = str((event.get("sender") or {}).get("id"))
        message = event.get("message")
        if isinstance(message, dict):
            if message.get("is_echo"):
                return
            payload = (message.get("quick_reply") or {}).get("payload")
            self._on_user(page_id, psid, payload=payload, text=message.get("text") or "")
        elif isinstance(event.get("postback"), dict):
            postback = event["postback"]
            self._on_user(
                page_id, psid, payload=postback.get("payload"), text=postback.get("title") or ""
            )
        elif isinstance(event.get("request_thread_control"), dict):
            requester = str(event["request_thread_control"].get("requested_owner_app_id"))
            self._pass(page_id, psid, requester)
        elif isinstance(event.get("pass_thread_control"), dict) and (
            str(event["pass_thread_control"].get("new_owner_app_id")) == self.app.app_id
        ):
            self._say(page_id, psid, WELCOME_BACK)

    def _on_user(self, page_id: str, psid: str, *, payload: str | None, text: str) -> None:
        topic = payload if payload in ANSWERS or payload == TALK_TO_HUMAN else None
        lowered = text.lower()
        if topic is None and ("human" in lowered or "person" in lowered or "agent" in lowered):
            topic = TALK_TO_HUMAN
        if topic is None:
            topic = next(
                (name for name, words in KEYWORDS.items() if any(w in lowered for w in words)),
                None,
            )
        if topic == TALK_TO_HUMAN:
            if self.passes_on_button and self.handover_app_id:
                self._say(page_id, psid, PASSING, offer=False)
                self._pass(page_id, psid, self.handover_app_id)
            else:
                # The helpdesk sees the tap on standby and asks for the thread.
                self._say(page_id, psid, ASKING_FOR_HUMAN, offer=False)
        elif topic is not None:
            self._say(page_id, psid, ANSWERS[topic])
        else:
            page = self._page_names.get(page_id, "page")
            self._say(page_id, psid, GREETING.format(page=page))

    # --- Graph calls -------------------------------------------------------------------

    def _call(self, page_id: str, path: str, params: dict[str, Any]) -> Result | None:
        token = self.app.page_tokens.get(page_id)
        if token is None:
            return None
        result = self._graph("POST", path, params, access_token=token)
        if result.status != 200:
            # A bot whose call is refused (window closed, lost control) just stays quiet.
            logger.info("demo bot: %s refused: %s", path, result.body.get("error"))
            return None
        return result

    def _say(self, page_id: str, psid: str, text: str, *, offer: bool = True) -> None:
        recipient = {"id": psid}
        self._call(page_id, "/me/messages", {"recipient": recipient, "sender_action": "typing_on"})
        message: dict[str, Any]
        if offer:
            message = {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": text,
                        "buttons": [
                            {"type": "postback", "title": HUMAN_TITLE, "payload": TALK_TO_HUMAN}
                        ],
                    },
                },
                "quick_replies": [
                    {"content_type": "text", "title": "Opening hours", "payload": "HOURS"},
                    {"content_type": "text", "title": "Shipping", "payload": "SHIPPING"},
                    {"content_type": "text", "title": HUMAN_TITLE, "payload": TALK_TO_HUMAN},
                ],
            }
        else:
            message = {"text": text}
        message["metadata"] = "demo-bot"
        self._call(
            page_id,
            "/me/messages",
            {"recipient": recipient, "messaging_type": "RESPONSE", "message": message},
        )

    def _pass(self, page_id: str, psid: str, target_app_id: str) -> None:
        self._call(
            page_id,
            "/me/pass_thread_control",
            {
                "recipient": {"id": psid},
                "target_app_id": target_app_id,
                "metadata": HANDOVER_METADATA,
            },
        )
