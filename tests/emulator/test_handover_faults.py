"""Issue 10 §10 over HTTP: handover calls that time out or answer 5xx after taking effect,
release to the default app with no webhook, page-level faults on the demo bot too, the
JSON API that switches a page's setup, and `--page-setup`."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.emulator.support import BOT, DAY, HELPDESK, HELPDESK_SECRET, PAGE, PSID
from tests.emulator.test_server import api, bot_passes_to_helpdesk, graph
from webhooks.emulator.bot import HANDOVER_METADATA, WELCOME_BACK
from webhooks.emulator.errors import EmulatorError
from webhooks.emulator.platform import appsecret_proof

HANDOVER_KINDS = ("pass_thread_control", "take_thread_control", "request_thread_control")


def handovers(emulator, app_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The handover events delivered to an app, in order."""
    return [
        (kind, event[kind])
        for delivery in emulator.deliveries(app_id)
        for entry in delivery.payload["entry"]
        for event in entry.get("messaging", []) + entry.get("standby", [])
        for kind in HANDOVER_KINDS
        if kind in event
    ]


def bot_texts(emulator) -> list[str]:
    return [e["text"] for e in emulator.transcript(PSID) if e.get("author") == "bot"]


def helpdesk_owns(emulator) -> None:
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    assert emulator.wait_idle()
    assert emulator.owner(PSID) == HELPDESK


def bot_owns(emulator) -> None:
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    assert emulator.owner(PSID) == BOT


def expiration(emulator) -> int | None:
    return emulator.thread(PSID)["expiration"]


# --- 6. handover calls that time out or 5xx after taking effect -------------------------------

# edge -> (set up, parameters, the owner after, the handover events the bot gets, the
# helpdesk's): what the call does when it is applied.
EDGES: dict[str, Any] = {
    "take_thread_control": (
        bot_owns,
        {"metadata": "agent"},
        HELPDESK,
        [
            (
                "take_thread_control",
                {
                    "previous_owner_app_id": BOT,
                    "new_owner_app_id": HELPDESK,
                    "metadata": "agent",
                },
            )
        ],
        [],
    ),
    "pass_thread_control": (
        helpdesk_owns,
        {"target_app_id": BOT},
        BOT,
        [
            (
                "pass_thread_control",
                {"previous_owner_app_id": HELPDESK, "new_owner_app_id": BOT},
            )
        ],
        [],
    ),
    "release_thread_control": (helpdesk_owns, {}, None, [], []),
    # The demo bot answers a request by passing to the requester.
    "request_thread_control": (
        bot_owns,
        {"metadata": "please"},
        HELPDESK,
        [
            (
                "request_thread_control",
                {"requested_owner_app_id": int(HELPDESK), "metadata": "please"},
            )
        ],
        [
            (
                "pass_thread_control",
                {
                    "previous_owner_app_id": BOT,
                    "new_owner_app_id": HELPDESK,
                    "metadata": HANDOVER_METADATA,
                },
            )
        ],
    ),
}


def arm(emulator, kind: str, edge: str) -> None:
    if kind == "timeout":
        emulator.fail_next_graph_calls("timeout", applied=True, path=edge, seconds=0.3)
    else:
        emulator.fail_next_graph_calls("5xx", applied=True, path=edge, status=502)


def call_unanswered(emulator, kind: str, edge: str, params: dict[str, Any]) -> None:
    """The call; a timeout is closed unanswered, a 5xx is Graph's transient error."""
    body = {"recipient": {"id": PSID}, **params}
    if kind == "timeout":
        with pytest.raises(requests.ConnectionError):
            graph(emulator, "POST", f"/me/{edge}", json=body, timeout=10)
        return
    response = graph(emulator, "POST", f"/me/{edge}", json=body)
    assert response.status_code == 502
    error = response.json()["error"]
    assert isinstance(error.pop("fbtrace_id"), str)
    assert error == {
        "message": "An unexpected error has occurred. Please retry your request later.",
        "type": "OAuthException",
        "is_transient": True,
        "code": 2,
    }


@pytest.mark.parametrize("kind", ["timeout", "5xx"])
@pytest.mark.parametrize("edge", list(EDGES))
def test_a_handover_call_takes_effect_before_it_times_out_or_fails(
    make_emulator, receiver, kind, edge
):
    emulator = make_emulator()
    emulator.page_take_allowed_set(HELPDESK, True)
    setup, params, owner_after, bot_gets, helpdesk_gets = EDGES[edge]
    setup(emulator)
    bot_before, helpdesk_before = handovers(emulator, BOT), handovers(emulator, HELPDESK)
    arm(emulator, kind, edge)
    call_unanswered(emulator, kind, edge, params)
    assert emulator.wait_idle()
    assert emulator.owner(PSID) == owner_after
    assert handovers(emulator, BOT)[len(bot_before) :] == bot_gets
    assert handovers(emulator, HELPDESK)[len(helpdesk_before) :] == helpdesk_gets
    [recorded] = [c for c in emulator.graph_calls if c["fault"]]
    assert (recorded["path"], recorded["fault"]) == (f"/me/{edge}", f"{kind} (applied)")
    # The one call took effect once: the next one is answered and is not faulted.
    assert emulator.graph_faults.view() == []


@pytest.mark.parametrize("kind", ["timeout", "5xx"])
def test_an_extend_takes_effect_before_it_times_out_or_fails(make_emulator, kind):
    emulator = make_emulator()
    helpdesk_owns(emulator)
    before = expiration(emulator)
    arm(emulator, kind, "extend_thread_control")
    call_unanswered(emulator, kind, "extend_thread_control", {"duration": 3 * DAY})
    after = expiration(emulator)
    assert before is not None and after is not None
    assert after - before > 2 * DAY * 1000
    assert emulator.owner(PSID) == HELPDESK


def test_a_5xx_not_applied_changes_nothing(make_emulator):
    emulator = make_emulator()
    emulator.page_take_allowed_set(HELPDESK, True)
    bot_owns(emulator)
    emulator.fail_next_graph_calls("5xx", path="take_thread_control", status=500)
    response = graph(emulator, "POST", "/me/take_thread_control", json={"recipient": {"id": PSID}})
    assert (response.status_code, response.json()["error"]["code"]) == (500, 2)
    assert emulator.wait_idle()
    assert emulator.owner(PSID) == BOT
    assert handovers(emulator, BOT) == []


# --- 10. release: the default app answers next, and no webhook for the release ------------------


@pytest.mark.parametrize("how", ["edge", "send_api"])
def test_after_a_release_the_default_app_answers_and_no_one_is_told(emulator, receiver, how):
    helpdesk_owns(emulator)
    posts_before = len(receiver.posts())
    bot_deliveries_before = len(emulator.deliveries(BOT))
    if how == "edge":
        response = graph(
            emulator, "POST", "/me/release_thread_control", json={"recipient": {"id": PSID}}
        )
    else:
        response = graph(
            emulator,
            "POST",
            "/me/messages",
            json={
                "recipient": {"id": PSID},
                "messaging_type": "RESPONSE",
                "message": {"text": "Bye!"},
                "thread_control": {"control_type": "release"},
            },
        )
    assert response.status_code == 200, response.text
    assert emulator.wait_idle()
    assert emulator.owner(PSID) is None
    new_posts = receiver.posts()[posts_before:]
    bot_new = emulator.deliveries(BOT)[bot_deliveries_before:]
    if how == "edge":
        assert (new_posts, bot_new) == ([], [])
    else:
        # Only the echoes of "Bye!": nothing about the release.
        for events in [e for r in new_posts for _, e in r.events()] + [
            e
            for d in bot_new
            for entry in d.payload["entry"]
            for e in entry.get("messaging", []) + entry.get("standby", [])
        ]:
            assert events["message"]["is_echo"] is True
            assert events["message"]["text"] == "Bye!"
        assert len(new_posts) == 1 and len(bot_new) == 1
    texts_before = bot_texts(emulator)
    emulator.user_says(PSID, "Opening hours?")
    assert emulator.wait_idle()
    assert emulator.owner(PSID) == BOT
    assert len(bot_texts(emulator)) == len(texts_before) + 1
    assert WELCOME_BACK not in bot_texts(emulator)[len(texts_before) :]
    # The helpdesk hears the customer on standby.
    heard = [
        channel
        for channel, event in receiver.events()
        if event.get("message", {}).get("text") == "Opening hours?"
    ]
    assert heard == ["standby"]


# --- 4. page-level faults through the Emulator and its JSON API -------------------------------


def test_a_restricted_page_silences_the_in_process_bot_until_lifted(emulator):
    emulator.page_restrict()
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    assert bot_texts(emulator) == []
    refused = [c for c in emulator.graph_calls if c["source"] == "bot"]
    assert {(c["status"], c["error_code"], c["error_subcode"]) for c in refused} == {
        (400, 10, 1893063)
    }
    assert emulator.state()["pages"][0]["restricted"] is True
    emulator.page_restrict(False)
    emulator.user_says(PSID, "hi again")
    assert emulator.wait_idle()
    assert len(bot_texts(emulator)) == 1


def test_a_reissued_token_is_answered_and_the_old_one_is_190_460(emulator):
    response = api(emulator, "POST", f"/pages/{PAGE}/apps/{HELPDESK}/token-reissue", {})
    assert response.status_code == 200
    token = response.json()["access_token"]
    old = graph(emulator, "GET", "/me")
    assert (old.status_code, old.json()["error"]["code"], old.json()["error"]["error_subcode"]) == (
        400,
        190,
        460,
    )
    new = graph(
        emulator,
        "GET",
        "/me",
        headers={"Authorization": f"Bearer {token}"},
        params={"appsecret_proof": appsecret_proof(HELPDESK_SECRET, token)},
    )
    assert new.json() == {"id": PAGE, "name": "Demo Page"}


def test_page_faults_by_the_json_api_show_in_the_state(emulator):
    base = f"/pages/{PAGE}/apps/{HELPDESK}"
    assert api(emulator, "POST", f"/pages/{PAGE}/restricted", {"restricted": True}).ok
    assert api(emulator, "POST", f"{base}/token-expired", {"expired": True}).ok
    assert api(emulator, "POST", f"{base}/permission-revoked", {"revoked": True}).ok
    state = api(emulator, "GET", "/state").json()
    assert state["pages"][0]["restricted"] is True
    [helpdesk] = [a for a in state["apps"] if a["app_id"] == HELPDESK]
    sub = helpdesk["subscriptions"][0]
    assert (sub["token_expired"], sub["permission_revoked"], sub["token_reissued"]) == (
        True,
        True,
        False,
    )
    expired = graph(emulator, "GET", "/me").json()["error"]
    assert (expired["code"], expired["error_subcode"]) == (190, 463)


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/restricted", {"restricted": "yes"}, "restricted must be true or false"),
        ("/restricted", {}, "restricted must be true or false"),
        ("/mode", {"mode": "hop"}, "mode must be one of legacy, cr, cr-zero-config"),
        ("/mode", {}, "mode is required"),
        ("/take-allowed", {"app_id": HELPDESK, "allowed": 1}, "allowed must be true or false"),
        (
            "/take-allowed",
            {"app_id": "42", "allowed": True},
            f"app 42 is not connected to page {PAGE}",
        ),
        ("/requests-refused", {"refused": None}, "refused must be true or false"),
        ("/thread-control-refused", {"refused": "no"}, "refused must be true or false"),
        (f"/apps/{HELPDESK}/token-expired", {"expired": 0}, "expired must be true or false"),
        ("/apps/42/token-reissue", {}, f"app 42 is not connected to page {PAGE}"),
        (f"/apps/{HELPDESK}/permission-revoked", {}, "revoked must be true or false"),
    ],
)
def test_bad_page_settings_are_a_400_and_change_nothing(emulator, path, body, error):
    before = api(emulator, "GET", "/state").json()
    response = api(emulator, "POST", f"/pages/{PAGE}{path}", body)
    assert (response.status_code, response.json()) == (400, {"error": error})
    after = api(emulator, "GET", "/state").json()
    assert (after["pages"], after["apps"]) == (before["pages"], before["apps"])


def test_the_emulators_setters_refuse_what_is_not_a_bool(emulator):
    for call in (
        lambda: emulator.page_restrict("yes"),  # type: ignore[arg-type]
        lambda: emulator.token_expire(HELPDESK, 1),  # type: ignore[arg-type]
        lambda: emulator.page_take_allowed_set(HELPDESK, None),  # type: ignore[arg-type]
    ):
        with pytest.raises(EmulatorError):
            call()
    assert emulator.state()["pages"][0]["restricted"] is False


# --- 5. the page's setup by the JSON API ------------------------------------------------------


def test_the_page_setup_is_switched_by_the_json_api(emulator):
    answer = api(emulator, "POST", f"/pages/{PAGE}/mode", {"mode": "cr-zero-config"}).json()
    assert (answer["mode"], answer["primary_app_id"]) == ("cr-zero-config", None)
    answer = api(emulator, "POST", f"/pages/{PAGE}/mode", {"mode": "cr"}).json()
    assert (answer["mode"], answer["primary_app_id"]) == ("cr", BOT)
    answer = api(
        emulator, "POST", f"/pages/{PAGE}/take-allowed", {"app_id": HELPDESK, "allowed": True}
    ).json()
    assert answer["take_control_app_ids"] == [HELPDESK, BOT]
    answer = api(emulator, "POST", f"/pages/{PAGE}/requests-refused", {"refused": True}).json()
    assert answer["requests_refused"] is True
    answer = api(
        emulator, "POST", f"/pages/{PAGE}/thread-control-refused", {"refused": True}
    ).json()
    assert answer == {
        "id": PAGE,
        "name": "Demo Page",
        "mode": "cr",
        "mode_text": "Conversation Routing with a default app (Demo Bot)",
        "primary_app_id": BOT,
        "take_control_app_ids": [HELPDESK, BOT],
        "requests_refused": True,
        "thread_control_refused": True,
        "restricted": False,
    }
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    refused = graph(
        emulator, "POST", "/me/request_thread_control", json={"recipient": {"id": PSID}}
    )
    assert refused.json()["error"]["message"] == (
        "(#10) Handover Protocol APIs disabled for this page"
    )
    assert emulator.owner(PSID) == BOT
