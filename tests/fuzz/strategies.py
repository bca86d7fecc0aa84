"""Hypothesis strategies for webhook bodies: any JSON value, and deliveries shaped like
Meta's with hostile values mixed in.

Values are Python data, except `Raw`: JSON text spliced in as it is, for what Python's
encoder does not write (`1e400`, nesting deeper than the decoder's recursion allows).
`to_json` writes the body; NaN and Infinity come out as `NaN`/`Infinity`, like
`json.dumps` writes them, and every non-ASCII character, NUL and lone surrogates
included, is escaped (`\\u0000`, `\\ud800`), the way Meta escapes.
"""

from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.support import payloads

# Every character, NUL and lone surrogates included (Hypothesis leaves out surrogates
# unless told).
ANY_CHAR = st.characters(exclude_categories=())
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Nesting the endpoint's decoder takes under pytest (about 900 levels, less on a deeper
# stack); deeper bodies may be refused with 400, depending on the stack.
DECODABLE_DEPTH = 600


class Raw(str):
    """JSON text written into the body as it is."""


@dataclass(frozen=True)
class ValidMessage:
    """A user message that nothing about it is wrong with: it must be applied, and its
    text stored (NUL and lone surrogates replaced)."""

    mid: str
    psid: str
    text: str
    channel: str

    @property
    def stored_text(self) -> str:
        # What the receiver decodes (a surrogate pair written as two escapes decodes to
        # one character), with what no column takes replaced by U+FFFD.
        decoded = json.loads(json.dumps(self.text))
        return UNSTORABLE.sub("\ufffd", decoded)


@dataclass(frozen=True)
class Body:
    payload: Any
    valid: tuple[ValidMessage, ...] = ()

    @property
    def text(self) -> str:
        return to_json(self.payload)

    @property
    def depth(self) -> int:
        return _depth(self.payload)

    def __repr__(self) -> str:  # what a failing example prints: the body itself
        return f"Body(text={self.text[:4000]!r}, valid={self.valid!r})"


def to_json(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


def _depth(value: Any) -> int:
    if isinstance(value, Raw):
        return len(value) - len(value.lstrip("[{"))
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list | tuple):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# --- leaves ------------------------------------------------------------------------

any_text = st.text(alphabet=ANY_CHAR, max_size=40)
NUMBERS = [
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1" + "0" * 40),
    Raw("-0.0"),
    2**63,
    2**64,
    -(2**63) - 1,
    2**63 - 1,
    9.999e307,
    0,
    -1,
    1.5,
]
SPECIAL_TEXTS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ud83d",
    "\ud83d\ude00",
    "\u2028\u2029",
    "\ufeff",
    "null",
    "NaN",
    "1e400",
    "%s%s%n",
    "{0}{1}",
    '"\\',
    "<script>window.__xss=1</script>",
    "Talk to a human",
    "TALK_TO_HUMAN",
]
hostile_number = st.sampled_from(NUMBERS) | st.integers() | st.floats()
long_text = st.builds(
    lambda char, n: char * n,
    st.sampled_from(["7", "m", "\x00", "é", "\ud800"]),
    st.integers(60, 3000),
)
deep = st.builds(lambda n: Raw("[" * n + "]" * n), st.integers(30, 500)) | st.builds(
    lambda n: Raw('{"a":' * n + "1" + "}" * n), st.integers(30, 300)
)
json_value = st.recursive(
    st.none() | st.booleans() | hostile_number | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
hostile = st.one_of(
    hostile_number,
    st.sampled_from(SPECIAL_TEXTS),
    any_text,
    long_text,
    deep,
    json_value,
)


def maybe(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field that is usually what Meta sends, sometimes anything."""
    return st.one_of(plausible, plausible, hostile)


# --- events shaped like Meta's --------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


psid = st.sampled_from([payloads.PSID, "3000000000000004", "3000000000000005"])
app_id = st.sampled_from([payloads.APP_ID, payloads.BOT_APP_ID, payloads.PAGE_INBOX_APP_ID])
# Within the window parsing believes (30 days back, a day ahead); `deferred` so that "now"
# is when the tests first draw from it, not when this module is imported.
recent_ms = st.deferred(lambda: st.integers(_now_ms() - 3 * 86_400_000, _now_ms() + 3_600_000))
hostile_mid = st.builds(lambda s: "m_h_" + s, st.text(max_size=12))


weird_text = st.sampled_from(SPECIAL_TEXTS) | any_text
metadata = weird_text | st.sampled_from(
    ["helpdesk:message=1", "helpdesk:message=" + "9" * 30, '{"source": "helpdesk"}']
)


def _plain_events(ts: st.SearchStrategy[int]) -> st.SearchStrategy[dict[str, Any]]:
    """Well-formed events of every kind the helpdesk reads, and a few it does not."""
    mid = hostile_mid
    return st.one_of(
        st.builds(payloads.user_message, weird_text, ts=ts, psid=psid, mid=mid),
        st.builds(
            payloads.user_message,
            weird_text,
            ts=ts,
            psid=psid,
            mid=mid,
            quick_reply=st.sampled_from(["TALK_TO_HUMAN", "other"]) | weird_text,
        ),
        st.builds(_with_attachment, ts=ts, psid=psid, mid=mid),
        st.builds(
            payloads.echo, weird_text, ts=ts, app_id=app_id, psid=psid, mid=mid, metadata=metadata
        ),
        st.builds(payloads.postback, weird_text, ts=ts, payload=weird_text, psid=psid, mid=mid),
        st.builds(
            payloads.pass_control,
            ts=ts,
            new_owner=app_id,
            previous_owner=app_id,
            metadata=metadata,
            psid=psid,
        ),
        st.builds(
            payloads.take_control,
            ts=ts,
            new_owner=app_id,
            previous_owner=app_id,
            metadata=metadata,
            psid=psid,
        ),
        st.builds(
            payloads.request_control, ts=ts, requested_owner=app_id, metadata=metadata, psid=psid
        ),
        st.builds(payloads.read, ts=ts, watermark=ts, psid=psid),
        st.builds(payloads.delivered, mids=st.lists(mid, max_size=3), watermark=ts, psid=psid),
        st.builds(
            lambda ts, who, kind, body: {
                "sender": {"id": who},
                "recipient": {"id": payloads.PAGE_ID},
                "timestamp": ts,
                kind: body,
            },
            ts,
            psid,
            st.sampled_from(["reaction", "referral", "optin", "app_roles"]),
            json_value,
        ),
    )


def _with_attachment(*, ts: int, psid: str, mid: str) -> dict[str, Any]:
    event = payloads.user_message("", ts=ts, psid=psid, mid=mid)
    del event["message"]["text"]
    event["message"]["attachments"] = [
        {"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}},
        {"type": "file", "title": "invoice.pdf", "payload": {"url": "javascript:alert(1)"}},
        {"type": "template", "payload": {"template_type": "button", "text": "Pick one"}},
    ]
    return event


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every value inside an event (in a stable order, for shrinking)."""
    places = []
    if isinstance(value, dict):
        for key in value:
            places += [(*path, key), *_places(value[key], (*path, key))]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            places += [(*path, index), *_places(item, (*path, index))]
    return places


@st.composite
def _spoiled(draw: st.DrawFn, event: dict[str, Any]) -> Any:
    """`event` with 0-3 of its values replaced by hostile ones, dropped, or given a
    hostile neighbour."""
    event = copy.deepcopy(event)
    for _ in range(draw(st.integers(0, 3))):
        places = _places(event)
        if not places:
            break
        *parents, last = draw(st.sampled_from(places))
        container = event
        for step in parents:
            container = container[step]
        action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if action == "replace":
            container[last] = draw(hostile)
        elif action == "drop":
            del container[last]
        elif isinstance(container, dict):
            container[draw(st.sampled_from(["extra", "\x00", "is_echo", "mid"]))] = draw(hostile)
        else:
            container.append(draw(hostile))
    return event


hostile_event = st.one_of(
    _plain_events(recent_ms).flatmap(_spoiled),
    _plain_events(recent_ms).flatmap(_spoiled),
    _plain_events(recent_ms).flatmap(_spoiled),
    hostile,
)


@st.composite
def valid_message(draw: st.DrawFn, index: int) -> ValidMessage:
    return ValidMessage(
        mid=f"m_valid_{index}",
        psid=draw(psid),
        text=draw(st.text(alphabet=ANY_CHAR, max_size=200) | long_text),
        channel=draw(st.sampled_from(["messaging", "standby"])),
    )


def _as_event(message: ValidMessage, ts: int) -> dict[str, Any]:
    return payloads.user_message(message.text, ts=ts, psid=message.psid, mid=message.mid)


@st.composite
def meta_delivery(draw: st.DrawFn) -> Body:
    """A delivery for the connected page (payloads.PAGE_ID) holding 1-3 valid user
    messages among hostile events, in hostile entries and keys besides."""
    valid = [draw(valid_message(i)) for i in range(draw(st.integers(1, 3)))]
    channels: dict[str, list[Any]] = {
        "messaging": draw(st.lists(hostile_event, max_size=3)),
        "standby": draw(st.lists(hostile_event, max_size=3)),
    }
    for message in valid:
        events = channels[message.channel]
        events.insert(draw(st.integers(0, len(events))), _as_event(message, draw(recent_ms)))
    entry: dict[str, Any] = {"id": payloads.PAGE_ID, "time": draw(recent_ms), **channels}
    entry.update(draw(st.dictionaries(st.sampled_from(["changes", "x" * 40, "\x00"]), hostile)))
    other_entries = draw(
        st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": maybe(st.just(payloads.PAGE_ID)),
                    "time": maybe(recent_ms),
                    "messaging": maybe(st.lists(hostile_event, max_size=2)),
                    "standby": maybe(st.lists(hostile_event, max_size=2)),
                },
            )
            | hostile,
            max_size=2,
        )
    )
    entries = [*other_entries]
    entries.insert(draw(st.integers(0, len(entries))), entry)
    payload: dict[str, Any] = {"object": "page", "entry": entries}
    payload.update(
        draw(st.dictionaries(any_text.filter(lambda k: k not in payload), hostile, max_size=2))
    )
    return Body(payload=payload, valid=tuple(valid))


very_deep = st.builds(lambda n: Raw("[" * n + "]" * n), st.integers(1000, 5000))


@st.composite
def any_body(draw: st.DrawFn) -> Body:
    """Any JSON value as a body, now and then nested past what the decoder takes."""
    payload = draw(
        json_value
        | hostile
        | st.fixed_dictionaries({"object": st.just("page")}, optional={"entry": hostile})
        | very_deep
    )
    return Body(payload=payload)


webhook_body = st.one_of(meta_delivery(), meta_delivery(), any_body())


def decoded(body: Body) -> Any:
    """The body as the receiver decodes it."""
    return json.loads(body.text)
