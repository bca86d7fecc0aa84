"""The platform rules of messenger-platform.md §8, tested on the core (no HTTP).

One or more tests per rule; each asserts the exact webhooks (app, channel, payload) and
the exact error envelope, and what must not happen: no webhook, no state change.
"""

from __future__ import annotations

from tests.emulator.support import (
    BOT,
    DAY,
    HELPDESK,
    HOUR,
    NOT_OWNER,
    OTHER,
    OUTSIDE_WINDOW,
    PAGE,
    PAGE_INBOX,
    PSID,
    T0,
    TAKE_WITHOUT_CR,
    error_of,
    hooks_to,
    user_event,
    world,
)
from webhooks.emulator.platform import Webhook

# --- §8.6 one owner per thread ---------------------------------------------------


def test_a_thread_has_exactly_one_owner_through_pass_take_and_a_refused_pass():
    w = world("cr")
    w.says("hi")
    assert w.owner() == BOT
    assert w.bot.pass_to(HELPDESK).status == 200
    assert w.owner() == HELPDESK
    # The bot no longer owns it: its pass is refused and changes nothing.
    assert error_of(w.bot.pass_to(HELPDESK)) == NOT_OWNER
    assert w.owner() == HELPDESK
    assert w.bot.post("take_thread_control", recipient={"id": PSID}).status == 200
    assert w.owner() == BOT
    answer = w.bot.thread_owner()
    assert answer.body == {
        "data": [{"thread_owner": {"app_id": BOT, "expiration": (T0 + DAY * 1000) // 1000}}]
    }


# --- §8.3 routing by owner ---------------------------------------------------------


def test_user_message_goes_to_the_owner_on_messaging_and_to_the_others_on_standby():
    w = world("cr")
    result = w.says("hello")
    event = user_event({"message": {"mid": result.body["mid"], "text": "hello"}})
    assert result.webhooks == [
        Webhook(BOT, PAGE, "messaging", event, T0),
        Webhook(HELPDESK, PAGE, "standby", event, T0),
    ]
    w.bot.pass_to(HELPDESK)
    w.clock.advance(1)
    again = w.says("still there?")
    assert hooks_to(again.webhooks) == [(BOT, "standby"), (HELPDESK, "messaging")]


def test_legacy_user_message_goes_to_the_primary_on_messaging_by_default():
    w = world("legacy")
    result = w.says("hello")
    assert hooks_to(result.webhooks) == [(BOT, "messaging"), (HELPDESK, "standby")]


def test_an_app_not_subscribed_to_standby_gets_nothing_while_it_does_not_own():
    w = world("cr")
    w.platform.subscriptions[(HELPDESK, PAGE)].fields = frozenset({"messages"})
    result = w.says("hello")
    assert hooks_to(result.webhooks) == [(BOT, "messaging")]


def test_reads_and_deliveries_are_routed_like_messages():
    w = world("cr")
    w.says("hi")
    sent = w.bot.send_text("Hello!")
    w.clock.advance(5)
    result = w.platform.user_read(page_id=PAGE, psid=PSID)
    delivery = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE},
        "delivery": {"mids": [sent.body["message_id"]], "watermark": T0},
    }
    read = user_event({"read": {"watermark": T0}}, ts=T0 + 5000)
    assert result.webhooks == [
        Webhook(BOT, PAGE, "messaging", delivery, T0 + 5000),
        Webhook(HELPDESK, PAGE, "standby", delivery, T0 + 5000),
        Webhook(BOT, PAGE, "messaging", read, T0 + 5000),
        Webhook(HELPDESK, PAGE, "standby", read, T0 + 5000),
    ]
    # Nothing new since: no second receipt.
    assert w.platform.user_read(page_id=PAGE, psid=PSID).webhooks == []


# --- §8.4 postbacks on standby carry no payload -----------------------------------------


def _bot_button(w) -> str:
    answer = w.bot.post(
        "messages",
        recipient={"id": PSID},
        messaging_type="RESPONSE",
        message={
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": "Need help?",
                    "buttons": [
                        {"type": "postback", "title": "Talk to a human", "payload": "TALK_TO_HUMAN"}
                    ],
                },
            }
        },
    )
    assert answer.status == 200, answer.body
    return answer.body["message_id"]


def test_a_postback_on_standby_has_no_payload():
    w = world("cr")
    w.says("hi")
    mid = _bot_button(w)
    result = w.platform.user_postback(page_id=PAGE, psid=PSID, mid=mid, index=0)
    tap = result.body["mid"]
    assert result.webhooks == [
        Webhook(
            BOT,
            PAGE,
            "messaging",
            user_event(
                {"postback": {"mid": tap, "title": "Talk to a human", "payload": "TALK_TO_HUMAN"}}
            ),
            T0,
        ),
        Webhook(
            HELPDESK,
            PAGE,
            "standby",
            user_event({"postback": {"mid": tap, "title": "Talk to a human"}}),
            T0,
        ),
    ]


def test_only_the_app_that_sent_the_button_gets_the_payload_even_as_owner():
    w = world("cr")
    w.says("hi")
    mid = _bot_button(w)
    w.bot.pass_to(HELPDESK)
    result = w.platform.user_postback(page_id=PAGE, psid=PSID, mid=mid, index=0)
    assert hooks_to(result.webhooks) == [(BOT, "standby"), (HELPDESK, "messaging")]
    assert all("payload" not in h.event["postback"] for h in result.webhooks)


# --- §8.5 echoes to every app --------------------------------------------------------


def test_an_echo_goes_to_every_app_with_the_senders_app_id_metadata_and_the_same_mid():
    w = world("cr")
    w.says("hi")
    w.clock.advance(1)
    result = w.bot.send_text("Hello!", message={"metadata": "bot:greeting"})
    assert result.status == 200
    mid = result.body["message_id"]
    assert result.body == {"recipient_id": PSID, "message_id": mid}
    assert mid.startswith("m_")
    echo = {
        "sender": {"id": PAGE},
        "recipient": {"id": PSID},
        "timestamp": T0 + 1000,
        "message": {
            "is_echo": True,
            "app_id": int(BOT),
            "metadata": "bot:greeting",
            "mid": mid,
            "text": "Hello!",
        },
    }
    assert result.webhooks == [
        Webhook(BOT, PAGE, "messaging", echo, T0 + 1000),
        Webhook(HELPDESK, PAGE, "standby", echo, T0 + 1000),
    ]


def test_the_owners_echo_is_on_messaging_and_the_others_on_standby_without_metadata():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    result = w.helpdesk.send_text("I'm Ana")
    assert hooks_to(result.webhooks) == [(BOT, "standby"), (HELPDESK, "messaging")]
    message = result.webhooks[0].event["message"]
    assert message == {
        "is_echo": True,
        "app_id": int(HELPDESK),
        "mid": result.body["message_id"],
        "text": "I'm Ana",
    }


def test_no_echo_for_an_app_not_subscribed_to_message_echoes():
    w = world("cr")
    w.says("hi")
    w.platform.subscriptions[(HELPDESK, PAGE)].fields = frozenset({"messages", "standby"})
    assert hooks_to(w.bot.send_text("Hello!").webhooks) == [(BOT, "messaging")]


def test_a_template_echo_carries_the_template_as_an_attachment():
    w = world("cr")
    w.says("hi")
    mid = _bot_button(w)
    [echo] = [e for e in w.transcript() if e.get("mid") == mid]
    assert (echo["text"], echo["buttons"]) == (
        "Need help?",
        [{"type": "postback", "title": "Talk to a human", "payload": "TALK_TO_HUMAN"}],
    )


# --- §8.9-12 handover webhooks go to the right apps --------------------------------------


def test_pass_notifies_the_new_owner_only():
    w = world("cr", other_app=True)
    w.says("hi")
    result = w.bot.pass_to(HELPDESK, metadata="user asked for a human")
    assert result.body == {"success": True}
    assert result.webhooks == [
        Webhook(
            HELPDESK,
            PAGE,
            "messaging",
            user_event(
                {
                    "pass_thread_control": {
                        "previous_owner_app_id": BOT,
                        "new_owner_app_id": HELPDESK,
                        "metadata": "user asked for a human",
                    }
                }
            ),
            T0,
        )
    ]


def test_pass_also_notifies_the_previous_owner_when_configured():
    w = world("cr", pass_notifies_previous_owner=True)
    w.says("hi")
    assert hooks_to(w.bot.pass_to(HELPDESK).webhooks) == [
        (HELPDESK, "messaging"),
        (BOT, "messaging"),
    ]


def test_take_notifies_the_previous_owner_only():
    w = world("cr", other_app=True)
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    result = w.bot.post("take_thread_control", recipient={"id": PSID}, metadata="bot is back")
    assert result.body == {"success": True}
    assert result.webhooks == [
        Webhook(
            HELPDESK,
            PAGE,
            "messaging",
            user_event(
                {
                    "take_thread_control": {
                        "previous_owner_app_id": HELPDESK,
                        "new_owner_app_id": BOT,
                        "metadata": "bot is back",
                    }
                }
            ),
            T0,
        )
    ]


def test_request_notifies_the_owner_only_and_changes_nothing():
    w = world("cr", other_app=True)
    w.says("hi")
    result = w.helpdesk.post("request_thread_control", recipient={"id": PSID}, metadata="agent Ana")
    assert result.body == {"success": True}
    assert result.webhooks == [
        Webhook(
            BOT,
            PAGE,
            "messaging",
            user_event(
                {
                    "request_thread_control": {
                        "requested_owner_app_id": int(HELPDESK),
                        "metadata": "agent Ana",
                    }
                }
            ),
            T0,
        )
    ]
    assert w.owner() == BOT


def test_request_by_the_owner_is_refused():
    w = world("cr")
    w.says("hi")
    result = w.bot.post("request_thread_control", recipient={"id": PSID})
    assert error_of(result) == {
        "message": "(#100) This app already owns the thread",
        "type": "OAuthException",
        "code": 100,
    }
    assert result.webhooks == []


def test_release_makes_the_thread_idle_without_a_webhook():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    result = w.helpdesk.post("release_thread_control", recipient={"id": PSID}, metadata="done")
    assert (result.status, result.body, result.webhooks) == (200, {"success": True}, [])
    assert w.owner() is None
    assert w.helpdesk.thread_owner().body == {"data": []}


def test_pass_to_an_app_that_is_not_on_the_page_is_refused():
    w = world("cr")
    w.says("hi")
    result = w.bot.pass_to("999999999")
    assert error_of(result) == {
        "message": "(#100) Invalid target_app_id 999999999: not an app of this page",
        "type": "OAuthException",
        "code": 100,
    }
    assert (result.webhooks, w.owner()) == ([], BOT)


def test_pass_to_the_page_inbox_is_allowed_and_delivers_no_handover_webhook():
    w = world("cr")
    w.says("hi")
    result = w.bot.pass_to(PAGE_INBOX)
    assert (result.status, result.webhooks, w.owner()) == (200, [], PAGE_INBOX)
    # Nobody of ours owns it now: everyone reads along on standby.
    assert hooks_to(w.says("hello?").webhooks) == [(BOT, "standby"), (HELPDESK, "standby")]


def test_a_page_inbox_reply_takes_control_and_echoes_with_the_inbox_app_id():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    result = w.platform.inbox_reply(page_id=PAGE, psid=PSID, text="Hi, Page admin here")
    take, *echoes = result.webhooks
    assert (take.app_id, take.event["take_thread_control"]) == (
        HELPDESK,
        {"previous_owner_app_id": HELPDESK, "new_owner_app_id": PAGE_INBOX},
    )
    assert hooks_to(echoes) == [(BOT, "standby"), (HELPDESK, "standby")]
    assert echoes[0].event["message"]["app_id"] == int(PAGE_INBOX)


# --- §8.7 sends, sender actions and handovers by a non-owner ------------------------------


def test_a_send_by_a_non_owner_is_refused_and_changes_nothing():
    w = world("cr")
    w.says("hi")
    before = w.transcript()
    result = w.helpdesk.send_text("Hello from the helpdesk")
    assert error_of(result) == NOT_OWNER
    assert result.webhooks == []
    assert w.transcript() == before


def test_a_sender_action_by_a_non_owner_is_refused():
    w = world("cr")
    w.says("hi")
    result = w.helpdesk.post("messages", recipient={"id": PSID}, sender_action="typing_on")
    assert error_of(result) == NOT_OWNER
    assert w.platform.thread_view(page_id=PAGE, psid=PSID)["typing"] is None


def test_the_owners_sender_action_answers_the_recipient_only_and_shows_typing():
    w = world("cr")
    w.says("hi")
    result = w.bot.post("messages", recipient={"id": PSID}, sender_action="typing_on")
    assert (result.body, result.webhooks) == ({"recipient_id": PSID}, [])
    assert w.platform.thread_view(page_id=PAGE, psid=PSID)["typing"] == {
        "app_id": BOT,
        "name": "Demo Bot",
        "author": "bot",
        "persona": None,
    }


def test_pass_release_and_extend_by_a_non_owner_are_refused():
    w = world("cr")
    w.says("hi")
    for result in (
        w.helpdesk.pass_to(HELPDESK),
        w.helpdesk.post("release_thread_control", recipient={"id": PSID}),
        w.helpdesk.post("extend_thread_control", recipient={"id": PSID}, duration=3600),
    ):
        assert error_of(result) == NOT_OWNER
        assert result.webhooks == []
    assert w.owner() == BOT


# --- §8.8 windows ------------------------------------------------------------------------


def test_response_after_24_hours_is_refused_and_sends_nothing():
    w = world("legacy")  # legacy: control never lapses, so only the window matters
    w.says("hi")
    w.clock.advance(DAY)
    assert w.bot.send_text("exactly 24 h later").status == 200
    w.clock.advance(0.001)
    before = w.transcript()
    for messaging_type in ("RESPONSE", "UPDATE"):
        result = w.bot.send_text("too late", messaging_type=messaging_type)
        assert error_of(result) == OUTSIDE_WINDOW
        assert result.webhooks == []
    assert w.transcript() == before


def test_a_user_message_reopens_the_window():
    w = world("legacy")
    w.says("hi")
    w.clock.advance(2 * DAY)
    w.says("I'm back")
    assert w.bot.send_text("Welcome back").status == 200


def test_a_postback_opens_the_window_too():
    w = world("legacy")
    w.says("hi")
    mid = _bot_button(w)
    w.clock.advance(DAY + 60)
    w.platform.user_postback(page_id=PAGE, psid=PSID, mid=mid, index=0)
    assert w.bot.send_text("You tapped").status == 200


def test_human_agent_is_allowed_up_to_7_days_for_an_app_with_the_feature():
    w = world("legacy", human_agent=True)
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    w.clock.advance(3 * DAY)
    assert error_of(w.helpdesk.send_text("RESPONSE is too late")) == OUTSIDE_WINDOW
    tagged = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    assert w.helpdesk.send_text("Following up", **tagged).status == 200
    w.clock.advance(4 * DAY)
    assert w.helpdesk.send_text("Exactly 7 days", **tagged).status == 200
    w.clock.advance(0.001)
    result = w.helpdesk.send_text("Past 7 days", **tagged)
    assert error_of(result) == OUTSIDE_WINDOW
    assert result.webhooks == []


def test_human_agent_without_the_feature_is_refused_even_inside_24_hours():
    w = world("legacy", human_agent=False)
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    result = w.helpdesk.send_text("hi", messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    assert error_of(result) == {
        "message": "(#200) Permissions error: the HUMAN_AGENT tag requires the Human Agent "
        "feature for this app",
        "type": "OAuthException",
        "code": 200,
    }
    assert result.webhooks == []


def test_deprecated_and_missing_tags_are_refused_with_code_100():
    w = world("cr")
    w.says("hi")
    for tag in ("CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"):
        result = w.bot.send_text("x", messaging_type="MESSAGE_TAG", tag=tag)
        assert error_of(result) == {
            "message": f"(#100) The tag {tag} is deprecated and can no longer be used",
            "type": "OAuthException",
            "code": 100,
        }
    assert error_of(w.bot.send_text("x", messaging_type="MESSAGE_TAG"))["code"] == 100
    assert error_of(w.bot.send_text("x", tag="HUMAN_AGENT"))["code"] == 100
    assert error_of(w.bot.send_text("x", messaging_type="PROMO"))["code"] == 100
    assert w.transcript()[-1]["author"] != "bot"


# --- §8.10 legacy: primary owns, only the primary takes, secondaries request --------------


def test_legacy_the_primary_owns_a_new_thread():
    w = world("legacy")
    assert w.helpdesk.thread_owner().body == {"data": [{"thread_owner": {"app_id": BOT}}]}


def test_legacy_only_the_primary_may_take():
    w = world("legacy")
    w.says("hi")
    result = w.helpdesk.post("take_thread_control", recipient={"id": PSID})
    assert error_of(result) == TAKE_WITHOUT_CR
    assert (result.webhooks, w.owner()) == ([], BOT)
    w.bot.pass_to(HELPDESK)
    taken = w.bot.post("take_thread_control", recipient={"id": PSID})
    assert hooks_to(taken.webhooks) == [(HELPDESK, "messaging")]
    assert w.owner() == BOT


def test_legacy_a_secondary_requests_from_the_primary_and_the_primary_cannot_request():
    w = world("legacy")
    w.says("hi")
    assert hooks_to(w.helpdesk.post("request_thread_control", recipient={"id": PSID}).webhooks) == [
        (BOT, "messaging")
    ]
    w.bot.pass_to(HELPDESK)
    refused = w.bot.post("request_thread_control", recipient={"id": PSID})
    assert error_of(refused)["code"] == 200
    assert refused.webhooks == []


def test_legacy_release_hands_the_thread_back_to_the_primary_with_a_pass_webhook():
    w = world("legacy")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    result = w.helpdesk.post("release_thread_control", recipient={"id": PSID}, metadata="done")
    assert [(h.app_id, h.event["pass_thread_control"]) for h in result.webhooks] == [
        (
            BOT,
            {"previous_owner_app_id": HELPDESK, "new_owner_app_id": BOT, "metadata": "done"},
        )
    ]
    assert w.owner() == BOT


def test_legacy_control_never_lapses_and_cannot_be_extended():
    w = world("legacy")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    w.clock.advance(30 * DAY)
    assert w.owner() == HELPDESK
    result = w.helpdesk.post("extend_thread_control", recipient={"id": PSID}, duration=3600)
    assert error_of(result)["code"] == 100


def test_legacy_app_roles_webhooks_when_the_primary_changes():
    w = world("legacy")
    result = w.platform.primary_set(page_id=PAGE, app_id=HELPDESK)
    assert [(h.app_id, h.event) for h in result.webhooks] == [
        (
            HELPDESK,
            {
                "recipient": {"id": PAGE},
                "timestamp": T0,
                "app_roles": {HELPDESK: ["primary_receiver"]},
            },
        ),
        (
            BOT,
            {
                "recipient": {"id": PAGE},
                "timestamp": T0,
                "app_roles": {BOT: ["secondary_receiver"]},
            },
        ),
    ]


def test_legacy_secondary_receivers_only_for_the_primary():
    w = world("legacy", other_app=True)
    assert w.bot.call("GET", "/me/secondary_receivers", fields="id,name").body == {
        "data": [{"id": HELPDESK, "name": "Helpdesk"}, {"id": OTHER, "name": "Other App"}]
    }
    assert error_of(w.helpdesk.call("GET", "/me/secondary_receivers"))["code"] == 200


# --- Conversation Routing ------------------------------------------------------------------


def test_cr_an_idle_thread_goes_to_the_default_app_which_then_owns_it():
    w = world("cr")
    assert w.owner() is None
    assert w.helpdesk.thread_owner().body == {"data": []}
    result = w.says("hi")
    assert hooks_to(result.webhooks) == [(BOT, "messaging"), (HELPDESK, "standby")]
    assert w.owner() == BOT


def test_cr_take_needs_the_permission_unless_the_thread_is_idle():
    w = world("cr", other_app=True)
    w.says("hi")
    refused = w.helpdesk.post("take_thread_control", recipient={"id": PSID})
    assert error_of(refused) == {
        "message": "(#200) Permissions error: this app is not allowed to take control of "
        "conversations",
        "type": "OAuthException",
        "code": 200,
    }
    assert (refused.webhooks, w.owner()) == ([], BOT)
    w.bot.pass_to(HELPDESK)
    # The bot has the permission (demo default): it takes control back.
    assert w.bot.post("take_thread_control", recipient={"id": PSID}).status == 200
    w.bot.post("release_thread_control", recipient={"id": PSID})
    # Idle: any app may take.
    assert w.other.post("take_thread_control", recipient={"id": PSID}).status == 200
    assert w.owner() == OTHER


def test_cr_the_bot_without_take_permission_cannot_take():
    w = world("cr")
    w.platform.pages[PAGE].take_control_app_ids = frozenset()
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    assert error_of(w.bot.post("take_thread_control", recipient={"id": PSID}))["code"] == 200
    assert w.owner() == HELPDESK


def test_cr_control_lapses_24_hours_after_the_last_user_message():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    w.clock.advance(DAY - 0.001)
    assert w.owner() == HELPDESK
    w.clock.advance(0.001)
    assert w.owner() is None
    assert w.helpdesk.thread_owner().body == {"data": []}
    assert error_of(w.helpdesk.send_text("still there?")) == NOT_OWNER
    # The next message goes to the default app.
    result = w.says("hello again")
    assert hooks_to(result.webhooks) == [(BOT, "messaging"), (HELPDESK, "standby")]
    assert w.owner() == BOT


def test_cr_a_user_message_restarts_the_24_hours():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    w.clock.advance(20 * HOUR)
    w.says("any news?")
    w.clock.advance(20 * HOUR)
    assert w.owner() == HELPDESK


def test_cr_extend_keeps_control_past_24_hours_up_to_7_days():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    result = w.helpdesk.post("extend_thread_control", recipient={"id": PSID}, duration=3 * DAY)
    assert (result.status, result.body, result.webhooks) == (200, {"success": True}, [])
    owner = w.helpdesk.thread_owner().body
    assert owner == {
        "data": [{"thread_owner": {"app_id": HELPDESK, "expiration": T0 // 1000 + 3 * DAY}}]
    }
    w.clock.advance(3 * DAY - 1)
    assert w.owner() == HELPDESK
    w.clock.advance(1)
    assert w.owner() is None
    too_long = 7 * DAY + 1
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    refused = w.helpdesk.post("extend_thread_control", recipient={"id": PSID}, duration=too_long)
    assert error_of(refused) == {
        "message": "(#100) Param duration must be between 1 and 604800 seconds",
        "type": "OAuthException",
        "code": 100,
    }


def test_cr_release_then_only_the_default_app_may_send_while_idle():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    w.helpdesk.post("release_thread_control", recipient={"id": PSID})
    assert error_of(w.helpdesk.send_text("bye")) == NOT_OWNER
    result = w.bot.send_text("Anything else?")
    assert result.status == 200
    # The echo of an idle thread: the default app handles it, on messaging.
    assert hooks_to(result.webhooks) == [(BOT, "messaging"), (HELPDESK, "standby")]
    assert w.owner() is None


def test_cr_send_api_thread_control_release_sends_no_webhook():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    result = w.helpdesk.send_text("Bye!", thread_control={"control_type": "release"})
    assert result.status == 200
    assert [h.event["message"]["text"] for h in result.webhooks] == ["Bye!", "Bye!"]
    assert w.owner() is None


def test_cr_send_api_thread_control_pass_without_app_id_goes_to_the_default_app():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    result = w.helpdesk.send_text("Handing you back", thread_control={"control_type": "pass"})
    echoes, passes = result.webhooks[:2], result.webhooks[2:]
    assert hooks_to(echoes) == [(BOT, "standby"), (HELPDESK, "messaging")]
    assert [(h.app_id, h.event["pass_thread_control"]) for h in passes] == [
        (BOT, {"previous_owner_app_id": HELPDESK, "new_owner_app_id": BOT})
    ]
    assert w.owner() == BOT


def test_thread_control_in_the_send_api_is_refused_on_a_legacy_page():
    w = world("legacy")
    w.says("hi")
    result = w.bot.send_text("x", thread_control={"control_type": "release"})
    assert error_of(result)["code"] == 100
    assert (result.webhooks, w.owner()) == ([], BOT)


# --- §8.14 thread_owner visibility ----------------------------------------------------------


def test_cr_thread_owner_shows_the_app_to_the_owner_and_the_default_app_only():
    w = world("cr", other_app=True)
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    expiration = (T0 + DAY * 1000) // 1000
    full = {"data": [{"thread_owner": {"app_id": HELPDESK, "expiration": expiration}}]}
    assert w.helpdesk.thread_owner().body == full
    assert w.bot.thread_owner().body == full
    # §9.3: a thread another non-default app holds is not visible to a third app...
    assert error_of(w.other.thread_owner()) == {
        "message": "(#100) Thread owner is not visible to this app",
        "type": "OAuthException",
        "code": 100,
        "error_subcode": 2018234,
    }
    # ...while the default app's ownership shows its expiration only.
    w.bot.post("take_thread_control", recipient={"id": PSID})
    w.says("back")
    expiration = (T0 + DAY * 1000) // 1000
    assert w.other.thread_owner().body == {"data": [{"thread_owner": {"expiration": expiration}}]}


def test_legacy_thread_owner_shows_the_app_to_every_app():
    w = world("legacy", other_app=True)
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    for app in (w.helpdesk, w.bot, w.other):
        assert app.thread_owner().body == {"data": [{"thread_owner": {"app_id": HELPDESK}}]}


# --- zero-config Conversation Routing -------------------------------------------------------


def test_zero_config_every_app_gets_messaging_and_may_answer():
    w = world("cr-zero-config")
    result = w.says("hi")
    assert hooks_to(result.webhooks) == [(BOT, "messaging"), (HELPDESK, "messaging")]
    assert w.owner() is None
    assert w.helpdesk.send_text("helpdesk here").status == 200
    assert w.bot.send_text("bot here").status == 200


def test_zero_config_take_is_blocked_and_the_first_requester_gets_control():
    w = world("cr-zero-config")
    w.says("hi")
    refused = w.bot.post("take_thread_control", recipient={"id": PSID})
    assert (error_of(refused), refused.webhooks, w.owner()) == (TAKE_WITHOUT_CR, [], None)
    first = w.helpdesk.post("request_thread_control", recipient={"id": PSID}, metadata="mine")
    assert [(h.app_id, h.event["pass_thread_control"]) for h in first.webhooks] == [
        (
            HELPDESK,
            {"previous_owner_app_id": None, "new_owner_app_id": HELPDESK, "metadata": "mine"},
        )
    ]
    assert w.owner() == HELPDESK
    second = w.bot.post("request_thread_control", recipient={"id": PSID})
    assert hooks_to(second.webhooks) == [(HELPDESK, "messaging")]
    assert w.owner() == HELPDESK


def test_zero_config_any_app_may_pass_an_idle_thread():
    w = world("cr-zero-config")
    w.says("hi")
    result = w.helpdesk.pass_to(BOT)
    assert [(h.app_id, h.event["pass_thread_control"]) for h in result.webhooks] == [
        (BOT, {"previous_owner_app_id": None, "new_owner_app_id": BOT})
    ]
