"""The Messenger Platform's rules: a pure, synchronous core without HTTP.

Every operation (a Graph API call, something the user does) takes the state lock,
checks the rules of messenger-platform.md §8, changes the state, and returns a `Result`:
the Graph answer plus the webhooks the platform would send. Nothing leaves this package:
the caller (`Emulator`) hands the webhooks to the dispatcher while still holding
`Platform.lock`, so webhooks are queued in the order the transitions happened.

`Platform` holds the lock and delegates to plain functions that take the state:

    state           the records (Webhook, Result, User, Thread, Subscription) and the
                    mutable world (pages, apps, tokens, users, threads, personas, ids)
    ownership       who owns a thread until when: CR control lapses
    routing         messaging[] vs standby[], echoes, handover notices, postback payloads
    params          Graph call parameters and the recipient
    send_api        POST /me/messages: messages, sender actions, windows, rate limit
    thread_control  pass, take, request, release, extend; thread_owner, secondary_receivers
    graph_nodes     profile, page, personas, subscribed_apps
    graph_api       access token, appsecret_proof, node and edge dispatch
    user_actions    what the customer and the Page Inbox do
    page_settings   primary receiver / default app, webhook subscriptions on or off,
                    mode, who may take, refused requests / thread_control, page faults
    selectors       what the pages and tests read

Rule tags in comments follow §8: [doc], [legacy], [conv] (an emulator convention where
Meta is silent).
"""

from __future__ import annotations

import threading
from typing import Any

from webhooks.emulator.clock import ClockLike
from webhooks.emulator.config import AppConfig, EmulatorConfig, PageConfig
from webhooks.emulator.platform import (
    graph_api,
    ownership,
    page_settings,
    selectors,
    thread_control,
    user_actions,
)
from webhooks.emulator.platform.graph_api import appsecret_proof
from webhooks.emulator.platform.state import (
    PlatformState,
    Result,
    Subscription,
    Thread,
    User,
    Webhook,
)

__all__ = ["Platform", "Result", "Thread", "User", "Webhook", "appsecret_proof"]


class Platform:
    """The emulated Messenger Platform: pages, apps, users, threads, and their rules.

    Thread-safe: every public method that reads or changes the state takes `lock`
    (re-entrant, so a caller may hold it across a call and the queueing of the webhooks
    it returns). `fbtrace_id`, `app_for_token`, `user_json` and `expiration` do not.
    """

    def __init__(self, config: EmulatorConfig, clock: ClockLike) -> None:
        self.lock = threading.RLock()
        self.state = PlatformState(config, clock)
        for seed in config.users:
            self.user_create(
                page_id=seed.page_id,
                first_name=seed.first_name,
                last_name=seed.last_name,
                psid=seed.psid,
            )

    # --- the state, for the emulator, the server and tests (hold `lock` to change it) ---

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    @property
    def clock(self) -> ClockLike:
        return self.state.clock

    @property
    def public_url(self) -> str:
        """Where the emulator serves (profile pictures); set once the server is bound."""
        return self.state.public_url

    @public_url.setter
    def public_url(self, url: str) -> None:
        self.state.public_url = url

    @property
    def pages(self) -> dict[str, PageConfig]:
        return self.state.pages

    @property
    def apps(self) -> dict[str, AppConfig]:
        return self.state.apps

    @property
    def tokens(self) -> dict[str, tuple[str, str]]:
        """Page access token -> (app id, page id)."""
        return self.state.tokens

    @property
    def subscriptions(self) -> dict[tuple[str, str], Subscription]:
        """(app id, page id) -> the app's webhook subscription for the page."""
        return self.state.subscriptions

    @property
    def users(self) -> dict[tuple[str, str], User]:
        """(page id, PSID) -> user."""
        return self.state.users

    @property
    def threads(self) -> dict[tuple[str, str], Thread]:
        """(page id, PSID) -> thread."""
        return self.state.threads

    @property
    def personas(self) -> dict[str, dict[str, Any]]:
        return self.state.personas

    def fbtrace_id(self) -> str:
        return self.state.fbtrace_id()

    def expiration(self, thread: Thread) -> int | None:
        """When the current owner's control lapses (CR), epoch ms; None in legacy/idle."""
        return ownership.expiration(self.state, thread)

    # --- the Graph API ------------------------------------------------------------------

    def app_for_token(self, token: str | None) -> str | None:
        return graph_api.app_for_token(self.state, token)

    def graph(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        access_token: str | None,
        appsecret_proof: str | None = None,
    ) -> Result:
        """One Graph API call (path without the version prefix, e.g. `/me/messages`).

        Never raises PlatformRefusal: errors come back as a Result with Graph's envelope.
        """
        with self.lock:
            return graph_api.graph_call(
                self.state,
                method,
                path,
                params,
                access_token=access_token,
                proof=appsecret_proof,
            )

    # --- what the user and the Page Inbox do (customer page) -----------------------------

    def user_create(
        self, *, page_id: str, first_name: str, last_name: str, psid: str | None = None
    ) -> User:
        """Add a Messenger user of a page (PSIDs are page-scoped numeric strings)."""
        with self.lock:
            return user_actions.user_create(
                self.state, page_id=page_id, first_name=first_name, last_name=last_name, psid=psid
            )

    def user_message(
        self,
        *,
        page_id: str,
        psid: str,
        text: str = "",
        quick_reply: tuple[str, int] | None = None,
    ) -> Result:
        """The user sends text, or taps quick reply `index` of message `mid`."""
        with self.lock:
            return user_actions.user_message(
                self.state, page_id=page_id, psid=psid, text=text, quick_reply=quick_reply
            )

    def user_postback(self, *, page_id: str, psid: str, mid: str, index: int) -> Result:
        """The user taps postback button `index` of message `mid`."""
        with self.lock:
            return user_actions.user_postback(
                self.state, page_id=page_id, psid=psid, mid=mid, index=index
            )

    def user_read(self, *, page_id: str, psid: str) -> Result:
        """The user's Messenger shows the page's messages: delivery, then read (§2.7)."""
        with self.lock:
            return user_actions.user_read(self.state, page_id=page_id, psid=psid)

    def inbox_reply(self, *, page_id: str, psid: str, text: str) -> Result:
        """A person answers from the Page Inbox: the Inbox takes control, then sends."""
        with self.lock:
            return user_actions.inbox_reply(self.state, page_id=page_id, psid=psid, text=text)

    # --- the emulator's own operations (control page) ------------------------------------

    def control_take(
        self, *, app_id: str, page_id: str, psid: str, metadata: str | None = None
    ) -> Result:
        """An app takes the thread now; a refusal is an EmulatorError (409)."""
        with self.lock:
            return thread_control.control_take(
                self.state, app_id=app_id, page_id=page_id, psid=psid, metadata=metadata
            )

    def subscription_set(self, *, app_id: str, page_id: str, active: bool) -> None:
        """Turn an app's webhooks for a page on or off (Meta unsubscribes failing apps)."""
        with self.lock:
            page_settings.subscription_set(
                self.state, app_id=app_id, page_id=page_id, active=active
            )

    def primary_set(self, *, page_id: str, app_id: str) -> Result:
        """Change the primary receiver / default app; [doc] §8.16 `app_roles` webhooks."""
        with self.lock:
            return page_settings.primary_set(self.state, page_id=page_id, app_id=app_id)

    def page_mode_set(self, *, page_id: str, mode: str) -> Result:
        """legacy / cr / cr-zero-config; an EmulatorError (400) for anything else."""
        with self.lock:
            return page_settings.page_mode_set(self.state, page_id=page_id, mode=mode)

    def take_allowed_set(self, *, page_id: str, app_id: str, allowed: bool) -> Result:
        with self.lock:
            return page_settings.take_allowed_set(
                self.state, page_id=page_id, app_id=app_id, allowed=allowed
            )

    def requests_refused_set(self, *, page_id: str, refused: bool) -> Result:
        with self.lock:
            return page_settings.requests_refused_set(self.state, page_id=page_id, refused=refused)

    def thread_control_refused_set(self, *, page_id: str, refused: bool) -> Result:
        with self.lock:
            return page_settings.thread_control_refused_set(
                self.state, page_id=page_id, refused=refused
            )

    def restrict(self, *, page_id: str, restricted: bool) -> Result:
        with self.lock:
            return page_settings.restrict(self.state, page_id=page_id, restricted=restricted)

    def token_expire(self, *, page_id: str, app_id: str, expired: bool) -> Result:
        with self.lock:
            return page_settings.token_expire(
                self.state, page_id=page_id, app_id=app_id, expired=expired
            )

    def token_reissue(self, *, page_id: str, app_id: str) -> Result:
        with self.lock:
            return page_settings.token_reissue(self.state, page_id=page_id, app_id=app_id)

    def permission_revoke(self, *, page_id: str, app_id: str, revoked: bool) -> Result:
        with self.lock:
            return page_settings.permission_revoke(
                self.state, page_id=page_id, app_id=app_id, revoked=revoked
            )

    # --- views (customer page, control page, tests) --------------------------------------

    def thread_view(self, *, page_id: str, psid: str, after: int = 0) -> dict[str, Any]:
        with self.lock:
            return selectors.thread_view(self.state, page_id=page_id, psid=psid, after=after)

    def user_json(self, user: User) -> dict[str, Any]:
        return selectors.user_json(self.state, user)

    def state_view(self) -> dict[str, Any]:
        """Everything the control page shows (but deliveries, which the dispatcher has)."""
        with self.lock:
            return selectors.state_view(self.state)

    def owner(self, *, page_id: str, psid: str) -> str | None:
        """The thread's owner now (after any lapse); None when idle."""
        with self.lock:
            return selectors.owner(self.state, page_id=page_id, psid=psid)
