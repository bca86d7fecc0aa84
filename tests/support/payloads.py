"""Webhook payloads shaped like Meta's (messenger-platform.md §1-2), and their signing."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from typing import Any

APP_ID = "100000000000001"  # the helpdesk (tests/settings.py)
APP_SECRET = "test-app-secret"
PAGE_ID = "1000000000000001"
BOT_APP_ID = "200000000000002"
PAGE_INBOX_APP_ID = "263902037430900"
PSID = "3000000000000003"
T0 = 1_800_000_000_000  # ms

_mids = itertools.count(1)


def body_bytes(payload: dict[str, Any]) -> bytes:
    # Meta escapes non-ASCII (\u00e4) and signs those exact bytes.
    return json.dumps(payload, ensure_ascii=True).encode()


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(
    *events: dict[str, Any], channel: str = "messaging", page_id: str = PAGE_ID
) -> dict[str, Any]:
    return {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": max([e.get("timestamp", T0) for e in events] or [T0]),
                channel: list(events),
            }
        ],
    }


def new_mid() -> str:
    return f"m_test_{next(_mids)}"


def user_message(
    text: str,
    *,
    ts: int,
    psid: str = PSID,
    mid: str | None = None,
    quick_reply: str | None = None,
    page_id: str = PAGE_ID,
) -> dict[str, Any]:
    message: dict[str, Any] = {"mid": mid or new_mid(), "text": text}
    if quick_reply is not None:
        message["quick_reply"] = {"payload": quick_reply}
    return {
        "sender": {"id": psid},
        "recipient": {"id": page_id},
        "timestamp": ts,
        "message": message,
    }


def echo(
    text: str,
    *,
    ts: int,
    app_id: str = BOT_APP_ID,
    psid: str = PSID,
    mid: str | None = None,
    metadata: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "is_echo": True,
        "app_id": int(app_id),
        "mid": mid or new_mid(),
        "text": text,
    }
    if metadata is not None:
        message["metadata"] = metadata
    return {
        "sender": {"id": PAGE_ID},
        "recipient": {"id": psid},
        "timestamp": ts,
        "message": message,
    }


def postback(
    title: str, *, ts: int, payload: str | None = None, psid: str = PSID, mid: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"mid": mid or new_mid(), "title": title}
    if payload is not None:
        body["payload"] = payload
    return {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": ts, "postback": body}


def pass_control(
    *,
    ts: int,
    new_owner: str = APP_ID,
    previous_owner: str | None = BOT_APP_ID,
    metadata: str = "",
    psid: str = PSID,
) -> dict[str, Any]:
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": ts,
        "pass_thread_control": {
            "previous_owner_app_id": previous_owner,
            "new_owner_app_id": new_owner,
            "metadata": metadata,
        },
    }


def take_control(
    *,
    ts: int,
    new_owner: str = BOT_APP_ID,
    previous_owner: str = APP_ID,
    metadata: str = "",
    psid: str = PSID,
) -> dict[str, Any]:
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": ts,
        "take_thread_control": {
            "previous_owner_app_id": previous_owner,
            "new_owner_app_id": new_owner,
            "metadata": metadata,
        },
    }


def request_control(
    *, ts: int, requested_owner: str = BOT_APP_ID, metadata: str = "", psid: str = PSID
) -> dict[str, Any]:
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": ts,
        "request_thread_control": {
            "requested_owner_app_id": int(requested_owner),
            "metadata": metadata,
        },
    }


def read(*, ts: int, watermark: int, psid: str = PSID) -> dict[str, Any]:
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": ts,
        "read": {"watermark": watermark},
    }


def delivered(*, mids: list[str], watermark: int, psid: str = PSID) -> dict[str, Any]:
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "delivery": {"mids": mids, "watermark": watermark},
    }
