"""Issue 10 §10: how a page routes conversations (requests refused, take allowed per app,
`thread_control` refused, the mode switched at runtime), page-level faults, §9.3's
thread_owner, personas on typing. Against the core, with a still clock."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.support import (
    BOT,
    BOT_TOKEN,
    DAY,
    HELPDESK,
    HELPDESK_TOKEN,
    NOT_OWNER,
    OTHER,
    PAGE,
    PSID,
    T0,
    TAKE_WITHOUT_CR,
    error_of,
    hooks_to,
    world,
)
from webhooks.emulator import EmulatorConfig
from webhooks.emulator.errors import EmulatorError

HANDOVER_DISABLED = {
    "message": "(#10) Handover Protocol APIs disabled for this page",
    "type": "OAuthException",
    "code": 10,
}
THREAD_CONTROL_REFUSED = {
    "message": "(#100) Param thread_control is not supported for this page",
    "type": "OAuthException",
    "code": 100,
}
RESTRICTED = {
    "message": "(#10) This Page is temporarily restricted from sending messages",
    "type": "OAuthException",
    "code": 10,
    "error_subcode": 1893063,
}
TOKEN_EXPIRED = {
    "message": "Error validating access token: Session has expired",
    "type": "OAuthException",
    "code": 190,
    "error_subcode": 463,
}
PERMISSION_MISSING = {
    "message": "(#230) Requires pages_messaging permission to manage the object",
    "type": "OAuthException",
    "code": 230,
}
NOT_VISIBLE = {
    "message": "(#100) Thread owner is not visible to this app",
    "type": "OAuthException",
    "code": 100,
    "error_subcode": 2018234,
}


def page_view(w: Any) -> dict[str, Any]:
    [page] = w.platform.state_view()["pages"]
    return page


def subscription_view(w: Any, app_id: str) -> dict[str, Any]:
    [app] = [a for a in w.platform.state_view()["apps"] if a["app_id"] == app_id]
    [sub] = app["subscriptions"]
    return sub


# --- the demo configuration -------------------------------------------------------------


def test_the_demo_config_can_refuse_requests_and_let_the_helpdesk_take():
    [page] = EmulatorConfig.demo(requests_refused=True, helpdesk_can_take=True).pages
    assert (page.mode, page.primary_app_id, page.requests_refused) == ("cr", BOT, True)
    assert page.take_control_app_ids == frozenset({BOT, HELPDESK})
    assert page.thread_control_refused is False
    [default] = EmulatorConfig.demo().pages
    assert (default.requests_refused, default.take_control_app_ids) == (False, frozenset({BOT}))


# --- 1. requests refused on a CR page with a default app ----------------------------------


def test_a_cr_page_that_refuses_requests_answers_10_and_changes_nothing():
    w = world("cr")
    w.says("hi")
    w.platform.requests_refused_set(page_id=PAGE, refused=True)
    before = w.transcript()
    result = w.helpdesk.post("request_thread_control", recipient={"id": PSID}, metadata="x")
    assert error_of(result) == HANDOVER_DISABLED
    assert (result.webhooks, w.owner(), w.transcript()) == ([], BOT, before)
    # Even a call that names no recipient: the API itself is off.
    assert error_of(w.helpdesk.post("request_thread_control")) == HANDOVER_DISABLED


def test_pass_and_release_keep_working_where_requests_are_refused():
    w = world("cr")
    w.says("hi")
    w.platform.requests_refused_set(page_id=PAGE, refused=True)
    passed = w.bot.pass_to(HELPDESK, metadata="human please")
    assert (passed.status, hooks_to(passed.webhooks)) == (200, [(HELPDESK, "messaging")])
    assert w.owner() == HELPDESK
    released = w.helpdesk.post("release_thread_control", recipient={"id": PSID})
    assert (released.status, released.webhooks, w.owner()) == (200, [], None)


@pytest.mark.parametrize("mode", ["legacy", "cr-zero-config"])
def test_requests_refused_applies_only_to_cr_pages_with_a_default_app(mode):
    w = world(mode)
    w.says("hi")
    w.platform.requests_refused_set(page_id=PAGE, refused=True)
    assert w.helpdesk.post("request_thread_control", recipient={"id": PSID}).status == 200


# --- 2. (#27) on take without a CR default app ------------------------------------------------


def test_zero_config_take_by_any_app_is_27_and_changes_nothing():
    w = world("cr-zero-config")
    w.says("hi")
    w.helpdesk.post("request_thread_control", recipient={"id": PSID})
    assert w.owner() == HELPDESK
    for app in (w.bot, w.helpdesk):
        refused = app.post("take_thread_control", recipient={"id": PSID})
        assert (error_of(refused), refused.webhooks, w.owner()) == (TAKE_WITHOUT_CR, [], HELPDESK)


def test_cr_take_by_an_allowed_app_and_by_anyone_of_an_idle_thread():
    w = world("cr", other_app=True)
    w.says("hi")
    w.platform.take_allowed_set(page_id=PAGE, app_id=HELPDESK, allowed=True)
    taken = w.helpdesk.post("take_thread_control", recipient={"id": PSID}, metadata="agent")
    assert (taken.status, hooks_to(taken.webhooks)) == (200, [(BOT, "messaging")])
    assert taken.webhooks[0].event["take_thread_control"] == {
        "previous_owner_app_id": BOT,
        "new_owner_app_id": HELPDESK,
        "metadata": "agent",
    }
    # Not allowed, and the thread is owned: still the permissions error.
    refused = w.other.post("take_thread_control", recipient={"id": PSID})
    assert (error_of(refused)["code"], refused.webhooks, w.owner()) == (200, [], HELPDESK)
    w.helpdesk.post("release_thread_control", recipient={"id": PSID})
    assert w.other.post("take_thread_control", recipient={"id": PSID}).status == 200
    assert w.owner() == OTHER


# --- 3. the Send API refuses thread_control on demand -----------------------------------------


def test_a_page_that_refuses_thread_control_sends_nothing():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    w.platform.thread_control_refused_set(page_id=PAGE, refused=True)
    before = w.transcript()
    for control in ({"control_type": "release"}, {"control_type": "pass", "app_id": BOT}):
        result = w.helpdesk.send_text("Bye!", thread_control=control)
        assert error_of(result) == THREAD_CONTROL_REFUSED
        assert (result.webhooks, w.owner(), w.transcript()) == ([], HELPDESK, before)
    # The same message without the field goes out.
    assert w.helpdesk.send_text("Bye!").status == 200


# --- 4. page-level faults: they last until turned off -------------------------------------------


def test_a_restricted_page_refuses_every_send_of_every_app_but_not_thread_control():
    w = world("cr")
    w.says("hi")
    w.platform.restrict(page_id=PAGE, restricted=True)
    before = w.transcript()
    for app in (w.bot, w.bot, w.helpdesk):  # twice: it is not a one-shot fault
        result = app.send_text("hello")
        assert (error_of(result), result.webhooks) == (RESTRICTED, [])
    typing = w.bot.post("messages", recipient={"id": PSID}, sender_action="typing_on")
    assert error_of(typing) == RESTRICTED
    assert w.transcript() == before
    assert w.platform.thread_view(page_id=PAGE, psid=PSID)["typing"] is None
    # Thread control is not a send.
    assert w.bot.pass_to(HELPDESK).status == 200
    assert page_view(w)["restricted"] is True
    w.platform.restrict(page_id=PAGE, restricted=False)
    assert w.helpdesk.send_text("back").status == 200
    assert page_view(w)["restricted"] is False


def test_an_expired_token_answers_190_463_on_every_call_of_that_app_only():
    w = world("cr")
    w.says("hi")
    w.platform.token_expire(page_id=PAGE, app_id=HELPDESK, expired=True)
    for result in (
        w.helpdesk.call("GET", "/me"),
        w.helpdesk.thread_owner(),
        w.helpdesk.post("request_thread_control", recipient={"id": PSID}),
        w.helpdesk.call("GET", "/me"),
    ):
        assert (error_of(result), result.webhooks) == (TOKEN_EXPIRED, [])
    assert w.bot.call("GET", "/me").status == 200
    assert subscription_view(w, HELPDESK)["token_expired"] is True
    w.platform.token_expire(page_id=PAGE, app_id=HELPDESK, expired=False)
    assert w.helpdesk.call("GET", "/me").status == 200
    assert subscription_view(w, HELPDESK)["token_expired"] is False


def test_a_reissued_token_works_and_the_old_one_answers_190_460():
    w = world("cr")
    w.platform.token_expire(page_id=PAGE, app_id=HELPDESK, expired=True)
    new = w.platform.token_reissue(page_id=PAGE, app_id=HELPDESK).body["access_token"]
    assert new not in (HELPDESK_TOKEN, BOT_TOKEN)
    old = w.helpdesk.call("GET", "/me")
    assert error_of(old) == {
        "message": "Error validating access token: The session has been invalidated because "
        "the user changed their password or Facebook has changed the session for security "
        "reasons.",
        "type": "OAuthException",
        "code": 190,
        "error_subcode": 460,
    }
    w.helpdesk.token = new
    # The new token is not expired, and its proof is made with the same app secret.
    assert w.helpdesk.call("GET", "/me").body == {"id": PAGE, "name": "Demo Page"}
    assert subscription_view(w, HELPDESK) | {"fields": []} == {
        "page_id": PAGE,
        "active": True,
        "fields": [],
        "token_expired": False,
        "token_reissued": True,
        "permission_revoked": False,
    }
    assert w.platform.apps[HELPDESK].page_tokens == {PAGE: new}
    with pytest.raises(EmulatorError) as bad:
        w.platform.token_reissue(page_id=PAGE, app_id=OTHER)
    assert (bad.value.status, w.platform.apps[HELPDESK].page_tokens) == (400, {PAGE: new})


def test_a_revoked_permission_refuses_that_apps_sends_only():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    w.platform.permission_revoke(page_id=PAGE, app_id=HELPDESK, revoked=True)
    before = w.transcript()
    for params in (
        {"message": {"text": "x"}, "messaging_type": "RESPONSE"},
        {"sender_action": "typing_on"},
    ):
        result = w.helpdesk.post("messages", recipient={"id": PSID}, **params)
        assert (error_of(result), result.webhooks) == (PERMISSION_MISSING, [])
    assert w.transcript() == before
    # Other calls of the app, and the other apps, are not affected.
    assert w.helpdesk.pass_to(BOT).status == 200
    assert w.bot.send_text("Hi again").status == 200
    assert subscription_view(w, HELPDESK)["permission_revoked"] is True
    w.platform.permission_revoke(page_id=PAGE, app_id=HELPDESK, revoked=False)
    w.bot.pass_to(HELPDESK)
    assert w.helpdesk.send_text("back").status == 200


# --- 5. switching the page's setup at runtime ---------------------------------------------------


def test_switching_to_zero_config_and_back_restores_the_default_app():
    w = world("cr")
    w.says("hi")
    w.platform.page_mode_set(page_id=PAGE, mode="cr-zero-config")
    assert (page_view(w)["mode"], page_view(w)["primary_app_id"]) == ("cr-zero-config", None)
    assert page_view(w)["mode_text"] == "Conversation Routing without a default app (zero-config)"
    refused = w.helpdesk.post("take_thread_control", recipient={"id": PSID})
    assert error_of(refused) == TAKE_WITHOUT_CR
    w.platform.page_mode_set(page_id=PAGE, mode="cr")
    assert (page_view(w)["mode"], page_view(w)["primary_app_id"]) == ("cr", BOT)
    assert page_view(w)["mode_text"] == "Conversation Routing with a default app (Demo Bot)"
    w.platform.page_mode_set(page_id=PAGE, mode="legacy")
    assert page_view(w)["mode_text"] == "Handover Protocol (legacy), primary receiver Demo Bot"
    assert (
        error_of(w.helpdesk.send_text("x", thread_control={"control_type": "release"}))["code"]
        == 100
    )


def test_switching_to_legacy_gives_idle_threads_to_the_primary():
    w = world("cr")
    w.says("hi")
    w.bot.post("release_thread_control", recipient={"id": PSID})
    w.bot.pass_to(HELPDESK)
    w.helpdesk.post("release_thread_control", recipient={"id": PSID})
    assert w.owner() is None
    w.platform.page_mode_set(page_id=PAGE, mode="legacy")
    assert w.owner() == BOT
    assert w.helpdesk.thread_owner().body == {"data": [{"thread_owner": {"app_id": BOT}}]}


def test_a_zero_config_page_switched_to_cr_gets_the_bot_as_default_app():
    w = world("cr-zero-config")
    w.platform.page_mode_set(page_id=PAGE, mode="cr")
    assert page_view(w)["primary_app_id"] == BOT


def test_take_allowed_requests_and_thread_control_refused_are_switched_per_page():
    w = world("cr")
    w.platform.take_allowed_set(page_id=PAGE, app_id=HELPDESK, allowed=True)
    w.platform.requests_refused_set(page_id=PAGE, refused=True)
    w.platform.thread_control_refused_set(page_id=PAGE, refused=True)
    assert {k: page_view(w)[k] for k in ("take_control_app_ids", "requests_refused")} == {
        "take_control_app_ids": [HELPDESK, BOT],
        "requests_refused": True,
    }
    assert page_view(w)["thread_control_refused"] is True
    w.platform.take_allowed_set(page_id=PAGE, app_id=BOT, allowed=False)
    assert page_view(w)["take_control_app_ids"] == [HELPDESK]


@pytest.mark.parametrize(
    ("call", "kwargs", "message"),
    [
        ("page_mode_set", {"mode": "hop"}, "mode must be one of legacy, cr, cr-zero-config"),
        (
            "take_allowed_set",
            {"app_id": OTHER, "allowed": True},
            f"app {OTHER} is not connected to page {PAGE}",
        ),
        (
            "token_expire",
            {"app_id": "42", "expired": True},
            f"app 42 is not connected to page {PAGE}",
        ),
        (
            "permission_revoke",
            {"app_id": "42", "revoked": True},
            f"app 42 is not connected to page {PAGE}",
        ),
    ],
)
def test_bad_setup_values_are_a_400_and_change_nothing(call, kwargs, message):
    w = world("cr")
    before = w.platform.state_view()
    with pytest.raises(EmulatorError) as refused:
        getattr(w.platform, call)(page_id=PAGE, **kwargs)
    assert (refused.value.status, refused.value.message) == (400, message)
    assert w.platform.state_view() == before


# --- 7. thread_owner: expiration, extend, and §9.3 ------------------------------------------------


def test_extend_moves_the_expiration_and_a_lapse_after_it_makes_the_thread_idle():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    before = w.helpdesk.thread_owner().body["data"][0]["thread_owner"]["expiration"]
    assert before == T0 // 1000 + DAY
    w.clock.advance(DAY - 10)
    w.helpdesk.post("extend_thread_control", recipient={"id": PSID}, duration=2 * DAY)
    after = w.helpdesk.thread_owner().body["data"][0]["thread_owner"]["expiration"]
    assert after == T0 // 1000 + 3 * DAY - 10
    w.clock.advance(2 * DAY - 1)
    assert w.helpdesk.thread_owner().body == {
        "data": [{"thread_owner": {"app_id": HELPDESK, "expiration": after}}]
    }
    w.clock.advance(1)
    assert w.helpdesk.thread_owner().body == {"data": []}
    assert w.bot.thread_owner().body == {"data": []}
    assert error_of(w.helpdesk.send_text("still there?")) == NOT_OWNER


def test_thread_owner_of_another_non_default_apps_thread_is_not_visible():
    w = world("cr", other_app=True)
    w.says("hi")
    w.bot.pass_to(OTHER)
    assert error_of(w.helpdesk.thread_owner()) == NOT_VISIBLE
    # The owner and the default app still see it.
    expiration = T0 // 1000 + DAY
    full = {"data": [{"thread_owner": {"app_id": OTHER, "expiration": expiration}}]}
    assert (w.other.thread_owner().body, w.bot.thread_owner().body) == (full, full)
    w.other.pass_to(BOT)
    assert w.helpdesk.thread_owner().body == {
        "data": [{"thread_owner": {"expiration": expiration}}]
    }


# --- 8. personas -------------------------------------------------------------------------------


def test_a_persona_needs_a_name_and_may_have_no_picture():
    w = world("cr")
    missing = w.helpdesk.post("personas", profile_picture_url="https://pics.example/a.png")
    assert error_of(missing) == {
        "message": "(#100) The parameter name is required (at most 50 characters)",
        "type": "OAuthException",
        "code": 100,
    }
    assert w.platform.personas == {}
    created = w.helpdesk.post("personas", name="Grace (Support)")
    persona_id = created.body["id"]
    assert w.helpdesk.call("GET", f"/{persona_id}").body == {
        "name": "Grace (Support)",
        "id": persona_id,
    }
    bad_picture = w.helpdesk.post("personas", name="X", profile_picture_url="not a url")
    assert error_of(bad_picture)["message"] == "(#100) Param profile_picture_url must be a URL"


def test_typing_with_a_persona_shows_the_persona_and_a_bad_persona_is_refused():
    w = world("cr")
    w.says("hi")
    w.bot.pass_to(HELPDESK)
    persona_id = w.helpdesk.post("personas", name="Grace").body["id"]
    refused = w.helpdesk.post(
        "messages", recipient={"id": PSID}, sender_action="typing_on", persona_id="999"
    )
    assert error_of(refused) == {
        "message": "(#100) Invalid persona_id",
        "type": "OAuthException",
        "code": 100,
    }
    assert w.platform.thread_view(page_id=PAGE, psid=PSID)["typing"] is None
    typing = w.helpdesk.post(
        "messages", recipient={"id": PSID}, sender_action="typing_on", persona_id=persona_id
    )
    assert typing.status == 200
    assert w.platform.thread_view(page_id=PAGE, psid=PSID)["typing"] == {
        "app_id": HELPDESK,
        "name": "Grace",
        "author": "agent",
        "persona": {"name": "Grace", "profile_picture_url": None},
    }
    sent = w.helpdesk.send_text("Hi, Grace here", persona_id=persona_id)
    assert sent.status == 200
    assert w.transcript()[-1]["persona"] == {"name": "Grace", "profile_picture_url": None}
    # The message ended the typing indicator.
    assert w.platform.thread_view(page_id=PAGE, psid=PSID)["typing"] is None
