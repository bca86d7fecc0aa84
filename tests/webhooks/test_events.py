"""Parsing Meta's webhook deliveries into typed events (no database, no network)."""

from __future__ import annotations

import pytest

from tests.support import payloads
from webhooks.events import (
    Attachment,
    DeliveryEvent,
    EchoEvent,
    MessageEvent,
    PassThreadControlEvent,
    PostbackEvent,
    ReadEvent,
    RequestThreadControlEvent,
    TakeThreadControlEvent,
    UnknownEvent,
)
from webhooks.parsing import parse_delivery

T0 = payloads.T0
PAGE_ID = payloads.PAGE_ID
PSID = payloads.PSID


def _one(raw: dict, channel: str = "messaging"):
    [event] = parse_delivery(payloads.delivery(raw, channel=channel), received_ms=T0)
    return event


# --- Messages and echoes ----------------------------------------------------------


def test_user_message():
    raw = payloads.user_message("hello, world!", ts=T0, mid="m_1")

    event = _one(raw)

    assert type(event) is MessageEvent
    assert (event.page_id, event.psid, event.timestamp, event.channel) == (
        PAGE_ID,
        PSID,
        T0,
        "messaging",
    )
    assert (event.mid, event.text, event.quick_reply_payload, event.attachments) == (
        "m_1",
        "hello, world!",
        "",
        (),
    )
    assert event.kind == "message"
    assert event.raw == raw


def test_quick_reply_payload():
    event = _one(payloads.user_message("Talk to a human", ts=T0, quick_reply="TALK_TO_HUMAN"))

    assert event.quick_reply_payload == "TALK_TO_HUMAN"
    assert event.text == "Talk to a human"


def test_attachments_image_and_file_with_urls():
    raw = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": T0,
        "message": {
            "mid": "m_att",
            "attachments": [
                {"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}},
                {"type": "file", "payload": {"url": "https://cdn.example/b.pdf"}},
            ],
        },
    }

    event = _one(raw)

    assert type(event) is MessageEvent
    assert event.text == ""
    assert [a.as_dict() for a in event.attachments] == [
        {"type": "image", "url": "https://cdn.example/a.jpg", "title": ""},
        {"type": "file", "url": "https://cdn.example/b.pdf", "title": ""},
    ]
    assert event.attachments[0] == Attachment(
        type="image", url="https://cdn.example/a.jpg", payload={"url": "https://cdn.example/a.jpg"}
    )


def test_fallback_attachment_keeps_title_and_url():
    raw = payloads.user_message("", ts=T0, mid="m_fb")
    raw["message"]["attachments"] = [
        {"type": "fallback", "title": "A link", "url": "https://example.org", "payload": None}
    ]

    event = _one(raw)

    assert [a.as_dict() for a in event.attachments] == [
        {"type": "fallback", "url": "https://example.org", "title": "A link"}
    ]


def test_echo_psid_is_the_recipient_and_app_id_is_a_string():
    raw = payloads.echo("from the bot", ts=T0, mid="m_echo", metadata="bot:7")
    assert isinstance(raw["message"]["app_id"], int)  # as Meta's examples send it

    event = _one(raw)

    assert type(event) is EchoEvent
    assert (event.psid, event.page_id) == (PSID, PAGE_ID)
    assert (event.mid, event.app_id, event.metadata, event.text) == (
        "m_echo",
        payloads.BOT_APP_ID,
        "bot:7",
        "from the bot",
    )
    assert event.key == "echo:m_echo"


def test_echo_without_metadata_has_empty_metadata():
    event = _one(payloads.echo("typed in the inbox", ts=T0, app_id=payloads.PAGE_INBOX_APP_ID))

    assert (event.app_id, event.metadata) == (payloads.PAGE_INBOX_APP_ID, "")


def test_standby_channel_is_recorded():
    message = _one(payloads.user_message("I want a human", ts=T0), channel="standby")
    echo = _one(payloads.echo("bot says", ts=T0), channel="standby")

    assert (type(message), message.channel) == (MessageEvent, "standby")
    assert (type(echo), echo.channel, echo.psid) == (EchoEvent, "standby", PSID)


# --- Postbacks ----------------------------------------------------------------------


def test_postback_with_payload():
    event = _one(payloads.postback("Talk to a human", ts=T0, payload="HUMAN", mid="m_pb"))

    assert type(event) is PostbackEvent
    assert (event.psid, event.mid, event.title, event.payload) == (
        PSID,
        "m_pb",
        "Talk to a human",
        "HUMAN",
    )
    assert event.key == "postback:m_pb"


def test_postback_on_standby_without_payload():
    event = _one(payloads.postback("Talk to a human", ts=T0, mid="m_pb2"), channel="standby")

    assert type(event) is PostbackEvent
    assert (event.channel, event.title, event.payload) == ("standby", "Talk to a human", "")


# --- Handover -------------------------------------------------------------------------


def test_pass_thread_control():
    event = _one(payloads.pass_control(ts=T0, metadata="over to you"))

    assert type(event) is PassThreadControlEvent
    assert (event.psid, event.previous_owner_app_id, event.new_owner_app_id, event.metadata) == (
        PSID,
        payloads.BOT_APP_ID,
        payloads.APP_ID,
        "over to you",
    )


def test_pass_thread_control_from_idle_has_empty_previous_owner():
    event = _one(payloads.pass_control(ts=T0, previous_owner=None))

    assert event.previous_owner_app_id == ""


def test_take_thread_control():
    event = _one(payloads.take_control(ts=T0, metadata="bot took it"))

    assert type(event) is TakeThreadControlEvent
    assert (event.previous_owner_app_id, event.new_owner_app_id, event.metadata) == (
        payloads.APP_ID,
        payloads.BOT_APP_ID,
        "bot took it",
    )


def test_request_thread_control_with_numeric_app_id():
    raw = payloads.request_control(ts=T0, metadata="please")
    assert isinstance(raw["request_thread_control"]["requested_owner_app_id"], int)

    event = _one(raw)

    assert type(event) is RequestThreadControlEvent
    assert (event.requested_owner_app_id, event.metadata) == (payloads.BOT_APP_ID, "please")


# --- Reads and deliveries -------------------------------------------------------------


def test_read():
    event = _one(payloads.read(ts=T0 + 5, watermark=T0))

    assert type(event) is ReadEvent
    assert (event.psid, event.timestamp, event.watermark) == (PSID, T0 + 5, T0)


def test_delivery_without_timestamp_takes_the_entry_time():
    raw = payloads.delivered(mids=["m_a", "m_b"], watermark=T0)
    assert "timestamp" not in raw
    payload = {"object": "page", "entry": [{"id": PAGE_ID, "time": T0 + 99, "messaging": [raw]}]}

    [event] = parse_delivery(payload, received_ms=T0)

    assert type(event) is DeliveryEvent
    assert (event.timestamp, event.watermark, event.mids) == (T0 + 99, T0, ("m_a", "m_b"))


def test_delivery_without_mids():
    raw = {"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "delivery": {"watermark": T0}}

    event = _one(raw)

    assert (type(event), event.mids) == (DeliveryEvent, ())


# --- Unknown kinds and other objects ---------------------------------------------------


def test_unknown_kind_becomes_unknown_event():
    raw = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": T0,
        "reaction": {"reaction": "love", "emoji": "\u2764", "action": "react", "mid": "m_1"},
    }

    event = _one(raw)

    assert type(event) is UnknownEvent
    assert (event.kind, event.psid, event.page_id, event.timestamp, event.raw) == (
        "unknown",
        PSID,
        PAGE_ID,
        T0,
        raw,
    )


def test_app_roles_without_sender_is_unknown():
    raw = {
        "recipient": {"id": PAGE_ID},
        "timestamp": T0,
        "app_roles": {"123": ["primary_receiver"]},
    }

    event = _one(raw)

    assert type(event) is UnknownEvent
    assert event.page_id == PAGE_ID


def test_object_other_than_page_is_one_unknown_event():
    payload = {
        "object": "instagram",
        "entry": [{"id": "1", "time": T0, "messaging": [payloads.user_message("hi", ts=T0)]}],
    }

    events = parse_delivery(payload, received_ms=T0)

    assert len(events) == 1
    [event] = events
    assert type(event) is UnknownEvent
    assert (event.page_id, event.psid, event.timestamp, event.raw) == ("", "", 0, {"body": payload})


@pytest.mark.parametrize("payload", [[], "page", 3, None])
def test_a_body_that_is_not_an_object_gives_no_events(payload):
    assert parse_delivery(payload, received_ms=T0) == []


# --- Ordering across entries ---------------------------------------------------------------


def test_events_are_sorted_by_timestamp_across_entries_and_pages():
    other_page = "1000000000000002"
    payload = {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": T0 + 30,
                "messaging": [payloads.user_message("third", ts=T0 + 30, mid="m_3")],
                "standby": [payloads.user_message("first", ts=T0 + 10, mid="m_1")],
            },
            {
                "id": other_page,
                "time": T0 + 20,
                "messaging": [
                    payloads.user_message("second", ts=T0 + 20, mid="m_2", page_id=other_page)
                ],
            },
            {
                "id": int(PAGE_ID),
                "time": T0 + 40,
                "messaging": [payloads.user_message("fourth", ts=T0 + 40, mid="m_4")],
            },
        ],
    }

    events = parse_delivery(payload, received_ms=T0)

    assert [(e.mid, e.page_id, e.channel) for e in events] == [
        ("m_1", PAGE_ID, "standby"),
        ("m_2", other_page, "messaging"),
        ("m_3", PAGE_ID, "messaging"),
        ("m_4", PAGE_ID, "messaging"),
    ]


def test_equal_timestamps_keep_delivery_order():
    payload = payloads.delivery(
        payloads.user_message("a", ts=T0, mid="m_a"),
        payloads.user_message("b", ts=T0, mid="m_b"),
        payloads.user_message("c", ts=T0, mid="m_c"),
    )

    assert [e.mid for e in parse_delivery(payload, received_ms=T0)] == ["m_a", "m_b", "m_c"]


def test_entry_level_fields_other_than_channels_become_unknown_events():
    payload = {
        "object": "page",
        "entry": [{"id": PAGE_ID, "time": T0, "changes": [{"field": "feed"}], "messaging": []}],
    }

    [event] = parse_delivery(payload, received_ms=T0)

    assert type(event) is UnknownEvent
    assert (event.page_id, event.channel, event.timestamp, event.raw) == (
        PAGE_ID,
        "changes",
        T0,
        {"changes": [{"field": "feed"}]},
    )


# --- Dedupe keys ---------------------------------------------------------------------------


def test_the_same_message_has_the_same_key_on_any_channel_and_delivery():
    raw = payloads.user_message("hi", ts=T0, mid="m_same")

    first = _one(raw)
    again = _one(dict(raw))
    on_standby = _one(raw, channel="standby")

    assert first.key == again.key == on_standby.key == "message:m_same"


def test_handover_key_is_page_psid_timestamp_and_new_owner():
    event = _one(payloads.pass_control(ts=T0, new_owner=payloads.APP_ID))

    assert event.key == f"pass:{PAGE_ID}:{PSID}:{T0}:{payloads.APP_ID}"


def test_pass_events_differing_only_in_new_owner_have_different_keys():
    ours = _one(payloads.pass_control(ts=T0, new_owner=payloads.APP_ID))
    theirs = _one(payloads.pass_control(ts=T0, new_owner="999"))
    ours_again = _one(payloads.pass_control(ts=T0, new_owner=payloads.APP_ID))

    assert ours.key != theirs.key
    assert ours.key == ours_again.key


def test_take_and_request_keys_differ_from_pass_keys():
    keys = {
        _one(payloads.pass_control(ts=T0, new_owner=payloads.BOT_APP_ID)).key,
        _one(payloads.take_control(ts=T0, new_owner=payloads.BOT_APP_ID)).key,
        _one(payloads.request_control(ts=T0, requested_owner=payloads.BOT_APP_ID)).key,
    }

    assert len(keys) == 3


def test_unknown_events_with_the_same_body_share_a_key_and_differ_otherwise():
    def reaction(emoji: str) -> dict:
        return {
            "sender": {"id": PSID},
            "recipient": {"id": PAGE_ID},
            "timestamp": T0,
            "reaction": {"emoji": emoji, "action": "react", "mid": "m_1"},
        }

    assert _one(reaction("a")).key == _one(reaction("a")).key
    assert _one(reaction("a")).key != _one(reaction("b")).key


# --- Junk ------------------------------------------------------------------------------------


def test_non_dict_junk_inside_lists_is_skipped():
    message = payloads.user_message("kept", ts=T0, mid="m_kept")
    message["message"]["attachments"] = [
        "junk",
        7,
        None,
        {"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}},
    ]
    payload = {
        "object": "page",
        "entry": [
            "junk",
            42,
            None,
            ["nested"],
            {"id": PAGE_ID, "time": T0, "messaging": ["x", 1, None, [], message]},
        ],
    }

    events = parse_delivery(payload, received_ms=T0)

    assert [(type(e), e.mid) for e in events] == [(MessageEvent, "m_kept")]
    assert [a.type for a in events[0].attachments] == ["image"]


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param({"id": PAGE_ID, "time": "yesterday", "messaging": []}, id="bad-time"),
        pytest.param({"id": PAGE_ID, "messaging": None, "standby": None}, id="null-channels"),
        pytest.param({"id": PAGE_ID, "messaging": "not a list"}, id="channel-is-a-string"),
        pytest.param(
            {"id": PAGE_ID, "messaging": [{"sender": None, "read": {"watermark": "x"}}]},
            id="null-sender-bad-watermark",
        ),
        pytest.param(
            {"id": PAGE_ID, "messaging": 5},
            id="channel-is-a-number",
        ),
        pytest.param(
            {"id": PAGE_ID, "messaging": [{"sender": "3000", "timestamp": T0, "read": {}}]},
            id="sender-is-a-string",
        ),
        pytest.param(
            {
                "id": PAGE_ID,
                "messaging": [{"timestamp": T0, "message": {"mid": "m", "attachments": 1}}],
            },
            id="attachments-is-a-number",
        ),
    ],
)
def test_parsing_never_raises_on_a_well_formed_json_object(entry):
    events = parse_delivery({"object": "page", "entry": [entry]}, received_ms=T0)

    assert all(isinstance(e.key, str) for e in events)


def test_a_bot_button_template_echo_keeps_its_text():
    raw = {
        "sender": {"id": PAGE_ID},
        "recipient": {"id": "42"},
        "timestamp": T0,
        "message": {
            "is_echo": True,
            "app_id": 200000000000002,
            "mid": "m_tpl",
            "attachments": [
                {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": "Anything else?",
                        "buttons": [{"type": "postback", "title": "Talk to a human"}],
                    },
                }
            ],
        },
    }
    [event] = parse_delivery(
        {"object": "page", "entry": [{"id": PAGE_ID, "messaging": [raw]}]}, received_ms=T0
    )
    assert (event.kind, event.text, event.attachments[0].type) == (
        "echo",
        "Anything else?",
        "template",
    )
