"""A page's settings, as the control page changes them: which app is the primary
receiver / default app, whether an app's webhooks for the page are on, the routing
setup (mode, who may take, refused requests and `thread_control`), and the page-level
faults (a restricted Page, an expired or reissued token, a revoked permission).

Callers hold `Platform.lock`; the webhooks returned are for them to queue.
"""

from __future__ import annotations

import string
from typing import cast

from webhooks.emulator.config import MODES, AppConfig, Mode
from webhooks.emulator.errors import EmulatorError
from webhooks.emulator.platform.ownership import set_owner
from webhooks.emulator.platform.routing import handover_hook
from webhooks.emulator.platform.state import PlatformState, Result, Webhook

TOKEN_ALPHABET = string.ascii_letters + string.digits


def subscription_set(state: PlatformState, *, app_id: str, page_id: str, active: bool) -> None:
    """Turn an app's webhooks for a page on or off (Meta unsubscribes failing apps)."""
    sub = state.subscriptions.get((app_id, page_id))
    if sub is None:
        raise EmulatorError(f"app {app_id} is not connected to page {page_id}", 404)
    sub.active = active


def primary_set(state: PlatformState, *, page_id: str, app_id: str) -> Result:
    """Change the primary receiver / default app; [doc] §8.16 `app_roles` webhooks."""
    page = state.page_or_404(page_id)
    if (app_id, page_id) not in state.subscriptions:
        raise EmulatorError(f"app {app_id} is not connected to page {page_id}", 404)
    if page.mode == "cr-zero-config":
        raise EmulatorError("a zero-config page has no default app", 409)
    previous = page.primary_app_id
    page.primary_app_id = app_id
    now = state.clock.now_ms()
    hooks: list[Webhook] = []
    if page.mode == "legacy" and previous != app_id:
        roles = ((app_id, "primary_receiver"), (previous, "secondary_receiver"))
        for changed, role in roles:
            if changed is None:
                continue
            event = {
                "recipient": {"id": page_id},
                "timestamp": now,
                "app_roles": {changed: [role]},
            }
            hooks += handover_hook(state, page, changed, event, now)
    return Result({"primary_app_id": app_id}, hooks)


# --- the page's routing setup, switched at runtime (the control page) --------------------


def connected_app(state: PlatformState, page_id: str, app_id: str) -> AppConfig:
    """An app connected to the page (it has a token for it); else a 400."""
    app = state.apps.get(app_id)
    if app is None or (app_id, page_id) not in state.subscriptions:
        raise EmulatorError(f"app {app_id} is not connected to page {page_id}")
    return app


def page_mode_set(state: PlatformState, *, page_id: str, mode: str) -> Result:
    """Switch a page between legacy, CR with a default app, and CR zero-config.

    Going to zero-config puts the default app aside; going back restores it (else the
    demo bot). A legacy page has no idle threads: they go to the primary receiver.
    No webhook: Meta sends none when a Page admin changes the setup.
    """
    page = state.page_or_404(page_id)
    if mode not in MODES:
        raise EmulatorError(f"mode must be one of {', '.join(MODES)}")
    if mode == page.mode:
        return Result({"mode": mode})
    if mode == "cr-zero-config":
        if page.primary_app_id is not None:
            state.previous_primary[page_id] = page.primary_app_id
        primary = None
    else:
        primary = (
            page.primary_app_id or state.previous_primary.get(page_id) or state.config.bot_app_id
        )
        if primary is None or (primary, page_id) not in state.subscriptions:
            raise EmulatorError(f"no default app to give page {page_id}", 409)
    page.mode = cast(Mode, mode)
    page.primary_app_id = primary
    now = state.clock.now_ms()
    for thread in state.threads.values():
        if thread.page_id != page_id:
            continue
        if mode == "legacy" and thread.owner is None:
            set_owner(thread, primary, now)
        elif thread.owner is not None and thread.control_since is None:
            thread.control_since = now  # CR control lapses from here on
        state.note(thread, now, f"The page now runs {mode_words(mode)}")
    return Result({"mode": mode, "primary_app_id": primary})


def mode_words(mode: str) -> str:
    return {
        "legacy": "the Handover Protocol (legacy)",
        "cr": "Conversation Routing with a default app",
        "cr-zero-config": "Conversation Routing without a default app",
    }[mode]


def take_allowed_set(state: PlatformState, *, page_id: str, app_id: str, allowed: bool) -> Result:
    """ "Allow this app to take control of conversations" in the Page's settings (CR)."""
    page = state.page_or_404(page_id)
    connected_app(state, page_id, app_id)
    if allowed:
        page.take_control_app_ids = page.take_control_app_ids | {app_id}
    else:
        page.take_control_app_ids = page.take_control_app_ids - {app_id}
    return Result({"take_control_app_ids": sorted(page.take_control_app_ids)})


def requests_refused_set(state: PlatformState, *, page_id: str, refused: bool) -> Result:
    """§9.1: the page answers request_thread_control with "Handover Protocol APIs
    disabled" (only while it is on CR with a default app)."""
    page = state.page_or_404(page_id)
    page.requests_refused = refused
    return Result({"requests_refused": refused})


def thread_control_refused_set(state: PlatformState, *, page_id: str, refused: bool) -> Result:
    """The Send API refuses `thread_control` on this page (the helpdesk falls back)."""
    page = state.page_or_404(page_id)
    page.thread_control_refused = refused
    return Result({"thread_control_refused": refused})


# --- page-level faults (§9.4): they last until cleared --------------------------------------


def restrict(state: PlatformState, *, page_id: str, restricted: bool) -> Result:
    """The Page may not send (10/1893063) until this is turned off."""
    state.page_or_404(page_id)
    if restricted:
        state.restricted_pages.add(page_id)
    else:
        state.restricted_pages.discard(page_id)
    return Result({"restricted": restricted})


def token_expire(state: PlatformState, *, page_id: str, app_id: str, expired: bool) -> Result:
    """The app's page token answers 190/463 on every call until this is turned off."""
    state.page_or_404(page_id)
    connected_app(state, page_id, app_id)
    if expired:
        state.expired_tokens.add((app_id, page_id))
    else:
        state.expired_tokens.discard((app_id, page_id))
    return Result({"token_expired": expired})


def token_reissue(state: PlatformState, *, page_id: str, app_id: str) -> Result:
    """A new page token for the app (returned); the old one answers 190/460 from now on,
    and the token is no longer expired."""
    state.page_or_404(page_id)
    app = connected_app(state, page_id, app_id)
    old = app.page_tokens[page_id]
    new = "EAA" + "".join(state.rng.choice(TOKEN_ALPHABET) for _ in range(40))
    del state.tokens[old]
    state.invalidated_tokens[old] = (app_id, page_id)
    state.tokens[new] = (app_id, page_id)
    app.page_tokens[page_id] = new
    state.expired_tokens.discard((app_id, page_id))
    return Result({"access_token": new})


def permission_revoke(state: PlatformState, *, page_id: str, app_id: str, revoked: bool) -> Result:
    """The app's Send API calls answer (#230) until this is turned off."""
    state.page_or_404(page_id)
    connected_app(state, page_id, app_id)
    if revoked:
        state.revoked_permissions.add((app_id, page_id))
    else:
        state.revoked_permissions.discard((app_id, page_id))
    return Result({"permission_revoked": revoked})
