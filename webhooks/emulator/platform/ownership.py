"""Who owns a thread, and until when: Conversation Routing's control lapse.

Every operation brings its thread up to date with `refresh` before it applies a rule,
so a lapse takes effect at the moment anyone looks, stamped with when it happened.
Callers hold `Platform.lock`.
"""

from __future__ import annotations

from webhooks.emulator.platform.state import HOUR_MS, PlatformState, Thread

CONTROL_LAPSE_MS = 24 * HOUR_MS


def expiration(state: PlatformState, thread: Thread) -> int | None:
    """When the current owner's control lapses (CR), epoch ms; None in legacy/idle."""
    page = state.pages[thread.page_id]
    if page.mode == "legacy" or thread.owner is None:
        return None
    # [doc] control lapses 24 h after the user's last message, unless extended.
    base = thread.last_user_at if thread.last_user_at is not None else thread.control_since
    expires = (base or 0) + CONTROL_LAPSE_MS
    if thread.extended_until is not None:
        expires = max(expires, thread.extended_until)
    return expires


def refresh(state: PlatformState, thread: Thread, now: int) -> None:
    """Apply what time did: a lapsed CR control makes the thread idle.

    [conv] No webhook on lapse (Meta's is unconfirmed, §6.4): apps find out from
    `thread_owner` or a refused send. Caller holds `Platform.lock`.
    """
    expires = expiration(state, thread)
    if expires is not None and now >= expires:
        previous = thread.owner
        set_owner(thread, None, now)
        # Stamped when it lapsed, not when someone noticed.
        state.note(thread, expires, f"Control of {state.app_name(previous)} lapsed (idle)")


def set_owner(thread: Thread, owner: str | None, now: int) -> None:
    """Hand the thread to `owner` (None: idle); control restarts, any extension ends."""
    thread.owner = owner
    thread.control_since = now if owner is not None else None
    thread.extended_until = None
    if thread.typing_app_id != owner:
        thread.typing_app_id = None
