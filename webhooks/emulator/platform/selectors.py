"""What the customer page, the control page and the tests read.

Reading brings lapsed threads up to date first (`ownership.refresh`), so a view never
shows an owner whose control has lapsed. Views are copies: the caller holds
`Platform.lock` while one is built and may serialize it after releasing the lock.
"""

from __future__ import annotations

import copy
from typing import Any

from webhooks.emulator.config import PageConfig
from webhooks.emulator.platform.graph_nodes import avatar_url
from webhooks.emulator.platform.ownership import expiration, refresh
from webhooks.emulator.platform.send_api import HUMAN_AGENT_WINDOW_MS, WINDOW_MS
from webhooks.emulator.platform.state import PlatformState, User


def thread_view(state: PlatformState, *, page_id: str, psid: str, after: int) -> dict[str, Any]:
    """One conversation for the customer page: owner, windows, typing, messages after
    `seq` number `after`."""
    page = state.page_or_404(page_id)
    thread = state.thread_or_404(page_id, psid)
    now = state.clock.now_ms()
    refresh(state, thread, now)
    user = state.users[(page_id, psid)]
    typing = None
    if thread.typing_app_id and thread.typing_until > now:
        persona = thread.typing_persona
        typing = {
            "app_id": thread.typing_app_id,
            # With a persona the customer sees the persona's name, not the app's (§9.5).
            "name": persona["name"] if persona else state.app_name(thread.typing_app_id),
            "author": state.role(thread.typing_app_id),
            "persona": copy.deepcopy(persona),
        }
    return {
        "page": {"id": page.page_id, "name": page.name, "mode": page.mode},
        "user": user_json(state, user),
        "owner": (
            {
                "app_id": thread.owner,
                "name": state.app_name(thread.owner),
                "author": state.role(thread.owner),
            }
            if thread.owner
            else None
        ),
        "expiration": expiration(state, thread),
        "last_user_at": thread.last_user_at,
        "window_open": thread.last_user_at is not None and now - thread.last_user_at <= WINDOW_MS,
        "human_agent_window_open": thread.last_user_at is not None
        and now - thread.last_user_at <= HUMAN_AGENT_WINDOW_MS,
        "typing": typing,
        "seen_at": thread.seen_at,
        "now": now,
        # Copies: the caller serializes them after the lock is released.
        "messages": [copy.deepcopy(e) for e in thread.transcript if e["seq"] > after],
    }


def user_json(state: PlatformState, user: User) -> dict[str, Any]:
    """A user as the emulator's JSON API shows it. Reads only `public_url`: no lock."""
    return {
        "psid": user.psid,
        "page_id": user.page_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "name": user.name,
        "profile_pic": avatar_url(state, user),
    }


def state_view(state: PlatformState) -> dict[str, Any]:
    """Everything the control page shows (but deliveries, which the dispatcher has)."""
    now = state.clock.now_ms()
    threads = []
    for (page_id, psid), thread in state.threads.items():
        refresh(state, thread, now)
        last = thread.last_user_at
        threads.append(
            {
                "page_id": page_id,
                "psid": psid,
                "user": state.users[(page_id, psid)].name,
                "owner": thread.owner,
                "owner_name": state.app_name(thread.owner) if thread.owner else None,
                "expiration": expiration(state, thread),
                "last_user_at": last,
                "window_open": last is not None and now - last <= WINDOW_MS,
                "human_agent_window_open": last is not None and now - last <= HUMAN_AGENT_WINDOW_MS,
                "messages": sum(1 for e in thread.transcript if e["kind"] != "event"),
            }
        )
    return {
        "now": now,
        "clock_offset_seconds": state.clock.offset_seconds,
        "pages": [page_json(state, p) for p in state.pages.values()],
        "apps": [
            {
                "app_id": a.app_id,
                "name": a.name,
                "role": a.role,
                "callback_url": a.callback_url,
                "in_process": a.handler is not None,
                "human_agent": a.human_agent,
                "subscriptions": [
                    {
                        "page_id": page_id,
                        "active": sub.active,
                        "fields": sorted(sub.fields),
                        # Page-level faults of this app on this page (§9.4).
                        "token_expired": (app_id, page_id) in state.expired_tokens,
                        "token_reissued": a.page_tokens.get(page_id)
                        != state.config_tokens.get((app_id, page_id)),
                        "permission_revoked": (app_id, page_id) in state.revoked_permissions,
                    }
                    for (app_id, page_id), sub in state.subscriptions.items()
                    if app_id == a.app_id
                ],
            }
            for a in state.apps.values()
        ],
        "users": [user_json(state, u) for u in state.users.values()],
        "threads": threads,
    }


def mode_text(state: PlatformState, page: PageConfig) -> str:
    """The page's routing setup in words, as the control page shows it."""
    if page.mode == "legacy":
        return f"Handover Protocol (legacy), primary receiver {state.app_name(page.primary_app_id)}"
    if page.mode == "cr-zero-config":
        return "Conversation Routing without a default app (zero-config)"
    return f"Conversation Routing with a default app ({state.app_name(page.primary_app_id)})"


def page_json(state: PlatformState, page: PageConfig) -> dict[str, Any]:
    """A page's routing setup and page-level faults (the control page, tests)."""
    return {
        "id": page.page_id,
        "name": page.name,
        "mode": page.mode,
        "mode_text": mode_text(state, page),
        "primary_app_id": page.primary_app_id,
        "take_control_app_ids": sorted(page.take_control_app_ids),
        "requests_refused": page.requests_refused,
        "thread_control_refused": page.thread_control_refused,
        "restricted": page.page_id in state.restricted_pages,
    }


def owner(state: PlatformState, *, page_id: str, psid: str) -> str | None:
    """The thread's owner now (after any lapse); None when idle."""
    thread = state.thread_or_404(page_id, psid)
    refresh(state, thread, state.clock.now_ms())
    return thread.owner
