"""The typed events of Meta's webhooks (made by `webhooks.parsing`): what every event
has, the kinds the helpdesk applies, and the dedupe key of each."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CHANNEL_MESSAGING = "messaging"
CHANNEL_STANDBY = "standby"

_MIN_MS = int(datetime(1, 1, 2, tzinfo=UTC).timestamp() * 1000)
_MAX_MS = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp() * 1000)


def timestamp_to_datetime(ms: int) -> datetime:
    """An epoch-ms timestamp as an aware datetime. Parsing keeps timestamps near their
    receipt; rows stored before it did may hold any value, so it is clamped to what a
    datetime can hold rather than raising."""
    return datetime.fromtimestamp(min(max(ms, _MIN_MS), _MAX_MS) / 1000, tz=UTC)


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event has: its page, its user, when, and on which channel."""

    page_id: str
    psid: str
    timestamp: int
    channel: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    # What parsing changed to make the event storable (a replaced timestamp, a cut text).
    notes: tuple[str, ...] = field(default=(), compare=False)

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


@dataclass(frozen=True, kw_only=True)
class InvalidEvent(Event):
    """An event no column could hold (an id or mid far longer than Meta's): stored with
    its problem, ignored."""

    problem: str

    kind = "invalid"
