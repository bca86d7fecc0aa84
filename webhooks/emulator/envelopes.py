"""What a webhook POST carries: Meta's envelope, its exact bytes, and their signature.

What Meta does (messenger-platform.md §1.3-1.4, §8.1) and what this copies:
- one entry per event in the envelope (§1.3: "it will only contain one");
- the body is JSON with non-ASCII escaped (`\\u00e4`, lowercase hex) and, like Meta's
  PHP-style encoder, `/` escaped as `\\/`;
- it is signed over those exact bytes with the receiving app's secret:
  `X-Hub-Signature-256: sha256=<hex>` (and the legacy `X-Hub-Signature: sha1=<hex>`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from webhooks.emulator.platform import Webhook


def encode_body(payload: dict[str, Any], *, escape_slashes: bool = True) -> bytes:
    """Serialize like Meta: compact, ASCII only (`\\u00e4`), `/` as `\\/`."""
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    if escape_slashes:
        # Safe on serialized JSON: "/" can only occur inside strings.
        text = text.replace("/", "\\/")
    return text.encode("ascii")


def sign(secret: str, body: bytes) -> dict[str, str]:
    """The signature headers for `body`, keyed with the receiving app's secret."""
    sha256 = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    sha1 = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={sha256}", "X-Hub-Signature": f"sha1={sha1}"}


def envelope(hooks: list[Webhook]) -> dict[str, Any]:
    """Meta's envelope: one entry per event (§1.3: "it will only contain one")."""
    return {
        "object": "page",
        "entry": [{"id": h.page_id, "time": h.time, h.channel: [h.event]} for h in hooks],
    }


def event_kind(event: dict[str, Any]) -> str:
    """What an event is, for the delivery records: message, echo, postback, read..."""
    message = event.get("message")
    if isinstance(message, dict):
        return "echo" if message.get("is_echo") else "message"
    for kind in (
        "postback",
        "read",
        "delivery",
        "pass_thread_control",
        "take_thread_control",
        "request_thread_control",
        "app_roles",
    ):
        if kind in event:
            return kind
    return "unknown"
