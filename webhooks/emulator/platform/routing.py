"""Who receives an event, and on which channel (messenger-platform.md §8.3-8.5).

The thread's owner gets `messaging[]`, every other subscribed app `standby[]`; echoes
go to every app subscribed to `message_echoes`; handover notices go to one app, always
on `messaging[]`. A postback's payload reaches only the app whose button was tapped.
These functions only address webhooks: callers hold `Platform.lock` and queue them.
"""

from __future__ import annotations

from typing import Any

from webhooks.emulator.config import PageConfig
from webhooks.emulator.platform.state import PlatformState, Thread, Webhook

MESSAGING = "messaging"
STANDBY = "standby"
HANDOVER_FIELDS = frozenset({"messaging_handovers", "messaging_handover"})


def router(page: PageConfig, thread: Thread) -> str | None:
    """Who gets `messaging[]`: the owner, or on an idle CR thread the default app."""
    if thread.owner is not None:
        return thread.owner
    if page.mode == "cr":
        return page.primary_app_id
    return None


def route(
    state: PlatformState,
    page: PageConfig,
    thread: Thread,
    event: dict[str, Any],
    field_name: str,
    now: int,
) -> list[Webhook]:
    """[doc] §8.3-4: the owner on messaging[], every other app on standby[]."""
    receiver = router(page, thread)
    hooks = []
    for app in state.subscribed(page.page_id):
        fields = state.fields(app.app_id, page.page_id)
        if page.mode == "cr-zero-config" or app.app_id == receiver:
            channel = MESSAGING
            if field_name not in fields:
                continue
        else:
            channel = STANDBY
            if "standby" not in fields:
                continue
        body = event
        postback = event.get("postback")
        if postback is not None:
            # [doc] §8.4: only the app that sent the button gets the payload, and
            # never on standby.
            button_app = thread.sent_by.get(postback.get("_button_mid", ""))
            keep = channel == MESSAGING and button_app in (None, app.app_id)
            stripped = {k: v for k, v in postback.items() if k != "_button_mid"}
            if not keep:
                stripped.pop("payload", None)
            body = {**event, "postback": stripped}
        hooks.append(Webhook(app.app_id, page.page_id, channel, body, now))
    return hooks


def echo_hooks(
    state: PlatformState, page: PageConfig, thread: Thread, echo: dict[str, Any], now: int
) -> list[Webhook]:
    """[doc] §8.5: echoes to every app subscribed to message_echoes."""
    receiver = router(page, thread)
    hooks = []
    for app in state.subscribed(page.page_id):
        if "message_echoes" not in state.fields(app.app_id, page.page_id):
            continue
        on_messaging = page.mode == "cr-zero-config" or app.app_id == receiver
        channel = MESSAGING if on_messaging else STANDBY
        hooks.append(Webhook(app.app_id, page.page_id, channel, echo, now))
    return hooks


def handover_hook(
    state: PlatformState, page: PageConfig, app_id: str | None, event: dict[str, Any], now: int
) -> list[Webhook]:
    """Handover notices are always on messaging[] (§2.6), if the app subscribed."""
    if app_id is None or app_id not in state.apps:
        return []  # the Page Inbox is not one of our apps: nothing to deliver
    if not (state.fields(app_id, page.page_id) & HANDOVER_FIELDS):
        return []
    return [Webhook(app_id, page.page_id, MESSAGING, event, now)]


def user_event(thread: Thread, now: int, **body: Any) -> dict[str, Any]:
    """An event about the thread, addressed from its user to its page (handovers too)."""
    return {
        "sender": {"id": thread.psid},
        "recipient": {"id": thread.page_id},
        "timestamp": now,
        **body,
    }
