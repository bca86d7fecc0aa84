"""The emulator's JSON API (`/emulator/api/...`): what the customer and control pages
and the tests call. One handler per route of `server.ROUTES`; each parses the request,
calls one `Emulator` method, and answers JSON.
"""

from __future__ import annotations

from typing import Any, cast

from webhooks.emulator.faults import FAULT_KINDS, FaultKind
from webhooks.emulator.web import ApiError, Reply, Request, json_reply

# --- reading -------------------------------------------------------------------------------


def state(request: Request) -> Reply:
    return json_reply(200, request.emulator.state())


def deliveries(request: Request) -> Reply:
    query = request.query
    app_id = query["app_id"][0] if query.get("app_id") else None
    limit = _int((query.get("limit") or ["50"])[0], "limit")
    records = request.emulator.deliveries(app_id)[-limit:]
    return json_reply(200, {"deliveries": [d.as_dict() for d in reversed(records)]})


def graph_calls(request: Request) -> Reply:
    limit = _int((request.query.get("limit") or ["50"])[0], "limit")
    calls = list(request.emulator.graph_calls)[-limit:]
    return json_reply(200, {"calls": list(reversed(calls))})


def thread(request: Request) -> Reply:
    after = _int((request.query.get("after") or ["0"])[0], "after")
    page_id, psid = request.args["page"], request.args["psid"]
    return json_reply(200, request.emulator.thread(psid, page_id=page_id, after=after))


# --- the customer ----------------------------------------------------------------------------


def user_create(request: Request) -> Reply:
    body, emulator = request.body, request.emulator
    user = emulator.user_create(
        _str(body, "first_name"),
        _str(body, "last_name", required=False),
        page_id=body.get("page_id") or None,
    )
    return json_reply(201, emulator.platform.user_json(user))


def thread_message(request: Request) -> Reply:
    body, emulator = request.body, request.emulator
    page_id, psid = request.args["page"], request.args["psid"]
    reply = body.get("quick_reply")
    if isinstance(reply, dict):
        entry = emulator.user_taps_quick_reply(
            psid, _str(reply, "mid"), _int(reply.get("index"), "index"), page_id=page_id
        )
    else:
        entry = emulator.user_says(psid, _str(body, "text"), page_id=page_id)
    return json_reply(201, entry)


def thread_postback(request: Request) -> Reply:
    body = request.body
    entry = request.emulator.user_taps_button(
        request.args["psid"],
        _str(body, "mid"),
        _int(body.get("index"), "index"),
        page_id=request.args["page"],
    )
    return json_reply(201, entry)


def thread_read(request: Request) -> Reply:
    return json_reply(
        200, request.emulator.user_reads(request.args["psid"], page_id=request.args["page"])
    )


# --- the control page: threads, apps, pages -----------------------------------------------


def thread_take(request: Request) -> Reply:
    body, emulator = request.body, request.emulator
    page_id, psid = request.args["page"], request.args["psid"]
    emulator.take_control(
        psid,
        app_id=str(body["app_id"]) if body.get("app_id") else None,
        page_id=page_id,
        metadata=body.get("metadata") if isinstance(body.get("metadata"), str) else None,
    )
    return json_reply(200, {"owner": emulator.owner(psid, page_id=page_id)})


def thread_inbox_reply(request: Request) -> Reply:
    entry = request.emulator.inbox_reply(
        request.args["psid"], _str(request.body, "text"), page_id=request.args["page"]
    )
    return json_reply(201, entry)


def app_subscribe(request: Request) -> Reply:
    ok, detail = request.emulator.subscribe(request.args["app_id"])
    return json_reply(200 if ok else 409, {"subscribed": ok, "detail": detail})


def app_unsubscribe(request: Request) -> Reply:
    request.emulator.unsubscribe(request.args["app_id"])
    return json_reply(200, {"subscribed": False})


def app_callback(request: Request) -> Reply:
    url = request.body.get("url")
    if url is not None and not isinstance(url, str):
        raise ApiError("url must be a string or null")
    request.emulator.set_callback_url(request.args["app_id"], url)
    return json_reply(200, {"callback_url": url or None})


def page_primary(request: Request) -> Reply:
    body = request.body
    request.emulator.primary_set(_str(body, "app_id"), page_id=request.args["page_id"])
    return json_reply(200, {"primary_app_id": body["app_id"]})


def page_mode(request: Request) -> Reply:
    request.emulator.page_mode_set(_str(request.body, "mode"), page_id=request.args["page_id"])
    return _page_reply(request)


def page_take_allowed(request: Request) -> Reply:
    body = request.body
    request.emulator.page_take_allowed_set(
        _str(body, "app_id"), _bool(body, "allowed"), page_id=request.args["page_id"]
    )
    return _page_reply(request)


def page_requests_refused(request: Request) -> Reply:
    request.emulator.page_requests_refused_set(
        _bool(request.body, "refused"), page_id=request.args["page_id"]
    )
    return _page_reply(request)


def page_thread_control_refused(request: Request) -> Reply:
    request.emulator.page_thread_control_refused_set(
        _bool(request.body, "refused"), page_id=request.args["page_id"]
    )
    return _page_reply(request)


def page_restricted(request: Request) -> Reply:
    request.emulator.page_restrict(
        _bool(request.body, "restricted"), page_id=request.args["page_id"]
    )
    return _page_reply(request)


def page_app_token_expired(request: Request) -> Reply:
    args = request.args
    request.emulator.token_expire(
        args["app_id"], _bool(request.body, "expired"), page_id=args["page_id"]
    )
    return json_reply(200, {"token_expired": request.body["expired"]})


def page_app_token_reissue(request: Request) -> Reply:
    args = request.args
    token = request.emulator.token_reissue(args["app_id"], page_id=args["page_id"])
    return json_reply(200, {"access_token": token})


def page_app_permission_revoked(request: Request) -> Reply:
    args = request.args
    request.emulator.permission_revoke(
        args["app_id"], _bool(request.body, "revoked"), page_id=args["page_id"]
    )
    return json_reply(200, {"permission_revoked": request.body["revoked"]})


def _page_reply(request: Request) -> Reply:
    """The page's setup after a change, as `state()` shows it."""
    page_id = request.args["page_id"]
    pages = request.emulator.state()["pages"]
    return json_reply(200, next(p for p in pages if p["id"] == page_id))


# --- the control page: faults and the clock --------------------------------------------------


def faults_graph(request: Request) -> Reply:
    body = request.body
    kind = body.get("kind")
    if kind not in FAULT_KINDS:
        raise ApiError(f"kind must be one of {', '.join(FAULT_KINDS)}")
    try:
        fault = request.emulator.fail_next_graph_calls(
            cast(FaultKind, kind),
            _int(body.get("count", 1), "count"),
            status=_int(body.get("status", 500), "status"),
            seconds=_float(body.get("seconds", 15), "seconds"),
            applied=bool(body.get("applied", False)),
            path=body.get("path") or None,
            app_id=str(body["app_id"]) if body.get("app_id") else None,
        )
    except ValueError as error:
        raise ApiError(str(error)) from None
    return json_reply(200, {"armed": fault.__dict__})


def faults_webhooks(request: Request) -> Reply:
    body, emulator = request.body, request.emulator
    late = body.get("late_seconds")
    try:
        emulator.webhook_faults(
            duplicate=_bool_or_none(body, "duplicate"),
            out_of_order=_bool_or_none(body, "out_of_order"),
            late_seconds=None if late is None else _float(late, "late_seconds"),
            late_echoes_only=_bool_or_none(body, "late_echoes_only"),
            app_id=str(body["app_id"]) if body.get("app_id") else None,
        )
    except ValueError as error:
        raise ApiError(str(error)) from None
    return json_reply(200, {"webhook_faults": emulator.dispatcher.faults_view()})


def faults_clear(request: Request) -> Reply:
    emulator = request.emulator
    emulator.graph_faults.clear()
    emulator.dispatcher.faults_clear()
    return json_reply(200, {"cleared": True})


def clock_advance(request: Request) -> Reply:
    body, emulator = request.body, request.emulator
    seconds = body.get("advance_seconds")
    if seconds is None and body.get("advance_hours") is not None:
        seconds = _float(body["advance_hours"], "advance_hours") * 3600
    seconds = _float(seconds, "advance_seconds")
    if seconds < 0:
        raise ApiError("the clock only moves forward")
    emulator.advance_clock(seconds)
    return json_reply(
        200, {"now": emulator.clock.now_ms(), "offset_seconds": emulator.clock.offset_seconds}
    )


# --- body fields -------------------------------------------------------------------------------


def _str(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ApiError(f"{name} is required")
    return str(value)


def _int(value: Any, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(f"{name} must be an integer") from None


def _float(value: Any, name: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ApiError(f"{name} must be a number") from None


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if not isinstance(value, bool):
        raise ApiError(f"{name} must be true or false")
    return value


def _bool_or_none(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ApiError(f"{name} must be true or false")
    return value
