"""The Send API, `POST /me/messages` (§4, §8.6-8.8): messages and sender actions.

Checks, in this order: the app's permission and the page's restriction (page-level
faults), rate limit, recipient, message, messaging_type and tag,
notification_type, persona, thread_control, reply_to; then who may send (the owner)
and the messaging window. A sent message is echoed (§8.5); an inline `thread_control`
then passes or releases the thread (§3.5). Callers hold `Platform.lock`.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from webhooks.emulator.config import AppConfig, PageConfig
from webhooks.emulator.errors import (
    OUTSIDE_WINDOW_MESSAGE,
    PAGE_RESTRICTED_MESSAGE,
    PAGE_RESTRICTED_SUBCODE,
    PERMISSION_MISSING_MESSAGE,
    PlatformRefusal,
    invalid,
    not_owner,
    permissions_error,
)
from webhooks.emulator.messages import message_content
from webhooks.emulator.platform.params import (
    app_id_param,
    json_param,
    metadata_param,
    recipient,
)
from webhooks.emulator.platform.routing import echo_hooks
from webhooks.emulator.platform.state import HOUR_MS, PlatformState, Result, Thread
from webhooks.emulator.platform.thread_control import pass_control, release
from webhooks.emulator.platform.uploads import (
    MEDIA_TYPES,
    filedata_param,
    upload_check,
    upload_store,
)

WINDOW_MS = 24 * HOUR_MS
HUMAN_AGENT_WINDOW_MS = 7 * 24 * HOUR_MS
TYPING_MS = 20_000  # Messenger hides a typing indicator after 20 s

SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen", "react", "unreact"})
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
DEPRECATED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"})
VALID_TAGS = frozenset({"HUMAN_AGENT"})
NOTIFICATION_TYPES = frozenset({"REGULAR", "SILENT_PUSH", "NO_PUSH"})


def check_rate(state: PlatformState, page: PageConfig) -> None:
    """`send_rate_limit_per_second` sends per page in any second (wall clock), else #613."""
    limit = state.config.send_rate_limit_per_second
    if not limit:
        return
    times = state.send_times.setdefault(page.page_id, deque())
    now = time.monotonic()
    while times and now - times[0] > 1.0:
        times.popleft()
    if len(times) >= limit:
        raise PlatformRefusal(613, "(#613) Calls to this API have exceeded the rate limit.")
    times.append(now)


def may_send(app: AppConfig, page: PageConfig, thread: Thread) -> bool:
    """[legacy/conv] §8.7: only the owner sends; idle CR: only the default app."""
    if page.mode == "cr-zero-config":
        return True  # "All applications can respond ... without restrictions"
    if thread.owner is not None:
        return thread.owner == app.app_id
    return page.mode == "cr" and app.app_id == page.primary_app_id


def send(state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]) -> Result:
    """POST /me/messages: a message, or a sender action."""
    check_page_faults(state, app, page)
    check_rate(state, page)
    now = state.clock.now_ms()
    user, thread = recipient(state, page, params, now)
    action = params.get("sender_action")
    message = json_param(params, "message")
    if action is not None:
        persona = persona_param(state, page, params)
        return sender_action(app, page, thread, params, action, message, persona, now)
    if not isinstance(message, dict):
        raise invalid("The parameter message is required")
    filedata = filedata_param(params)
    uploaded: tuple[str, bool] | None = None
    if filedata is not None:
        message, uploaded_id, reusable = _with_upload(state, message, filedata)
        uploaded = (uploaded_id, reusable)
    try:
        content = message_content(
            message,
            public_url=state.public_url,
            reusable_attachments=state.reusable_attachments,
            uploads=state.uploads,
        )
    finally:
        if uploaded is not None and not uploaded[1]:
            state.reusable_attachments.discard(uploaded[0])
    metadata = metadata_param(message)
    messaging_type = params.get("messaging_type")
    if messaging_type not in MESSAGING_TYPES:
        raise invalid("param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
    tag = params.get("tag")
    if messaging_type == "MESSAGE_TAG":
        if tag in DEPRECATED_TAGS:
            raise invalid(f"The tag {tag} is deprecated and can no longer be used")
        if tag not in VALID_TAGS:
            raise invalid("param tag must be a valid message tag")
    elif tag is not None:
        raise invalid("param tag is only allowed with messaging_type MESSAGE_TAG")
    notification = params.get("notification_type", "REGULAR")
    if notification not in NOTIFICATION_TYPES:
        raise invalid("param notification_type must be one of REGULAR, SILENT_PUSH, NO_PUSH")
    persona = persona_param(state, page, params)
    control = json_param(params, "thread_control")
    if control is not None:
        control = thread_control_param(page, control)
    reply_to = json_param(params, "reply_to")
    if reply_to is not None:
        known = {e.get("mid") for e in thread.transcript}
        if not isinstance(reply_to, dict) or reply_to.get("mid") not in known:
            raise invalid("Invalid reply_to message id")

    if not may_send(app, page, thread):
        raise not_owner()
    check_window(app, thread, messaging_type, tag, now)

    mid = state.mid()
    thread.sent_by[mid] = app.app_id
    if thread.typing_app_id == app.app_id:
        thread.typing_app_id = None
    answer: dict[str, Any] = {"recipient_id": user.psid, "message_id": mid}
    if uploaded is not None and uploaded[1]:
        answer["attachment_id"] = uploaded[0]
    elif content.get("reusable"):
        attachment_id = state.numeric_id()
        state.reusable_attachments.add(attachment_id)
        answer["attachment_id"] = attachment_id
    entry = {
        "kind": "message",
        "author": state.role(app.app_id),
        "app_id": app.app_id,
        "app_name": app.name,
        "mid": mid,
        "text": content["text"],
        "attachments": content["attachments"],
        "cards": content["cards"],
        "buttons": content["buttons"],
        "quick_replies": content["quick_replies"],
        "persona": persona,
        "messaging_type": messaging_type,
        "tag": tag,
        "metadata": metadata,
        "timestamp": now,
    }
    state.append(thread, entry)
    echo_message: dict[str, Any] = {"is_echo": True, "app_id": int(app.app_id)}
    if metadata is not None:
        echo_message["metadata"] = metadata
    echo_message["mid"] = mid
    if content["text"] is not None and not content["template"]:
        echo_message["text"] = content["text"]
    if content["echo_attachments"]:
        echo_message["attachments"] = content["echo_attachments"]
    echo = {
        "sender": {"id": page.page_id},
        "recipient": {"id": user.psid},
        "timestamp": now,
        "message": echo_message,
    }
    hooks = echo_hooks(state, page, thread, echo, now)
    if control is not None:
        # §3.5: the inline handover happens after the message is sent.
        if control["control_type"] == "release":
            release(state, app, page, thread, None, now)
        else:
            target = control.get("app_id") or page.primary_app_id
            hooks += pass_control(state, app, page, thread, target, None, now)
    return Result(answer, hooks)


def _with_upload(
    state: PlatformState, message: dict[str, Any], upload: Any
) -> tuple[dict[str, Any], str, bool]:
    """`filedata` sent with the message (§4.1, multipart): checked like an upload and
    kept; the message then names it by attachment id. Returns the message, the id and
    whether it is reusable (`payload.is_reusable`: the answer then carries the id)."""
    attachment = message.get("attachment")
    if not isinstance(attachment, dict) or attachment.get("type") not in MEDIA_TYPES:
        raise invalid("filedata needs message[attachment] of type image, audio, video or file")
    payload = attachment.get("payload") or {}
    if not isinstance(payload, dict) or payload.get("url") or payload.get("attachment_id"):
        raise invalid("filedata goes with a payload without url or attachment_id")
    kind = str(attachment["type"])
    upload_check(kind, upload)
    reusable = payload.get("is_reusable") is True
    # Sendable now; forgotten after this message unless it is reusable.
    attachment_id = upload_store(state, kind, upload, reusable=True)
    sent = {**message, "attachment": {"type": kind, "payload": {"attachment_id": attachment_id}}}
    return sent, attachment_id, reusable


def attachment_upload(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """POST /me/message_attachments (the Attachment Upload API): `message.attachment`
    {type, payload{is_reusable, url?}} with a `filedata` file, or a URL (never fetched:
    no network). Answers `{"attachment_id"}`."""
    check_page_faults(state, app, page)
    message = json_param(params, "message")
    attachment = message.get("attachment") if isinstance(message, dict) else None
    if not isinstance(attachment, dict):
        raise invalid("The parameter message[attachment] is required")
    kind = attachment.get("type")
    if kind not in MEDIA_TYPES:
        raise invalid("param message[attachment][type] must be image, audio, video or file")
    payload = attachment.get("payload") or {}
    if not isinstance(payload, dict):
        raise invalid("param message[attachment][payload] must be an object")
    upload = filedata_param(params)
    if upload is None:
        url = payload.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid("A file (filedata) or message[attachment][payload][url] is required")
        attachment_id = state.numeric_id()
        state.reusable_attachments.add(attachment_id)
        return Result({"attachment_id": attachment_id})
    upload_check(str(kind), upload)
    reusable = payload.get("is_reusable") is True
    return Result({"attachment_id": upload_store(state, str(kind), upload, reusable=reusable)})


def check_page_faults(state: PlatformState, app: AppConfig, page: PageConfig) -> None:
    """§9.4 page-level refusals, set on the control page until cleared: the app lost
    pages_messaging (#230), or the Page may not send at all (10/1893063)."""
    if (app.app_id, page.page_id) in state.revoked_permissions:
        raise PlatformRefusal(230, PERMISSION_MISSING_MESSAGE)
    if page.page_id in state.restricted_pages:
        raise PlatformRefusal(10, PAGE_RESTRICTED_MESSAGE, PAGE_RESTRICTED_SUBCODE)


def persona_param(
    state: PlatformState, page: PageConfig, params: dict[str, Any]
) -> dict[str, Any] | None:
    """The persona `persona_id` names (this page's), as the customer page shows it."""
    if params.get("persona_id") is None:
        return None
    persona = state.personas.get(str(params["persona_id"]))
    if persona is None or persona["page_id"] != page.page_id:
        raise invalid("Invalid persona_id")
    return {"name": persona["name"], "profile_picture_url": persona.get("profile_picture_url")}


def thread_control_param(page: PageConfig, control: Any) -> dict[str, Any]:
    """The Send API's `thread_control` (CR only): `{control_type, app_id}`, checked."""
    if page.mode == "legacy":
        raise invalid("thread_control is only available with Conversation Routing")
    if page.thread_control_refused:
        raise invalid("Param thread_control is not supported for this page")
    if not isinstance(control, dict):
        raise invalid("Param thread_control must be an object")
    kind = control.get("control_type", "release")  # "released by default" (§3.5)
    if kind not in ("release", "pass"):
        raise invalid("thread_control.control_type must be pass or release")
    app_id = app_id_param(control, "app_id")
    if kind == "pass" and app_id is None and not page.primary_app_id:
        raise invalid("thread_control.app_id is required without a default app")
    return {"control_type": kind, "app_id": app_id}


def check_window(
    app: AppConfig, thread: Thread, messaging_type: str, tag: str | None, now: int
) -> None:
    """[doc] §8.8: 24 h for RESPONSE/UPDATE, 7 days for HUMAN_AGENT (with the feature)."""
    last = thread.last_user_at
    if messaging_type == "MESSAGE_TAG" and tag == "HUMAN_AGENT":
        if not app.human_agent:
            # [conv] Meta's exact error is unpublished; a permissions error, not retried.
            raise permissions_error(
                "the HUMAN_AGENT tag requires the Human Agent feature for this app"
            )
        limit = HUMAN_AGENT_WINDOW_MS
    else:
        limit = WINDOW_MS
    if last is None or now - last > limit:
        raise PlatformRefusal(10, OUTSIDE_WINDOW_MESSAGE, 2018278)


def sender_action(
    app: AppConfig,
    page: PageConfig,
    thread: Thread,
    params: dict[str, Any],
    action: Any,
    message: Any,
    persona: dict[str, Any] | None,
    now: int,
) -> Result:
    """typing_on/off, mark_seen, react/unreact: shown on the customer page, no webhook.

    A `typing_on` with a persona shows "<persona> is typing…" (§9.5)."""
    if message is not None:
        raise invalid("sender_action cannot be sent with a message")
    if action not in SENDER_ACTIONS:
        raise invalid(
            "param sender_action must be one of typing_on, typing_off, mark_seen, react, unreact"
        )
    for extra in ("messaging_type", "tag"):
        if extra in params:
            raise invalid(f"param {extra} cannot be sent with a sender_action")
    payload = json_param(params, "payload")
    if action in ("react", "unreact") and (
        not isinstance(payload, dict) or not payload.get("message_id")
    ):
        raise invalid("param payload.message_id is required for react and unreact")
    if not may_send(app, page, thread):
        raise not_owner()
    # [conv] sender actions are owner-checked, not window-checked (Meta is silent).
    if action == "typing_on":
        thread.typing_app_id, thread.typing_until = app.app_id, now + TYPING_MS
        thread.typing_persona = persona
    elif action == "typing_off" and thread.typing_app_id == app.app_id:
        thread.typing_app_id = None
    elif action == "mark_seen":
        thread.seen_at = now
    elif action in ("react", "unreact"):
        assert isinstance(payload, dict)
        for entry in thread.transcript:
            if entry.get("mid") == payload["message_id"]:
                entry["reaction"] = payload.get("reaction") if action == "react" else None
    return Result({"recipient_id": thread.psid})
