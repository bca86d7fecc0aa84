"""Meta's webhook payloads, parsed into typed events.

Parsing never raises on a well-formed JSON object: anything it does not understand
becomes an `UnknownEvent`, which is stored and ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

CHANNEL_MESSAGING = "messaging"
CHANNEL_STANDBY = "standby"


def _str_id(value: Any) -> str:
    """App ids and PSIDs arrive as strings or numbers; they are kept as strings."""
    if value is None:
        return ""
    return str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _timestamp(raw: dict[str, Any], fallback: int) -> int:
    value = raw.get("timestamp", fallback)
    try:
        return int(value)
    except (TypeError, ValueError):
        return fallback


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event has: its page, its user, when, and on which channel."""

    page_id: str
    psid: str
    timestamp: int
    channel: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    kind = "event"

    @property
    def key(self) -> str:
        """The dedupe key: the same event delivered twice has the same key."""
        digest = hashlib.sha256(
            json.dumps(self.raw, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()[:32]
        return f"{self.kind}:{self.page_id}:{self.psid}:{self.timestamp}:{digest}"


@dataclass(frozen=True, kw_only=True)
class Attachment:
    type: str
    url: str = ""
    title: str = ""
    payload: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "url": self.url, "title": self.title}


def _attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    result = []
    for item in _list(message.get("attachments")):
        if not isinstance(item, dict):
            continue
        payload = _dict(item.get("payload"))
        result.append(
            Attachment(
                type=str(item.get("type", "")),
                url=str(payload.get("url") or item.get("url") or ""),
                title=str(item.get("title") or payload.get("title") or ""),
                payload=payload,
            )
        )
    return tuple(result)


@dataclass(frozen=True, kw_only=True)
class MessageEvent(Event):
    """A message the user sent to the Page."""

    mid: str
    text: str
    quick_reply_payload: str
    attachments: tuple[Attachment, ...]

    kind = "message"

    @property
    def key(self) -> str:
        return f"message:{self.mid}"


@dataclass(frozen=True, kw_only=True)
class EchoEvent(Event):
    """A copy of a message the Page sent, by any app or a person in the Page Inbox."""

    mid: str
    app_id: str
    metadata: str
    text: str
    attachments: tuple[Attachment, ...]

    kind = "echo"

    @property
    def key(self) -> str:
        return f"echo:{self.mid}"


@dataclass(frozen=True, kw_only=True)
class PostbackEvent(Event):
    """A button tap. On standby the payload is absent: only the title is there."""

    mid: str
    title: str
    payload: str

    kind = "postback"

    @property
    def key(self) -> str:
        if self.mid:
            return f"postback:{self.mid}"
        return super().key


@dataclass(frozen=True, kw_only=True)
class PassThreadControlEvent(Event):
    previous_owner_app_id: str
    new_owner_app_id: str
    metadata: str

    kind = "pass_thread_control"

    @property
    def key(self) -> str:
        return f"pass:{self.page_id}:{self.psid}:{self.timestamp}:{self.new_owner_app_id}"


@dataclass(frozen=True, kw_only=True)
class TakeThreadControlEvent(Event):
    previous_owner_app_id: str
    new_owner_app_id: str
    metadata: str

    kind = "take_thread_control"

    @property
    def key(self) -> str:
        return f"take:{self.page_id}:{self.psid}:{self.timestamp}:{self.new_owner_app_id}"


@dataclass(frozen=True, kw_only=True)
class RequestThreadControlEvent(Event):
    requested_owner_app_id: str
    metadata: str

    kind = "request_thread_control"

    @property
    def key(self) -> str:
        return f"request:{self.page_id}:{self.psid}:{self.timestamp}:{self.requested_owner_app_id}"


@dataclass(frozen=True, kw_only=True)
class ReadEvent(Event):
    watermark: int

    kind = "read"

    @property
    def key(self) -> str:
        return f"read:{self.page_id}:{self.psid}:{self.watermark}"


@dataclass(frozen=True, kw_only=True)
class DeliveryEvent(Event):
    watermark: int
    mids: tuple[str, ...]

    kind = "delivery"

    @property
    def key(self) -> str:
        mids = hashlib.sha256(",".join(self.mids).encode()).hexdigest()[:16]
        return f"delivery:{self.page_id}:{self.psid}:{self.watermark}:{mids}"


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """Anything else (reactions, referrals, app_roles, future kinds): stored, ignored."""

    kind = "unknown"


def _template_text(message: dict[str, Any]) -> str:
    """The text of a template a bot sent (a button template carries it in its payload)."""
    for item in _list(message.get("attachments")):
        payload = _dict(_dict(item).get("payload"))
        if _dict(item).get("type") == "template" and payload.get("text"):
            return str(payload["text"])
    return ""


def _parse_event(raw: dict[str, Any], *, page_id: str, channel: str, entry_time: int) -> Event:
    ts = _timestamp(raw, entry_time)
    sender = _str_id(_dict(raw.get("sender")).get("id"))
    recipient = _str_id(_dict(raw.get("recipient")).get("id"))
    common: dict[str, Any] = {"page_id": page_id, "timestamp": ts, "channel": channel, "raw": raw}

    message = raw.get("message")
    if isinstance(message, dict) and message.get("mid"):
        if message.get("is_echo"):
            # Echoes go Page -> user: the user is the recipient.
            return EchoEvent(
                psid=recipient,
                mid=str(message["mid"]),
                app_id=_str_id(message.get("app_id")),
                metadata=str(message.get("metadata") or ""),
                text=str(message.get("text") or _template_text(message)),
                attachments=_attachments(message),
                **common,
            )
        quick_reply = _dict(message.get("quick_reply"))
        return MessageEvent(
            psid=sender,
            mid=str(message["mid"]),
            text=str(message.get("text") or ""),
            quick_reply_payload=str(quick_reply.get("payload") or ""),
            attachments=_attachments(message),
            **common,
        )

    postback = raw.get("postback")
    if isinstance(postback, dict):
        return PostbackEvent(
            psid=sender,
            mid=str(postback.get("mid") or ""),
            title=str(postback.get("title") or ""),
            payload=str(postback.get("payload") or ""),
            **common,
        )

    for name, cls in (
        ("pass_thread_control", PassThreadControlEvent),
        ("take_thread_control", TakeThreadControlEvent),
    ):
        body = raw.get(name)
        if isinstance(body, dict):
            return cls(
                psid=sender,
                previous_owner_app_id=_str_id(body.get("previous_owner_app_id")),
                new_owner_app_id=_str_id(body.get("new_owner_app_id")),
                metadata=str(body.get("metadata") or ""),
                **common,
            )

    body = raw.get("request_thread_control")
    if isinstance(body, dict):
        return RequestThreadControlEvent(
            psid=sender,
            requested_owner_app_id=_str_id(body.get("requested_owner_app_id")),
            metadata=str(body.get("metadata") or ""),
            **common,
        )

    read = raw.get("read")
    if isinstance(read, dict) and "watermark" in read:
        return ReadEvent(
            psid=sender, watermark=_timestamp({"timestamp": read["watermark"]}, 0), **common
        )

    delivery = raw.get("delivery")
    if isinstance(delivery, dict) and "watermark" in delivery:
        mids = tuple(str(m) for m in _list(delivery.get("mids")))
        return DeliveryEvent(
            psid=sender,
            watermark=_timestamp({"timestamp": delivery["watermark"]}, 0),
            mids=mids,
            **common,
        )

    return UnknownEvent(psid=sender or recipient, **common)


def parse_delivery(payload: Any) -> list[Event]:
    """All events of a delivery, in timestamp order (stable for equal timestamps).

    Meta says to order by `timestamp`: after failed deliveries, events may arrive
    out of order.
    """
    events: list[Event] = []
    if not isinstance(payload, dict):
        return events
    entries = payload.get("entry") if payload.get("object") == "page" else None
    if not isinstance(entries, list):
        events.append(
            UnknownEvent(page_id="", psid="", timestamp=0, channel="", raw={"body": payload})
        )
        return events
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        page_id = _str_id(entry.get("id"))
        entry_time = _timestamp({"timestamp": entry.get("time")}, 0)
        for channel in (CHANNEL_MESSAGING, CHANNEL_STANDBY):
            for raw in _list(entry.get(channel)):
                if isinstance(raw, dict):
                    events.append(
                        _parse_event(raw, page_id=page_id, channel=channel, entry_time=entry_time)
                    )
        for other in set(entry) - {"id", "time", CHANNEL_MESSAGING, CHANNEL_STANDBY}:
            events.append(
                UnknownEvent(
                    page_id=page_id,
                    psid="",
                    timestamp=entry_time,
                    channel=other,
                    raw={other: entry[other]},
                )
            )
    events.sort(key=lambda e: e.timestamp)
    return events
