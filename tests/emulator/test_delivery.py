"""Webhook delivery over loopback HTTP (§1.4-1.5, §8.1, §8.2, §8.17, §8.18): signing,
escaping, retries, time limit, unsubscription, the duplicate / out-of-order / late faults,
and the counts and observers of settled deliveries.

The "helpdesk" is a recording receiver on loopback; the demo bot runs in-process.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import requests

from tests.emulator.support import (
    BOT,
    BOT_SECRET,
    HELPDESK,
    HELPDESK_SECRET,
    PAGE,
    PSID,
    user_texts,
    valid_signature,
)
from webhooks.emulator.envelopes import encode_body


def test_webhooks_are_signed_with_the_apps_secret_over_the_raw_escaped_bytes(emulator, receiver):
    entry = emulator.user_says(PSID, "Grüße äöå, see https://example.com/a")
    post = receiver.wait_for_posts(1)[0]  # then the echo of the bot's answer
    # Non-ASCII escaped with lowercase hex, "/" escaped, as Meta sends it.
    assert b"Gr\\u00fc\\u00dfe \\u00e4\\u00f6\\u00e5" in post.body
    assert b"https:\\/\\/example.com\\/a" in post.body
    assert all(byte < 128 for byte in post.body)
    expected = hmac.new(HELPDESK_SECRET.encode(), post.body, hashlib.sha256).hexdigest()
    assert post.headers["X-Hub-Signature-256"] == f"sha256={expected}"
    assert post.headers["Content-Type"] == "application/json"
    # The bytes decode to Meta's envelope; the helpdesk, not owning, gets standby.
    assert post.payload == {
        "object": "page",
        "entry": [
            {
                "id": PAGE,
                "time": entry["timestamp"],
                "standby": [
                    {
                        "sender": {"id": PSID},
                        "recipient": {"id": PAGE},
                        "timestamp": entry["timestamp"],
                        "message": {
                            "mid": entry["mid"],
                            "text": "Grüße äöå, see https://example.com/a",
                        },
                    }
                ],
            }
        ],
    }


def test_each_app_gets_its_own_signature(emulator, receiver):
    emulator.user_says(PSID, "hello")
    assert emulator.wait_idle()
    bot_delivery = emulator.deliveries(BOT)[0]
    helpdesk_post = receiver.posts()[0]
    assert bot_delivery.body == helpdesk_post.body.replace(b'"standby"', b'"messaging"')
    assert not valid_signature(helpdesk_post, BOT_SECRET)
    assert valid_signature(helpdesk_post, HELPDESK_SECRET)


def test_encode_body_escapes_like_meta():
    assert encode_body({"t": "ä/ö"}) == b'{"t":"\\u00e4\\/\\u00f6"}'
    assert encode_body({"t": "ä/"}, escape_slashes=False) == b'{"t":"\\u00e4/"}'


def test_a_failed_delivery_is_retried_with_the_same_bytes(emulator, receiver):
    receiver.script.extend([(500, 0.0), (503, 0.0)])
    emulator.user_says(PSID, "hello")
    assert emulator.wait_idle()
    first, second, third = receiver.posts()[:3]  # then the echo of the bot's answer
    assert first.body == second.body == third.body
    assert first.headers["X-Hub-Signature-256"] == third.headers["X-Hub-Signature-256"]
    [delivery] = [d for d in emulator.deliveries(HELPDESK) if d.events[0]["kind"] == "message"]
    assert [a.status for a in delivery.attempts] == [500, 503, 200]
    assert delivery.status == "delivered"


def test_no_answer_within_the_time_limit_is_a_failure(make_emulator, receiver):
    emulator = make_emulator(delivery_timeout_seconds=0.2)
    receiver.script.append((200, 0.5))  # answers, but too late
    emulator.user_says(PSID, "hello")
    assert emulator.wait_idle()
    [delivery] = [d for d in emulator.deliveries(HELPDESK) if d.events[0]["kind"] == "message"]
    assert [(a.status, a.error) for a in delivery.attempts] == [
        (None, "no answer within the time limit"),
        (200, ""),
    ]


def test_retries_are_bounded_and_later_deliveries_still_go_out(emulator, receiver):
    receiver.script.extend([(500, 0.0)] * 3)
    emulator.user_says(PSID, "first")
    emulator.user_says(PSID, "second")
    assert emulator.wait_idle()
    messages = [d for d in emulator.deliveries(HELPDESK) if d.events[0]["kind"] == "message"]
    assert [(d.status, len(d.attempts)) for d in messages] == [("failed", 3), ("delivered", 1)]
    assert user_texts(receiver)[-1] == "second"


def test_an_app_failing_for_an_hour_is_unsubscribed_until_it_subscribes_again(
    make_emulator, receiver
):
    emulator = make_emulator(retry_delays_seconds=(0.05,) * 40)
    receiver.default_status = 500
    emulator.user_says(PSID, "hello")
    receiver.wait_for_posts(1)
    emulator.advance_clock(15 * 60)
    receiver.wait_for_posts(receiver.posts().__len__() + 1)
    emulator.advance_clock(45 * 60)
    assert emulator.wait_idle()
    [delivery] = [d for d in emulator.deliveries(HELPDESK) if d.events[0]["kind"] == "message"]
    assert delivery.status == "dropped"
    alerts = [a["kind"] for a in emulator.dispatcher.health_view()[HELPDESK]["alerts"]]
    assert alerts == ["failing for 15 minutes", "unsubscribed: failing for 1 hour"]
    assert not emulator.platform.subscriptions[(HELPDESK, PAGE)].active
    # Unsubscribed: nothing more is even queued for it.
    count = len(receiver.posts())
    emulator.user_says(PSID, "anyone?")
    assert emulator.wait_idle()
    assert len(receiver.posts()) == count
    # The app is fixed and subscribes again (verification handshake first).
    receiver.default_status = 200
    assert emulator.subscribe(HELPDESK) == (True, "verified")
    emulator.user_says(PSID, "back?")
    assert emulator.wait_idle()
    assert user_texts(receiver)[-1] == "back?"


def test_the_verification_handshake_needs_the_challenge_back(emulator, receiver):
    assert emulator.subscribe(HELPDESK) == (True, "verified")
    receiver.verify_token = "another-token"
    assert emulator.subscribe(HELPDESK) == (False, "HTTP 403")


def test_duplicate_fault_delivers_every_webhook_twice(emulator, receiver):
    emulator.webhook_faults(duplicate=True)
    emulator.user_says(PSID, "hello")
    assert emulator.wait_idle()
    posts = receiver.posts()
    assert len(posts) == 4  # the user's message and the bot's echo, twice each
    assert posts[0].body == posts[1].body and posts[2].body == posts[3].body
    message, message_copy, echo, echo_copy = emulator.deliveries(HELPDESK)
    assert [d.duplicate_of for d in (message, message_copy, echo, echo_copy)] == [
        None,
        message.id,
        None,
        echo.id,
    ]
    # The in-process bot is not affected by the default fault (it greeted once).
    assert len([e for e in emulator.transcript(PSID) if e["author"] == "bot"]) == 1


def test_out_of_order_fault_sends_a_delivery_after_the_next_one(make_emulator, receiver):
    emulator = make_emulator(bot_app_id=None)  # no bot: only the user's messages
    emulator.webhook_faults(out_of_order=True)
    emulator.user_says(PSID, "first")
    emulator.user_says(PSID, "second")
    emulator.user_says(PSID, "third")
    assert emulator.wait_idle()
    # "first" is held until "second" is sent; "third" is held too, until no later one came.
    assert [e["message"]["text"] for _, e in receiver.events()] == ["second", "first", "third"]
    timestamps = [e["timestamp"] for _, e in receiver.events()]
    assert timestamps[0] > timestamps[1]  # the receiver must sort by timestamp


def test_a_held_delivery_goes_out_when_no_later_one_comes(make_emulator, receiver):
    emulator = make_emulator(bot_app_id=None)
    emulator.webhook_faults(out_of_order=True)
    emulator.user_says(PSID, "alone")
    assert [d.status for d in emulator.deliveries(HELPDESK)] in ([], ["held"])
    assert emulator.wait_idle(timeout=3)
    assert [e["message"]["text"] for _, e in receiver.events()] == ["alone"]


def _kinds(receiver) -> list[str]:
    return [
        "echo" if "message" in e and e["message"].get("is_echo") else "message"
        for _, e in receiver.events()
    ]


def test_late_fault_holds_echoes_while_other_webhooks_go_on(emulator, receiver):
    emulator.webhook_faults(late_seconds=0.5)
    emulator.user_says(PSID, "first")
    receiver.wait_for_posts(1)  # the bot's answer to it is echoed, and held
    emulator.user_says(PSID, "second")
    assert emulator.wait_idle()
    # Both echoes come after the later message: a receiver must not depend on the
    # echo to have arrived before what followed.
    assert _kinds(receiver) == ["message", "message", "echo", "echo"]
    assert user_texts(receiver) == ["first", "second"]
    assert emulator.dispatcher.counts(HELPDESK).events_late == 2
    # The in-process bot is not affected by the default fault.
    assert emulator.dispatcher.counts(BOT).events_late == 0


def test_late_fault_for_all_webhooks_keeps_their_order(make_emulator, receiver):
    emulator = make_emulator(bot_app_id=None)
    emulator.webhook_faults(app_id=HELPDESK, late_seconds=0.3, late_echoes_only=False)
    emulator.user_says(PSID, "one")
    emulator.user_says(PSID, "two")
    assert receiver.posts() == []  # held
    assert emulator.wait_idle(timeout=5)
    assert user_texts(receiver) == ["one", "two"]
    emulator.webhook_faults(app_id=HELPDESK, late_seconds=0)
    emulator.user_says(PSID, "three")
    assert emulator.wait_idle()
    assert user_texts(receiver) == ["one", "two", "three"]
    assert emulator.dispatcher.counts(HELPDESK).events_late == 2


def test_settled_deliveries_are_counted_and_observed(emulator, receiver):
    settled = []
    emulator.on_delivery(lambda d: settled.append((d.app_id, d.status, d.duplicate_of)))
    receiver.script.extend([(500, 0.0)] * 3)  # the first delivery fails for good
    emulator.user_says(PSID, "lost")
    assert emulator.wait_idle()
    emulator.webhook_faults(duplicate=True)
    emulator.user_says(PSID, "twice")
    assert emulator.wait_idle()
    counts = emulator.dispatcher.counts(HELPDESK)
    # lost: 3 attempts; its echo, "twice" and its echo: 1 each; 2 copies.
    assert (counts.posts, counts.events_failed, counts.events_acked) == (8, 1, 5)
    assert counts.deliveries_acked == 5
    mine = [s for s in settled if s[0] == HELPDESK]
    assert [status for _, status, _ in mine] == ["failed", *["delivered"] * 5]
    assert len([s for s in mine if s[2] is not None]) == 2  # the copies
    assert emulator.state()["apps"][1]["delivery"]["counts"]["events_acked"] == 5


def test_batching_puts_several_entries_in_one_post(make_emulator, receiver):
    emulator = make_emulator(bot_app_id=None, batch_max=10)
    receiver.script.append((200, 0.3))  # keeps the worker busy while the next ones queue
    emulator.user_says(PSID, "a")
    receiver.wait_for_posts(1)
    emulator.user_says(PSID, "b")
    emulator.user_says(PSID, "c")
    assert emulator.wait_idle()
    sizes = [len(post.payload["entry"]) for post in receiver.posts()]
    assert sizes == [1, 2]
    assert all(len(entry["standby"]) == 1 for p in receiver.posts() for entry in p.payload["entry"])


def test_handover_webhooks_reach_the_helpdesk_over_http(emulator, receiver):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    token = emulator.platform.apps[BOT].page_tokens[PAGE]
    result = emulator.graph_call(
        "POST",
        "/me/pass_thread_control",
        {"recipient": {"id": PSID}, "target_app_id": HELPDESK, "metadata": "over to you"},
        access_token=token,
    )
    assert result.status == 200
    assert emulator.wait_idle()
    channel, event = receiver.events()[-1]
    assert (channel, event["pass_thread_control"]) == (
        "messaging",
        {"previous_owner_app_id": BOT, "new_owner_app_id": HELPDESK, "metadata": "over to you"},
    )
    assert json.loads(receiver.posts()[-1].body) == receiver.posts()[-1].payload


def test_the_callback_url_can_be_set_after_start(make_emulator, receiver):
    # e.g. the helpdesk's port is only known once the emulator's Graph URL is.
    emulator = make_emulator()
    emulator.set_callback_url(HELPDESK, None)
    emulator.user_says(PSID, "nobody listens")
    assert emulator.wait_idle()
    assert emulator.deliveries(HELPDESK) == []
    session = requests.Session()
    session.trust_env = False  # never a proxy for loopback
    response = session.post(
        f"{emulator.base_url}/emulator/api/apps/{HELPDESK}/callback",
        json={"url": receiver.url},
        timeout=5,
    )
    assert response.json() == {"callback_url": receiver.url}
    emulator.user_says(PSID, "now?")
    assert emulator.wait_idle()
    assert user_texts(receiver) == ["now?"]
