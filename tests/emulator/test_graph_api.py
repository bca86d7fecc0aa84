"""Graph API contract on the core: authentication, the error envelope (§8.19), the Send
API's parameters (§4.2), ids (§8.20), the profile (§5) and personas."""

from __future__ import annotations

import json

import pytest

from tests.emulator.support import (
    BOT,
    BOT_SECRET,
    BOT_TOKEN,
    HELPDESK_SECRET,
    HELPDESK_TOKEN,
    PAGE,
    PSID,
    App,
    error_of,
    world,
)

# --- authentication (§4.8, §8.19) ------------------------------------------------------


def test_a_missing_token_is_code_104_and_an_unknown_one_190():
    w = world()
    missing = w.platform.graph("GET", "/me", {}, access_token=None)
    assert error_of(missing) == {
        "message": "An access token is required to request this resource.",
        "type": "OAuthException",
        "code": 104,
    }
    unknown = w.platform.graph("GET", "/me", {}, access_token="nope")
    assert error_of(unknown) == {
        "message": "Invalid OAuth access token - Cannot parse access token",
        "type": "OAuthException",
        "code": 190,
    }


def test_a_wrong_appsecret_proof_is_refused():
    w = world()
    result = App(w.platform, HELPDESK_TOKEN, "not-the-secret").call("GET", "/me")
    assert error_of(result) == {
        "message": "(#100) Invalid appsecret_proof provided in the API argument",
        "type": "OAuthException",
        "code": 100,
    }


def test_the_proof_is_required_when_the_app_requires_it_and_optional_otherwise():
    w = world()
    no_proof = App(w.platform, HELPDESK_TOKEN, HELPDESK_SECRET, proof=False).call("GET", "/me")
    assert error_of(no_proof) == {
        "message": "(#100) API calls from the server require an appsecret_proof argument",
        "type": "OAuthException",
        "code": 100,
    }
    bot = App(w.platform, BOT_TOKEN, BOT_SECRET, proof=False).call("GET", "/me")
    assert (bot.status, bot.body) == (200, {"id": PAGE, "name": "Demo Page"})


def test_a_token_identifies_the_app_and_its_proof_uses_that_apps_secret():
    w = world()
    # The bot's token with the helpdesk's secret: wrong proof.
    assert error_of(App(w.platform, BOT_TOKEN, HELPDESK_SECRET).call("GET", "/me"))["code"] == 100
    assert w.platform.app_for_token(BOT_TOKEN) == BOT


def test_error_answers_carry_an_fbtrace_id_and_http_400():
    w = world()
    result = w.helpdesk.post("messages", recipient={"id": PSID})
    assert result.status == 400
    assert set(result.body["error"]) == {"message", "type", "code", "fbtrace_id"}


# --- parameters ---------------------------------------------------------------------------


def test_missing_recipient_and_unknown_psid():
    w = world()
    assert error_of(w.bot.post("messages", messaging_type="RESPONSE", message={"text": "x"})) == {
        "message": "(#100) The parameter recipient is required",
        "type": "OAuthException",
        "code": 100,
    }
    assert error_of(w.bot.send_text("x", psid="9999")) == {
        "message": "(#100) No matching user found",
        "type": "OAuthException",
        "code": 100,
        "error_subcode": 2018001,
    }
    for edge in ("pass_thread_control", "take_thread_control", "request_thread_control"):
        assert error_of(w.bot.post(edge))["message"] == "(#100) The parameter recipient is required"


def test_query_string_style_json_parameters_are_accepted():
    w = world()
    w.says("hi")
    result = w.bot.post(
        "messages",
        recipient=json.dumps({"id": PSID}),
        messaging_type="RESPONSE",
        message="{'text': 'single quotes, like Meta's curl samples'}".replace("Meta's", "Metas"),
    )
    assert result.status == 200, result.body


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ({}, "exactly one of text, attachment, sticker_id"),
        ({"text": "a", "sticker_id": 369239263222822}, "exactly one of"),
        ({"text": ""}, "non-empty"),
        ({"text": "x" * 2001}, "less than or equal to 2000"),
        ({"text": "a", "quick_replies": [{"title": "t", "payload": "p"}] * 14}, "1 to 13"),
        ({"text": "a", "quick_replies": [{"title": "x" * 21, "payload": "p"}]}, "title"),
        ({"text": "a", "quick_replies": [{"title": "t"}]}, "payload"),
        ({"text": "a", "metadata": "m" * 1001}, "at most 1000"),
        ({"text": "a", "colour": "red"}, "Unknown param"),
        ({"attachment": {"type": "image", "payload": {"url": "ftp://x"}}}, "must be a URL"),
        ({"attachment": {"type": "image", "payload": {"attachment_id": "42"}}}, "Attachment Id"),
        ({"attachment": {"type": "gif", "payload": {"url": "https://x.example/a.gif"}}}, "type"),
        (
            {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": "t",
                        "buttons": [{"type": "postback", "title": "b", "payload": "p"}] * 4,
                    },
                }
            },
            "1 to 3 buttons",
        ),
        (
            {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": "t",
                        "buttons": [{"type": "postback", "title": "x" * 21, "payload": "p"}],
                    },
                }
            },
            "buttons[title]",
        ),
        ({"attachment": {"type": "template", "payload": {"template_type": "receipt"}}}, "button"),
    ],
)
def test_invalid_messages_are_refused_with_code_100_and_send_nothing(message, fragment):
    w = world()
    w.says("hi")
    before = w.transcript()
    result = w.bot.post(
        "messages", recipient={"id": PSID}, messaging_type="RESPONSE", message=message
    )
    error = error_of(result)
    assert error["code"] == 100
    assert fragment in error["message"]
    assert (result.webhooks, w.transcript()) == ([], before)


def test_message_and_sender_action_do_not_mix():
    w = world()
    w.says("hi")
    both = w.bot.post(
        "messages", recipient={"id": PSID}, sender_action="typing_on", message={"text": "x"}
    )
    assert error_of(both)["code"] == 100
    typed = w.bot.post(
        "messages", recipient={"id": PSID}, sender_action="typing_on", messaging_type="RESPONSE"
    )
    assert error_of(typed)["code"] == 100
    unknown = w.bot.post("messages", recipient={"id": PSID}, sender_action="dance")
    assert error_of(unknown)["code"] == 100


def test_a_missing_messaging_type_is_refused():
    w = world()
    w.says("hi")
    result = w.bot.post("messages", recipient={"id": PSID}, message={"text": "x"})
    assert error_of(result) == {
        "message": "(#100) param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}",
        "type": "OAuthException",
        "code": 100,
    }


def test_an_attachment_by_url_and_a_reusable_attachment_id():
    w = world()
    w.says("hi")
    first = w.bot.post(
        "messages",
        recipient={"id": PSID},
        messaging_type="RESPONSE",
        message={
            "attachment": {
                "type": "image",
                "payload": {"url": "https://cdn.example/a.jpg", "is_reusable": True},
            }
        },
    )
    assert set(first.body) == {"recipient_id", "message_id", "attachment_id"}
    assert first.webhooks[0].event["message"]["attachments"] == [
        {"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}}
    ]
    again = w.bot.post(
        "messages",
        recipient={"id": PSID},
        messaging_type="RESPONSE",
        message={
            "attachment": {
                "type": "image",
                "payload": {"attachment_id": first.body["attachment_id"]},
            }
        },
    )
    assert again.status == 200, again.body


def test_quick_replies_are_shown_to_the_user_and_tapping_one_sends_its_payload():
    w = world()
    w.says("hi")
    sent = w.bot.send_text(
        "Pick one",
        message={"quick_replies": [{"content_type": "text", "title": "Hours", "payload": "HOURS"}]},
    )
    tap = w.platform.user_message(page_id=PAGE, psid=PSID, quick_reply=(sent.body["message_id"], 0))
    assert tap.webhooks[0].event["message"] == {
        "mid": tap.body["mid"],
        "text": "Hours",
        "quick_reply": {"payload": "HOURS"},
    }
    # On standby the quick reply keeps its payload (only postbacks lose it).
    assert tap.webhooks[1].channel == "standby"
    assert tap.webhooks[1].event["message"]["quick_reply"] == {"payload": "HOURS"}


def test_persona_create_and_send_as_persona():
    w = world()
    w.says("hi")
    created = w.bot.post("personas", name="Ana", profile_picture_url="https://pics.example/ana.png")
    persona_id = created.body["id"]
    assert persona_id.isdigit()
    assert w.bot.call("GET", f"/{persona_id}").body == {
        "name": "Ana",
        "profile_picture_url": "https://pics.example/ana.png",
        "id": persona_id,
    }
    sent = w.bot.send_text("Hi, Ana here", persona_id=persona_id)
    assert sent.status == 200
    assert w.transcript()[-1]["persona"] == {
        "name": "Ana",
        "profile_picture_url": "https://pics.example/ana.png",
    }
    assert (
        error_of(w.bot.send_text("x", persona_id="123"))["message"] == "(#100) Invalid persona_id"
    )


def test_the_send_rate_limit_is_code_613():
    w = world(send_rate_limit_per_second=2)
    w.says("hi")
    assert w.bot.send_text("1").status == 200
    assert w.bot.send_text("2").status == 200
    result = w.bot.send_text("3")
    assert error_of(result) == {
        "message": "(#613) Calls to this API have exceeded the rate limit.",
        "type": "OAuthException",
        "code": 613,
    }
    assert result.webhooks == []


def test_unknown_paths_and_methods():
    w = world()
    assert error_of(w.bot.call("GET", "/me/widgets"))["code"] == 2500
    assert error_of(w.bot.call("GET", "/me/messages"))["code"] == 100
    assert error_of(w.bot.call("GET", "/123456"))["error_subcode"] == 33


# --- §8.20 ids and timestamps, §5 profile ---------------------------------------------------


def test_psids_are_numeric_page_scoped_strings_and_mids_are_opaque():
    w = world()
    user = w.platform.user_create(page_id=PAGE, first_name="Grace", last_name="Hopper")
    assert user.psid.isdigit() and len(user.psid) == 16
    result = w.platform.user_message(page_id=PAGE, psid=user.psid, text="hi")
    event = result.webhooks[0].event
    assert event["message"]["mid"].startswith("m_")
    assert isinstance(event["timestamp"], int) and event["timestamp"] > 10**12


def test_the_profile_has_the_basic_fields():
    w = world()
    w.platform.public_url = "http://127.0.0.1:8001"
    result = w.helpdesk.call("GET", f"/{PSID}", fields="first_name,last_name,profile_pic")
    assert result.body == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "profile_pic": f"http://127.0.0.1:8001/emulator/avatar/{PAGE}/{PSID}.svg",
        "id": PSID,
    }


def test_an_unapproved_profile_field_fails_the_whole_request():
    w = world()
    result = w.helpdesk.call("GET", f"/{PSID}", fields="first_name,gender")
    assert error_of(result) == {
        "message": "(#100) Requesting field gender requires the pages_user_gender permission, "
        "which this app does not have",
        "type": "OAuthException",
        "code": 100,
    }
    assert error_of(w.helpdesk.call("GET", f"/{PSID}", fields="shoe_size"))["code"] == 100
    assert error_of(w.helpdesk.call("GET", "/3999999999999999"))["error_subcode"] == 33
