"""Meta's webhook payloads, parsed into typed events (`webhooks.events`).

Parsing never raises on a well-formed JSON object: each event's JSON is made storable
first (`webhooks.sanitize`), then its fields are read with the limits below; anything
it does not understand becomes an `UnknownEvent` (stored and ignored), anything no
column could hold an `InvalidEvent` (likewise, with its problem).
"""

from __future__ import annotations

import time
from typing import Any

from webhooks.events import (
    CHANNEL_MESSAGING,
    CHANNEL_STANDBY,
    Attachment,
    DeliveryEvent,
    EchoEvent,
    Event,
    InvalidEvent,
    MessageEvent,
    PassThreadControlEvent,
    PostbackEvent,
    ReadEvent,
    RequestThreadControlEvent,
    TakeThreadControlEvent,
    UnknownEvent,
)
from webhooks.sanitize import Changes, clean_text, clip, json_safe

# What the columns events end up in hold. Longer ids or mids are not Meta's (PSIDs,
# page and app ids are numeric strings of about 16 digits, mids about 100 characters):
# such an event is stored as invalid and ignored. Texts are cut.
ID_MAX = 64
MID_MAX = 255
CHANNEL_MAX = 16
QUICK_REPLY_PAYLOAD_MAX = 1000  # Meta's documented maximum
POSTBACK_TITLE_MAX = 200  # Meta allows 20 for a button title
# A timestamp outside this range around the delivery's receipt is not believed: it is
# replaced by the receipt time (and noted). A timestamp far in the future used to freeze
# a conversation (newer handovers looked stale) and break date arithmetic.
TIMESTAMP_MAX_AGE_MS = 30 * 24 * 3600 * 1000
TIMESTAMP_MAX_AHEAD_MS = 24 * 3600 * 1000


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    """An integer from JSON (a number, or digits that sanitizing kept as text)."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # None, "abc", NaN, Infinity
        return None


class _Reader:
    """Reads one event's fields, noting what it changed and what makes it invalid."""

    def __init__(self, received_ms: int) -> None:
        self.received_ms = received_ms
        self.changes = Changes()
        self.problems: list[str] = []

    def ident(self, value: Any, what: str) -> str:
        """An app id, PSID or page id: strings or numbers, kept as strings."""
        text = "" if value is None or isinstance(value, dict | list) else str(value)
        if len(text) > ID_MAX:
            self.problems.append(f"{what} is longer than {ID_MAX} characters")
            return text[:ID_MAX]
        return text

    def mid(self, value: Any) -> str:
        text = "" if value is None else str(value)
        if len(text) > MID_MAX:
            self.problems.append(f"mid is longer than {MID_MAX} characters")
            return text[:MID_MAX]
        return text

    def text(self, value: Any, limit: int | None = None, what: str = "text") -> str:
        text = "" if value is None else str(value)
        return text if limit is None else clip(text, limit, what, self.changes)

    def timestamp(self, value: Any, fallback: int, what: str = "timestamp") -> int:
        """A time in epoch ms, believed only near the receipt time; `fallback` when
        absent or not a number."""
        if value is None:
            return fallback
        number = _int(value)
        if number is None:
            self.changes.add(f"{what} {str(value)[:40]!r} is not a number")
            return fallback
        low = self.received_ms - TIMESTAMP_MAX_AGE_MS
        high = self.received_ms + TIMESTAMP_MAX_AHEAD_MS
        if low <= number <= high:
            return number
        self.changes.add(f"{what} {number} out of range: the receipt time is used")
        return self.received_ms


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


def _template_text(message: dict[str, Any]) -> str:
    """The text of a template a bot sent (a button template carries it in its payload)."""
    for item in _list(message.get("attachments")):
        payload = _dict(_dict(item).get("payload"))
        if _dict(item).get("type") == "template" and payload.get("text"):
            return str(payload["text"])
    return ""


def parse_event(
    raw: dict[str, Any], *, page_id: str, channel: str, entry_time: int, received_ms: int
) -> Event:
    """One event of `entry[].messaging[]` or `entry[].standby[]`, made storable first
    (`sanitize.json_safe`); `page_id`, `channel` and `entry_time` come from its entry."""
    read = _Reader(received_ms)
    raw = json_safe(raw, read.changes)
    page_id = read.ident(page_id, "page id")
    event = _parse_fields(raw, read, page_id=page_id, channel=channel, entry_time=entry_time)
    if read.problems:
        return InvalidEvent(
            page_id=event.page_id,
            psid=event.psid,
            timestamp=event.timestamp,
            channel=event.channel,
            raw=raw,
            notes=event.notes,
            problem="; ".join(read.problems),
        )
    return event


def _parse_fields(
    raw: dict[str, Any], read: _Reader, *, page_id: str, channel: str, entry_time: int
) -> Event:
    ts = read.timestamp(raw.get("timestamp", entry_time), entry_time)
    sender = read.ident(_dict(raw.get("sender")).get("id"), "sender id")
    recipient = read.ident(_dict(raw.get("recipient")).get("id"), "recipient id")
    common: dict[str, Any] = {
        "page_id": page_id,
        "timestamp": ts,
        "channel": channel,
        "raw": raw,
        "notes": (),
    }

    def done(event: Event) -> Event:
        # Notes are final only once every field was read.
        object.__setattr__(event, "notes", tuple(read.changes.notes))
        return event

    message = raw.get("message")
    if isinstance(message, dict) and message.get("mid"):
        if message.get("is_echo"):
            # Echoes go Page -> user: the user is the recipient.
            return done(
                EchoEvent(
                    psid=recipient,
                    mid=read.mid(message["mid"]),
                    app_id=read.ident(message.get("app_id"), "app id"),
                    metadata=read.text(message.get("metadata")),
                    text=read.text(message.get("text") or _template_text(message)),
                    attachments=_attachments(message),
                    **common,
                )
            )
        quick_reply = _dict(message.get("quick_reply"))
        return done(
            MessageEvent(
                psid=sender,
                mid=read.mid(message["mid"]),
                text=read.text(message.get("text")),
                quick_reply_payload=read.text(
                    quick_reply.get("payload"), QUICK_REPLY_PAYLOAD_MAX, "quick-reply payload"
                ),
                attachments=_attachments(message),
                **common,
            )
        )

    postback = raw.get("postback")
    if isinstance(postback, dict):
        return done(
            PostbackEvent(
                psid=sender,
                mid=read.mid(postback.get("mid")),
                title=read.text(postback.get("title"), POSTBACK_TITLE_MAX, "postback title"),
                payload=read.text(postback.get("payload")),
                **common,
            )
        )

    for name, cls in (
        ("pass_thread_control", PassThreadControlEvent),
        ("take_thread_control", TakeThreadControlEvent),
    ):
        body = raw.get(name)
        if isinstance(body, dict):
            return done(
                cls(
                    psid=sender,
                    previous_owner_app_id=read.ident(
                        body.get("previous_owner_app_id"), "previous owner app id"
                    ),
                    new_owner_app_id=read.ident(body.get("new_owner_app_id"), "new owner app id"),
                    metadata=read.text(body.get("metadata")),
                    **common,
                )
            )

    body = raw.get("request_thread_control")
    if isinstance(body, dict):
        return done(
            RequestThreadControlEvent(
                psid=sender,
                requested_owner_app_id=read.ident(
                    body.get("requested_owner_app_id"), "requested owner app id"
                ),
                metadata=read.text(body.get("metadata")),
                **common,
            )
        )

    receipt = raw.get("read")
    if isinstance(receipt, dict) and "watermark" in receipt:
        watermark = read.timestamp(receipt["watermark"], 0, "read watermark")
        return done(ReadEvent(psid=sender, watermark=watermark, **common))

    delivery = raw.get("delivery")
    if isinstance(delivery, dict) and "watermark" in delivery:
        return done(
            DeliveryEvent(
                psid=sender,
                watermark=read.timestamp(delivery["watermark"], 0, "delivery watermark"),
                mids=tuple(str(m) for m in _list(delivery.get("mids"))),
                **common,
            )
        )

    return done(UnknownEvent(psid=sender or recipient, **common))


def parse_delivery(payload: Any, *, received_ms: int | None = None) -> list[Event]:
    """All events of a delivery, in timestamp order (stable for equal timestamps).

    Meta says to order by `timestamp`: after failed deliveries, events may arrive
    out of order. `received_ms` is when the delivery arrived (default: now): timestamps
    far from it are replaced by it.
    """
    received = received_ms if received_ms is not None else int(time.time() * 1000)
    events: list[Event] = []
    if not isinstance(payload, dict):
        return events
    entries = payload.get("entry") if payload.get("object") == "page" else None
    if not isinstance(entries, list):
        changes = Changes()
        body = json_safe(payload, changes)
        events.append(
            UnknownEvent(
                page_id="",
                psid="",
                timestamp=0,
                channel="",
                raw={"body": body},
                notes=tuple(changes.notes),
            )
        )
        return events
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        read = _Reader(received)
        # Checked against its column by each event (too long: the event is invalid).
        entry_id = entry.get("id")
        page_id = "" if entry_id is None else clean_text(str(json_safe(entry_id, read.changes)))
        entry_time = read.timestamp(entry.get("time"), received, "entry time")
        for channel in (CHANNEL_MESSAGING, CHANNEL_STANDBY):
            for raw in _list(entry.get(channel)):
                if isinstance(raw, dict):
                    events.append(
                        parse_event(
                            raw,
                            page_id=page_id,
                            channel=channel,
                            entry_time=entry_time,
                            received_ms=received,
                        )
                    )
        for other in sorted(set(entry) - {"id", "time", CHANNEL_MESSAGING, CHANNEL_STANDBY}):
            changes = Changes()
            name = clean_text(other, changes)
            events.append(
                UnknownEvent(
                    page_id=clip(page_id, ID_MAX, "page id", changes),
                    psid="",
                    timestamp=entry_time,
                    channel=clip(name, CHANNEL_MAX, "entry key", changes),
                    raw={name: json_safe(entry[other], changes)},
                    notes=tuple(changes.notes),
                )
            )
    events.sort(key=lambda e: e.timestamp)
    return events
