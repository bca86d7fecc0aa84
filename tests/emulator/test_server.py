"""The emulator over HTTP: Graph API routing and parameters, fault injection, the clock,
the customer and control pages and their JSON API."""

from __future__ import annotations

import datetime
import http.client
import json
import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.emulator.support import (
    BOT,
    DAY,
    HELPDESK,
    HELPDESK_SECRET,
    HELPDESK_TOKEN,
    PAGE,
    PSID,
    user_texts,
)
from webhooks import graph_versions
from webhooks.emulator.platform import appsecret_proof

PROOF = appsecret_proof(HELPDESK_SECRET, HELPDESK_TOKEN)
# No proxy, ever: the emulator is on loopback.
http_session = requests.Session()
http_session.trust_env = False


def graph(
    emulator, method: str, path: str, *, prefix: str = "/v23.0", **kwargs: Any
) -> requests.Response:
    kwargs.setdefault("headers", {"Authorization": f"Bearer {HELPDESK_TOKEN}"})
    kwargs.setdefault("timeout", 5)
    params = {"appsecret_proof": PROOF, **kwargs.pop("params", {})}
    return http_session.request(
        method, f"{emulator.base_url}{prefix}{path}", params=params, **kwargs
    )


def api(emulator, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return http_session.request(
        method, f"{emulator.base_url}/emulator/api{path}", json=body, timeout=5
    )


def bot_passes_to_helpdesk(emulator) -> None:
    token = emulator.platform.apps[BOT].page_tokens[PAGE]
    result = emulator.graph_call(
        "POST",
        "/me/pass_thread_control",
        {"recipient": {"id": PSID}, "target_app_id": HELPDESK},
        access_token=token,
    )
    assert result.status == 200, result.body


# --- Graph API -------------------------------------------------------------------------


def _today(emulator) -> datetime.date:
    return datetime.datetime.fromtimestamp(emulator.clock.now_ms() / 1000, datetime.UTC).date()


def test_every_version_meta_serves_answers_as_itself(emulator):
    served = graph_versions.served(_today(emulator))
    assert "v23.0" in served
    for version in served:
        response = graph(emulator, "GET", "/me", prefix=f"/{version}")
        assert (response.status_code, response.json()) == (200, {"id": PAGE, "name": "Demo Page"})
        assert response.headers["facebook-api-version"] == version


@pytest.mark.parametrize("prefix", ["/v19.0", "/v20.0", ""])
def test_an_ended_version_or_none_answers_as_the_oldest_served(emulator, prefix):
    response = graph(emulator, "GET", "/me", prefix=prefix)
    assert (response.status_code, response.json()) == (200, {"id": PAGE, "name": "Demo Page"})
    oldest = graph_versions.served(_today(emulator))[-1]
    assert response.headers["facebook-api-version"] == oldest != prefix.lstrip("/")


def test_a_version_meta_never_had_is_refused_and_changes_nothing(emulator, receiver):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    before = emulator.thread(PSID)["messages"]
    body = {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "x"}}
    response = graph(emulator, "POST", "/me/messages", prefix="/v99.0", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        100,
        "(#100) Unsupported Graph API version v99.0",
    )
    assert "facebook-api-version" not in response.headers
    assert emulator.thread(PSID)["messages"] == before
    # the same call with a version Meta serves is sent
    assert graph(emulator, "POST", "/me/messages", json=body).status_code == 200
    assert len(emulator.thread(PSID)["messages"]) == len(before) + 1


def test_a_version_ends_on_the_emulators_clock(make_emulator):
    emulator = make_emulator()
    assert graph(emulator, "GET", "/me", prefix="/v23.0").headers["facebook-api-version"] == "v23.0"
    ends = graph_versions.known("v23.0").ends
    days = (ends - _today(emulator)).days + 1
    assert api(emulator, "POST", "/clock", {"advance_hours": days * 24}).status_code == 200
    answered = graph(emulator, "GET", "/me", prefix="/v23.0").headers["facebook-api-version"]
    assert answered == graph_versions.served(ends)[-1] == "v24.0"


def _debug_token(emulator, token: str, app_token: str = f"{HELPDESK}|{HELPDESK_SECRET}"):
    return http_session.get(
        f"{emulator.base_url}/v23.0/debug_token",
        params={"input_token": token, "access_token": app_token},
        timeout=5,
    )


def test_debug_token_says_what_a_page_token_is(emulator):
    response = _debug_token(emulator, HELPDESK_TOKEN)
    assert (response.status_code, response.json()) == (
        200,
        {
            "data": {
                "app_id": HELPDESK,
                "type": "PAGE",
                "application": "Helpdesk",
                "expires_at": 0,
                "is_valid": True,
                "profile_id": PAGE,
                "scopes": ["pages_manage_metadata", "pages_messaging", "pages_show_list"],
            }
        },
    )


def test_debug_token_shows_an_expired_token_and_a_revoked_permission(emulator):
    platform = emulator.platform
    platform.token_expire(page_id=PAGE, app_id=HELPDESK, expired=True)
    data = _debug_token(emulator, HELPDESK_TOKEN).json()["data"]
    assert (data["is_valid"], data["error"]["code"], data["error"]["subcode"]) == (False, 190, 463)
    platform.token_expire(page_id=PAGE, app_id=HELPDESK, expired=False)
    platform.permission_revoke(page_id=PAGE, app_id=HELPDESK, revoked=True)
    data = _debug_token(emulator, HELPDESK_TOKEN).json()["data"]
    assert (data["is_valid"], data["scopes"]) == (
        True,
        ["pages_manage_metadata", "pages_show_list"],
    )
    assert _debug_token(emulator, "no-such-token").json() == {
        "data": {
            "error": {"code": 190, "message": "Invalid OAuth access token."},
            "is_valid": False,
            "scopes": [],
        }
    }


def test_debug_token_needs_the_apps_own_token(emulator):
    for app_token in (HELPDESK_TOKEN, f"{HELPDESK}|wrong-secret", ""):
        response = _debug_token(emulator, HELPDESK_TOKEN, app_token)
        assert (response.status_code, response.json()["error"]["code"]) == (400, 190)


def test_parameters_as_json_body_query_string_or_form(emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    as_json = graph(
        emulator,
        "POST",
        "/me/messages",
        json={"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "a"}},
    )
    as_query = graph(
        emulator,
        "POST",
        "/me/messages",
        params={
            "recipient": json.dumps({"id": PSID}),
            "messaging_type": "RESPONSE",
            "message": json.dumps({"text": "b"}),
        },
    )
    as_form = graph(
        emulator,
        "POST",
        "/me/messages",
        data={
            "recipient": json.dumps({"id": PSID}),
            "messaging_type": "RESPONSE",
            "message": json.dumps({"text": "c"}),
            "access_token": HELPDESK_TOKEN,
        },
        headers={},
    )
    for response in (as_json, as_query, as_form):
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"recipient_id", "message_id"}
    texts = [e["text"] for e in emulator.transcript(PSID) if e["author"] == "agent"]
    assert texts == ["a", "b", "c"]


def test_the_token_may_be_a_query_parameter(emulator):
    response = graph(emulator, "GET", "/me", headers={}, params={"access_token": HELPDESK_TOKEN})
    assert response.status_code == 200


def test_graph_errors_are_http_400_in_graphs_envelope(emulator):
    response = graph(emulator, "GET", "/me", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"]) == (190, "OAuthException")
    assert error["fbtrace_id"]
    bad_json = graph(
        emulator,
        "POST",
        "/me/messages",
        data=b"{not json",
        headers={"Authorization": f"Bearer {HELPDESK_TOKEN}", "Content-Type": "application/json"},
    )
    assert (bad_json.status_code, bad_json.json()["error"]["code"]) == (400, 100)


def test_graph_calls_are_recorded(emulator):
    graph(emulator, "GET", "/me")
    calls = api(emulator, "GET", "/graph-calls").json()["calls"]
    assert calls[0]["path"] == "/me"
    assert (calls[0]["app_id"], calls[0]["status"], calls[0]["source"]) == (HELPDESK, 200, "http")


def test_profile_pictures_are_served_by_the_emulator(emulator):
    profile = graph(emulator, "GET", f"/{PSID}", params={"fields": "first_name,profile_pic"}).json()
    picture = http_session.get(profile["profile_pic"], timeout=5)
    assert picture.status_code == 200
    assert picture.headers["Content-Type"] == "image/svg+xml"
    assert b">AL</text>" in picture.content


# --- fault injection ---------------------------------------------------------------------


def test_the_next_graph_call_fails_with_a_5xx_then_the_api_works_again(emulator):
    armed = api(emulator, "POST", "/faults/graph", {"kind": "5xx", "count": 1, "status": 503})
    assert armed.status_code == 200
    failed = graph(emulator, "GET", "/me")
    assert failed.status_code == 503
    error = failed.json()["error"]
    assert (error["code"], error["is_transient"]) == (2, True)
    assert graph(emulator, "GET", "/me").status_code == 200


def test_rate_limit_fault_is_code_613_and_changes_nothing(emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    before = emulator.transcript(PSID)
    api(emulator, "POST", "/faults/graph", {"kind": "rate_limit", "count": 2, "path": "messages"})
    body = {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "x"}}
    # A call to another path is not affected by a path-scoped fault.
    assert graph(emulator, "GET", "/me").status_code == 200
    for _ in range(2):
        response = graph(emulator, "POST", "/me/messages", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (400, 613)
    assert emulator.transcript(PSID) == before
    assert graph(emulator, "POST", "/me/messages", json=body).status_code == 200


def test_timeout_fault_leaves_the_call_unanswered_and_by_default_not_applied(emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    api(emulator, "POST", "/faults/graph", {"kind": "timeout", "seconds": 0.3})
    body = {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "lost"}}
    with pytest.raises(requests.ConnectionError):
        graph(emulator, "POST", "/me/messages", json=body)
    assert "lost" not in [e.get("text") for e in emulator.transcript(PSID)]


def test_timeout_fault_with_applied_sends_the_message_but_loses_the_answer(emulator, receiver):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    api(emulator, "POST", "/faults/graph", {"kind": "timeout", "seconds": 5, "applied": True})
    body = {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "sent"}}
    with pytest.raises(requests.Timeout):
        graph(emulator, "POST", "/me/messages", json=body, timeout=0.3)
    # The client gave up, but the message went out: its echo tells the helpdesk.
    assert emulator.wait_idle()
    echoes = [e for _, e in receiver.events() if e.get("message", {}).get("is_echo")]
    assert echoes[-1]["message"]["text"] == "sent"


def test_the_bots_in_process_calls_are_not_affected_by_graph_faults(emulator):
    api(emulator, "POST", "/faults/graph", {"kind": "5xx", "count": 5})
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    assert [e["author"] for e in emulator.transcript(PSID) if e["kind"] == "message"] == [
        "user",
        "bot",
    ]
    assert len(api(emulator, "GET", "/state").json()["graph_faults"]) == 1
    assert api(emulator, "POST", "/faults/clear", {}).status_code == 200
    assert api(emulator, "GET", "/state").json()["graph_faults"] == []


def test_invalid_fault_requests_are_refused(emulator):
    assert api(emulator, "POST", "/faults/graph", {"kind": "explode"}).status_code == 400
    assert api(emulator, "POST", "/faults/graph", {"kind": "5xx", "status": 404}).status_code == 400
    assert api(emulator, "POST", "/faults/graph", {"kind": "5xx", "count": 0}).status_code == 400


def test_webhook_faults_by_api(emulator, receiver):
    response = api(emulator, "POST", "/faults/webhooks", {"duplicate": True})
    assert response.json()["webhook_faults"]["*"] == {
        "duplicate": True,
        "out_of_order": False,
        "late_seconds": 0.0,
        "late_echoes_only": True,
    }
    emulator.user_says(PSID, "hello")
    assert emulator.wait_idle()
    assert user_texts(receiver) == ["hello", "hello"]


def test_late_webhooks_by_api_and_cleared(emulator):
    response = api(
        emulator,
        "POST",
        "/faults/webhooks",
        {"late_seconds": 2.5, "late_echoes_only": False, "app_id": HELPDESK},
    )
    assert response.json()["webhook_faults"][HELPDESK] == {
        "duplicate": False,
        "out_of_order": False,
        "late_seconds": 2.5,
        "late_echoes_only": False,
    }
    assert api(emulator, "POST", "/faults/clear", {}).status_code == 200
    faults = api(emulator, "GET", "/state").json()["webhook_faults"]
    assert faults[HELPDESK]["late_seconds"] == 0
    assert faults["*"]["late_seconds"] == 0


def test_invalid_late_webhooks_are_refused(emulator):
    for body in ({"late_seconds": -1}, {"late_seconds": "soon"}, {"late_echoes_only": 1}):
        response = api(emulator, "POST", "/faults/webhooks", body)
        assert response.status_code == 400, body
    assert api(emulator, "GET", "/state").json()["webhook_faults"]["*"]["late_seconds"] == 0


def test_the_bot_takes_control_now(emulator, receiver):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    response = api(emulator, "POST", f"/threads/{PAGE}/{PSID}/take", {"metadata": "bot is back"})
    assert (response.status_code, response.json()) == (200, {"owner": BOT})
    assert emulator.wait_idle()
    channel, event = receiver.events()[-1]
    assert (channel, event["take_thread_control"]) == (
        "messaging",
        {"previous_owner_app_id": HELPDESK, "new_owner_app_id": BOT, "metadata": "bot is back"},
    )


def test_a_refused_take_is_a_409_with_the_reason(make_emulator):
    emulator = make_emulator()
    emulator.platform.pages[PAGE].take_control_app_ids = frozenset()
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    response = api(emulator, "POST", f"/threads/{PAGE}/{PSID}/take", {})
    assert response.status_code == 409
    assert "not allowed to take control" in response.json()["error"]


# --- the clock ------------------------------------------------------------------------------


def test_advancing_the_clock_closes_the_window(make_emulator):
    emulator = make_emulator("legacy")
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    response = api(emulator, "POST", "/clock", {"advance_hours": 25})
    assert response.json()["offset_seconds"] == 25 * 3600
    body = {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "x"}}
    error = graph(emulator, "POST", "/me/messages", json=body).json()["error"]
    assert (error["code"], error["error_subcode"]) == (10, 2018278)


def test_advancing_the_clock_makes_cr_control_lapse(emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)
    owner = graph(emulator, "GET", "/me/thread_owner", params={"recipient": PSID}).json()
    assert owner["data"][0]["thread_owner"]["app_id"] == HELPDESK
    api(emulator, "POST", "/clock", {"advance_seconds": DAY})
    assert graph(emulator, "GET", "/me/thread_owner", params={"recipient": PSID}).json() == {
        "data": []
    }
    thread = api(emulator, "GET", f"/threads/{PAGE}/{PSID}").json()
    assert (thread["owner"], thread["window_open"]) == (None, False)
    assert api(emulator, "POST", "/clock", {"advance_seconds": -1}).status_code == 400


# --- pages and their JSON API --------------------------------------------------------------


def test_the_customer_and_control_pages_are_served_with_a_strict_csp(emulator):
    page = http_session.get(f"{emulator.base_url}/", timeout=5)
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for marker in ('id="composer"', 'id="send"', 'id="messages"', "/emulator/static/customer.js"):
        assert marker in page.text
    control = http_session.get(f"{emulator.base_url}/control", timeout=5)
    for marker in ('id="threads-table"', 'id="graph-fault-form"', "/emulator/static/control.js"):
        assert marker in control.text
    script = http_session.get(f"{emulator.base_url}/emulator/static/customer.js", timeout=5)
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "innerHTML" not in script.text
    assert http_session.get(f"{emulator.base_url}/emulator/static/../config.py").status_code == 404


def test_the_customer_talks_to_the_bot_through_the_json_api(emulator, receiver):
    user = api(emulator, "POST", "/users", {"first_name": "Grace", "last_name": "Hopper"})
    assert user.status_code == 201
    psid = user.json()["psid"]
    sent = api(emulator, "POST", f"/threads/{PAGE}/{psid}/messages", {"text": "hello"})
    assert sent.status_code == 201
    assert emulator.wait_idle()
    thread = api(emulator, "GET", f"/threads/{PAGE}/{psid}").json()
    bot = [m for m in thread["messages"] if m["author"] == "bot"][-1]
    assert bot["buttons"] == [
        {"type": "postback", "title": "Talk to a human", "payload": "TALK_TO_HUMAN"}
    ]
    assert [q["title"] for q in bot["quick_replies"]] == [
        "Opening hours",
        "Shipping",
        "Talk to a human",
    ]
    # Only what is newer than `after`.
    newest = thread["messages"][-1]["seq"]
    assert api(emulator, "GET", f"/threads/{PAGE}/{psid}?after={newest}").json()["messages"] == []
    api(
        emulator,
        "POST",
        f"/threads/{PAGE}/{psid}/messages",
        {"quick_reply": {"mid": bot["mid"], "index": 0}},
    )
    assert emulator.wait_idle()
    texts = [m.get("text") for m in emulator.transcript(psid, page_id=PAGE)]
    assert texts[-2] == "Opening hours"
    assert "open Monday to Friday" in texts[-1]
    read = api(emulator, "POST", f"/threads/{PAGE}/{psid}/read", {})
    assert len(read.json()["delivered"]) == 2
    assert emulator.wait_idle()
    kinds = [
        next(k for k in ("read", "delivery", "message") if k in e) for _, e in receiver.events()
    ]
    assert kinds[-2:] == ["delivery", "read"]


def test_the_json_api_rejects_bad_requests(emulator):
    not_json = http_session.post(
        f"{emulator.base_url}/emulator/api/users", data="first_name=x", timeout=5
    )
    assert not_json.status_code == 415
    assert api(emulator, "POST", "/users", {"last_name": "x"}).status_code == 400
    assert api(emulator, "GET", f"/threads/{PAGE}/999").status_code == 404
    empty = api(emulator, "POST", f"/threads/{PAGE}/{PSID}/messages", {"text": "  "})
    assert (empty.status_code, empty.json()) == (400, {"error": "text is required"})
    bad_tap = api(emulator, "POST", f"/threads/{PAGE}/{PSID}/postbacks", {"mid": "m_x", "index": 0})
    assert bad_tap.status_code == 400


def test_the_state_lists_pages_apps_users_threads(emulator):
    state = api(emulator, "GET", "/state").json()
    assert state["graph_url"] == f"{emulator.base_url}/v23.0"
    assert [p["id"] for p in state["pages"]] == [PAGE]
    assert [(a["app_id"], a["role"], a["in_process"]) for a in state["apps"]] == [
        (BOT, "bot", True),
        (HELPDESK, "agent", False),
    ]
    assert [t["psid"] for t in state["threads"]] == [PSID]


def test_a_timeout_fault_does_not_keep_stop_waiting(make_emulator):
    emulator = make_emulator()
    emulator.fail_next_graph_calls("timeout", seconds=60)
    parts = urlsplit(emulator.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    connection.request("GET", "/v23.0/me")
    emulator.stop()  # must not wait the 60 s
    with pytest.raises((http.client.HTTPException, OSError)):
        connection.getresponse()


def test_a_client_that_goes_away_mid_request_is_not_an_error(emulator, capfd):
    # e.g. a helpdesk worker killed while its Graph call waits for an answer
    host, port = urlsplit(emulator.base_url).hostname, urlsplit(emulator.base_url).port
    client = socket.create_connection((host, port))
    client.sendall(b"POST /v23.0/me/messages HTTP/1.1\r\n")
    # Close with a reset (linger 0) while the server still reads the request.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    assert api(emulator, "GET", "/state").status_code == 200  # still serving
    time.sleep(0.2)
    assert "Traceback" not in capfd.readouterr().err
