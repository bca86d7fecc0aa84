"""A page's settings, as the control page changes them: which app is the primary
receiver / default app, and whether an app's webhooks for the page are on.

Callers hold `Platform.lock`; the webhooks returned are for them to queue.
"""

from __future__ import annotations

from webhooks.emulator.errors import EmulatorError
from webhooks.emulator.platform.routing import handover_hook
from webhooks.emulator.platform.state import PlatformState, Result, Webhook


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
