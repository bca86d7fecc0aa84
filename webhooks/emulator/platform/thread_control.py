"""Thread control (the Handover Protocol and Conversation Routing, §3, §8.9-8.15).

The Graph edges `pass_`, `take_`, `request_`, `release_` and `extend_thread_control`,
`thread_owner` and `secondary_receivers`, and the emulator's own `control_take` (the
control page's "an app takes control" fault). `pass_control`, `take` and `release` are
also what the Send API's `thread_control` and the Page Inbox use. Every function
expects its caller to hold `Platform.lock`; none sends anything, all return webhooks.
"""

from __future__ import annotations

from typing import Any

from webhooks.emulator.config import INBOX_APP_IDS, PAGE_INBOX_APP_ID, AppConfig, PageConfig
from webhooks.emulator.errors import (
    HANDOVER_DISABLED_MESSAGE,
    OWNER_NOT_VISIBLE_MESSAGE,
    OWNER_NOT_VISIBLE_SUBCODE,
    TAKE_WITHOUT_CR_MESSAGE,
    EmulatorError,
    PlatformRefusal,
    invalid,
    not_owner,
    permissions_error,
)
from webhooks.emulator.platform.ownership import expiration, refresh, set_owner
from webhooks.emulator.platform.params import (
    app_id_param,
    fields_param,
    metadata_param,
    recipient,
)
from webhooks.emulator.platform.routing import handover_hook, user_event
from webhooks.emulator.platform.state import PlatformState, Result, Thread, Webhook

MAX_EXTEND_SECONDS = 7 * 24 * 3600


def valid_target(state: PlatformState, page: PageConfig, target: str | None) -> str:
    """The app control may be passed to: an inbox, or an app subscribed to the page."""
    if target is None:
        raise invalid("The parameter target_app_id is required")
    if target in INBOX_APP_IDS:
        return target
    sub = state.subscriptions.get((target, page.page_id))
    if sub is None or not sub.active:
        raise invalid(f"Invalid target_app_id {target}: not an app of this page")
    return target


def pass_control(
    state: PlatformState,
    app: AppConfig,
    page: PageConfig,
    thread: Thread,
    target: str | None,
    metadata: str | None,
    now: int,
) -> list[Webhook]:
    """[doc] §8.9 pass_thread_control. Caller holds the lock and has refreshed the thread."""
    owner = thread.owner
    # Idle: any app on a zero-config page, the default app on a CR page.
    default_app = page.mode == "cr" and app.app_id == page.primary_app_id
    idle_pass = owner is None and (page.mode == "cr-zero-config" or default_app)
    if owner != app.app_id and not idle_pass:
        raise not_owner()
    target = valid_target(state, page, target)
    if target == app.app_id and not idle_pass:
        raise invalid("Cannot pass thread control to the app that owns the thread")
    set_owner(thread, target, now)
    state.note(thread, now, f"{app.name} passed control to {state.app_name(target)}")
    notice: dict[str, Any] = {"previous_owner_app_id": owner, "new_owner_app_id": target}
    if metadata is not None:
        notice["metadata"] = metadata
    event = user_event(thread, now, pass_thread_control=notice)
    hooks = handover_hook(state, page, target, event, now)
    if state.config.pass_notifies_previous_owner and owner not in (None, target):
        hooks += handover_hook(state, page, owner, event, now)
    return hooks


def pass_call(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """POST /me/pass_thread_control."""
    now = state.clock.now_ms()
    _, thread = recipient(state, page, params, now)
    target = app_id_param(params, "target_app_id")
    metadata = metadata_param(params)
    return Result({"success": True}, pass_control(state, app, page, thread, target, metadata, now))


def may_take(app_id: str, page: PageConfig, thread: Thread) -> None:
    """[doc/legacy] §8.10, §9.1: who may take control of this thread.

    Without a CR default app (a zero-config page, or a legacy page for any app but the
    primary receiver) take answers (#27), as vendors report Meta does.
    """
    if app_id == PAGE_INBOX_APP_ID:
        return  # the Inbox takes control when a person replies in it (§6.2)
    if page.mode == "cr-zero-config":
        raise PlatformRefusal(27, TAKE_WITHOUT_CR_MESSAGE)
    if page.mode == "legacy":
        if app_id != page.primary_app_id:
            raise PlatformRefusal(27, TAKE_WITHOUT_CR_MESSAGE)
        return
    if thread.owner is None:
        return  # any app may take an idle thread
    if app_id not in page.take_control_app_ids:
        raise permissions_error("this app is not allowed to take control of conversations")


def take(
    state: PlatformState,
    app_id: str,
    page: PageConfig,
    thread: Thread,
    metadata: str | None,
    now: int,
) -> list[Webhook]:
    """§8.10 take_thread_control: `app_id` owns the thread, the previous owner is told.

    Caller holds the lock and has refreshed the thread.
    """
    may_take(app_id, page, thread)
    previous = thread.owner
    if previous == app_id:
        return []  # [conv] taking a thread you own changes nothing
    set_owner(thread, app_id, now)
    state.note(thread, now, f"{state.app_name(app_id)} took control")
    notice: dict[str, Any] = {"previous_owner_app_id": previous, "new_owner_app_id": app_id}
    if metadata is not None:
        notice["metadata"] = metadata
    event = user_event(thread, now, take_thread_control=notice)
    return handover_hook(state, page, previous, event, now)


def take_call(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """POST /me/take_thread_control."""
    now = state.clock.now_ms()
    _, thread = recipient(state, page, params, now)
    metadata = metadata_param(params)
    return Result({"success": True}, take(state, app.app_id, page, thread, metadata, now))


def control_take(
    state: PlatformState, *, app_id: str, page_id: str, psid: str, metadata: str | None
) -> Result:
    """An app takes the thread now (the control page's "bot takes control" fault).

    Goes through the same rules as the Graph call; a refusal is an EmulatorError (409).
    Caller holds `Platform.lock`.
    """
    page = state.page_or_404(page_id)
    thread = state.thread_or_404(page_id, psid)
    app = state.apps.get(app_id)
    if app is None and app_id != PAGE_INBOX_APP_ID:
        raise EmulatorError(f"no app {app_id}", status=404)
    now = state.clock.now_ms()
    refresh(state, thread, now)
    try:
        hooks = take(state, app_id, page, thread, metadata, now)
    except PlatformRefusal as error:
        raise EmulatorError(error.message, status=409) from None
    return Result({"success": True}, hooks)


def request_call(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """[doc] §8.11: a non-owner asks; the owner (legacy: the primary) is told.

    §9.1: a CR page with a default app that refuses requests answers every call with
    "Handover Protocol APIs disabled for this page" and changes nothing.
    """
    if page.requests_refused and page.mode == "cr" and page.primary_app_id:
        raise PlatformRefusal(10, HANDOVER_DISABLED_MESSAGE)
    now = state.clock.now_ms()
    _, thread = recipient(state, page, params, now)
    metadata = metadata_param(params)
    if thread.owner == app.app_id:
        raise invalid("This app already owns the thread")
    if page.mode == "legacy" and app.app_id == page.primary_app_id:
        raise permissions_error("only secondary receivers may request thread control")
    if page.mode == "cr-zero-config" and thread.owner is None:
        if state.config.zero_config_request_grants:
            # "only the first application to invoke the API will receive control"
            set_owner(thread, app.app_id, now)
            state.note(thread, now, f"{app.name} requested control and got it (idle)")
            notice: dict[str, Any] = {
                "previous_owner_app_id": None,
                "new_owner_app_id": app.app_id,
            }
            if metadata is not None:
                notice["metadata"] = metadata
            event = user_event(thread, now, pass_thread_control=notice)
            return Result({"success": True}, handover_hook(state, page, app.app_id, event, now))
        return Result({"success": True})
    if page.mode == "legacy":
        to = page.primary_app_id
    else:
        # [conv] an idle CR thread: the default app, which handles idle threads, decides.
        to = thread.owner if thread.owner is not None else page.primary_app_id
    state.note(thread, now, f"{app.name} requested control from {state.app_name(to)}")
    request: dict[str, Any] = {"requested_owner_app_id": int(app.app_id)}
    if metadata is not None:
        request["metadata"] = metadata
    event = user_event(thread, now, request_thread_control=request)
    return Result({"success": True}, handover_hook(state, page, to, event, now))


def release(
    state: PlatformState,
    app: AppConfig,
    page: PageConfig,
    thread: Thread,
    metadata: str | None,
    now: int,
) -> list[Webhook]:
    """[doc] §8.12. Caller holds the lock and has refreshed the thread."""
    if thread.owner is None and page.mode == "cr" and app.app_id == page.primary_app_id:
        return []  # the default app "releasing" an idle thread: nothing to do
    if thread.owner != app.app_id:
        raise not_owner()
    if page.mode == "legacy":
        # [conv] legacy pages had no idle state: release hands the thread back to
        # the primary receiver, which is told as if it had been passed.
        if app.app_id == page.primary_app_id:
            return []
        return pass_control(state, app, page, thread, page.primary_app_id, metadata, now)
    set_owner(thread, None, now)
    state.note(thread, now, f"{app.name} released control (idle)")
    # [doc] the Send-API release sends no webhook; [conv] nor does the edge (§2.6).
    return []


def release_call(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """POST /me/release_thread_control."""
    now = state.clock.now_ms()
    _, thread = recipient(state, page, params, now)
    metadata = metadata_param(params)
    hooks = release(state, app, page, thread, metadata, now)
    return Result({"success": True}, hooks)


def extend_call(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """[doc] §3.6, §8.13: the owner keeps control for `duration` seconds (≤ 7 days)."""
    now = state.clock.now_ms()
    _, thread = recipient(state, page, params, now)
    if page.mode == "legacy":
        raise invalid("extend_thread_control is only available with Conversation Routing")
    if thread.owner != app.app_id:
        raise not_owner()
    duration = params.get("duration")
    try:
        seconds = -1 if isinstance(duration, bool) or duration is None else int(duration)
    except (TypeError, ValueError):
        seconds = -1
    if not 1 <= seconds <= MAX_EXTEND_SECONDS:
        raise invalid(f"Param duration must be between 1 and {MAX_EXTEND_SECONDS} seconds")
    current = expiration(state, thread) or now
    thread.extended_until = max(current, now + seconds * 1000)
    state.note(thread, now, f"{app.name} extended control")
    return Result({"success": True})


def thread_owner(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """[doc] §3.7, §8.14, §9.3: who owns the thread, as much as this app may see.

    The owner and the default app see the owner; others see only the expiration while
    the default app owns it, and 100/2018234 while another app does.
    """
    now = state.clock.now_ms()
    _, thread = recipient(state, page, params, now)
    if page.mode == "legacy":
        return Result({"data": [{"thread_owner": {"app_id": thread.owner}}]})
    if thread.owner is None:
        return Result({"data": []})
    expires = expiration(state, thread)
    seconds = (expires or 0) // 1000
    if app.app_id in (thread.owner, page.primary_app_id):
        return Result({"data": [{"thread_owner": {"app_id": thread.owner, "expiration": seconds}}]})
    if thread.owner != page.primary_app_id:
        # §9.3: a thread another non-default app holds is not visible to us.
        raise invalid(OWNER_NOT_VISIBLE_MESSAGE.removeprefix("(#100) "), OWNER_NOT_VISIBLE_SUBCODE)
    # [conv] others learn only that the default app owns it, and until when.
    return Result({"data": [{"thread_owner": {"expiration": seconds}}]})


def secondary_receivers(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """[legacy] §8.15: the primary lists the other apps; others get a permissions error."""
    if app.app_id != page.primary_app_id:
        raise permissions_error("only the primary receiver may list secondary receivers")
    fields = fields_param(params, default="id,name")
    data = []
    for other in state.subscribed(page.page_id):
        if other.app_id == app.app_id:
            continue
        item = {"id": other.app_id, "name": other.name}
        data.append({k: v for k, v in item.items() if k in fields})
    return Result({"data": data})
