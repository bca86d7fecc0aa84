"""The demo bot (issue 3, point 3): an ordinary app to the platform, in-process."""

from __future__ import annotations

from tests.emulator.support import BOT, HELPDESK, HELPDESK_SECRET, HELPDESK_TOKEN, PSID
from webhooks.emulator.bot import ASKING_FOR_HUMAN, HANDOVER_METADATA, PASSING, WELCOME_BACK
from webhooks.emulator.platform import appsecret_proof


def said(emulator, author: str = "bot") -> list[str]:
    return [
        e["text"]
        for e in emulator.transcript(PSID)
        if e["kind"] == "message" and e["author"] == author
    ]


def last_bot_message(emulator) -> dict:
    return [e for e in emulator.transcript(PSID) if e["author"] == "bot"][-1]


def helpdesk_call(emulator, edge: str, **params) -> None:
    result = emulator.graph_call(
        "POST",
        f"/me/{edge}",
        {"recipient": {"id": PSID}, **params},
        access_token=HELPDESK_TOKEN,
        appsecret_proof=appsecret_proof(HELPDESK_SECRET, HELPDESK_TOKEN),
    )
    assert result.status == 200, result.body


def test_the_bot_greets_and_offers_a_human_button_and_quick_replies(emulator):
    emulator.user_says(PSID, "hello")
    assert emulator.wait_idle()
    greeting = last_bot_message(emulator)
    assert greeting["text"].startswith("Hi! I'm the Demo Page bot.")
    assert greeting["buttons"] == [
        {"type": "postback", "title": "Talk to a human", "payload": "TALK_TO_HUMAN"}
    ]
    assert greeting["quick_replies"][-1] == {
        "content_type": "text",
        "title": "Talk to a human",
        "payload": "TALK_TO_HUMAN",
    }
    assert (greeting["metadata"], greeting["messaging_type"]) == ("demo-bot", "RESPONSE")


def test_the_bot_answers_canned_questions(emulator):
    emulator.user_says(PSID, "When are you open?")
    assert emulator.wait_idle()
    assert "Monday to Friday" in last_bot_message(emulator)["text"]
    emulator.user_says(PSID, "how long does shipping take")
    assert emulator.wait_idle()
    assert "ship within 1 business day" in last_bot_message(emulator)["text"]
    emulator.user_taps_quick_reply(PSID, last_bot_message(emulator)["mid"], 1)  # "Shipping"
    assert emulator.wait_idle()
    assert "ship within 1 business day" in last_bot_message(emulator)["text"]


def test_asked_for_a_human_the_bot_waits_for_a_request_then_passes_to_the_requester(
    emulator, receiver
):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    emulator.user_taps_button(PSID, last_bot_message(emulator)["mid"], 0)
    assert emulator.wait_idle()
    assert said(emulator)[-1] == ASKING_FOR_HUMAN
    assert emulator.owner(PSID) == BOT  # it did not pass by itself
    # The helpdesk saw the tap on standby, without payload, and asks.
    taps = [(c, e["postback"]) for c, e in receiver.events() if "postback" in e]
    assert [(c, set(p)) for c, p in taps] == [("standby", {"mid", "title"})]
    helpdesk_call(emulator, "request_thread_control", metadata="agent wanted")
    assert emulator.wait_idle()
    assert emulator.owner(PSID) == HELPDESK
    channel, event = receiver.events()[-1]
    assert (channel, event["pass_thread_control"]) == (
        "messaging",
        {
            "previous_owner_app_id": BOT,
            "new_owner_app_id": HELPDESK,
            "metadata": HANDOVER_METADATA,
        },
    )


def test_the_bot_ignores_what_it_gets_on_standby(emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    helpdesk_call(emulator, "request_thread_control")
    assert emulator.wait_idle()
    count = len(said(emulator))
    emulator.user_says(PSID, "what are your opening hours?")
    assert emulator.wait_idle()
    assert len(said(emulator)) == count


def test_the_bot_welcomes_the_user_back_when_control_returns(emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    helpdesk_call(emulator, "request_thread_control")
    assert emulator.wait_idle()
    helpdesk_call(emulator, "pass_thread_control", target_app_id=BOT, metadata="resolved")
    assert emulator.wait_idle()
    assert said(emulator)[-1] == WELCOME_BACK
    assert emulator.owner(PSID) == BOT


def test_the_bot_can_pass_on_its_own_when_configured(make_emulator, receiver):
    emulator = make_emulator(bot_passes_on_button=True)
    emulator.user_says(PSID, "I want to talk to a human")
    assert emulator.wait_idle()
    assert said(emulator)[-1] == PASSING
    assert emulator.owner(PSID) == HELPDESK
    assert receiver.events()[-1][1]["pass_thread_control"]["new_owner_app_id"] == HELPDESK


def test_the_bot_handles_a_duplicated_webhook_once(emulator):
    emulator.webhook_faults(duplicate=True, app_id=BOT)
    emulator.user_says(PSID, "hello")
    assert emulator.wait_idle()
    assert len(said(emulator)) == 1
    copies = [d for d in emulator.deliveries(BOT) if d.duplicate_of is not None]
    assert copies


def test_the_bot_refuses_a_forged_signature(emulator):
    assert emulator.bot is not None
    assert emulator.bot.handle(b'{"object":"page","entry":[]}', {"X-Hub-Signature-256": "x"}) == 403


def test_the_bot_stays_quiet_when_its_send_is_refused(make_emulator):
    emulator = make_emulator("legacy")  # legacy: control does not lapse, the window does
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    helpdesk_call(emulator, "request_thread_control")
    assert emulator.wait_idle()
    emulator.advance_clock(25 * 3600)
    count = len(said(emulator))
    helpdesk_call(emulator, "pass_thread_control", target_app_id=BOT)
    assert emulator.wait_idle()
    # Its "welcome back" is outside the window: refused, and the webhook still acknowledged.
    assert len(said(emulator)) == count
    refused = [c for c in emulator.graph_calls if c["source"] == "bot" and c["status"] != 200]
    assert [(c["error_code"], c["error_subcode"]) for c in refused] == [(10, 2018278)]
    assert emulator.deliveries(BOT)[-1].status == "delivered"
