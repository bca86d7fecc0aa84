"""`Emulator`: the platform core, the webhook dispatcher, the demo bot and the HTTP server,
wired together and started from one call.

    with Emulator(EmulatorConfig.demo(port=0, helpdesk_callback_url=url)) as emulator:
        emulator.graph_url           # http://127.0.0.1:<port>/v23.0, for GRAPH_API_URL
        emulator.user_says(psid, "hello")
        emulator.wait_idle()         # every queued webhook delivered (or given up)
        emulator.transcript(psid)    # what the customer page shows
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webhooks.emulator.bot import DemoBot
from webhooks.emulator.callbacks import verify_callback
from webhooks.emulator.clock import Clock, ClockLike
from webhooks.emulator.config import EmulatorConfig
from webhooks.emulator.delivery import Dispatcher
from webhooks.emulator.delivery_records import Delivery
from webhooks.emulator.errors import EmulatorError
from webhooks.emulator.faults import FaultKind, GraphFault, GraphFaults
from webhooks.emulator.platform import Platform, Result, User
from webhooks.emulator.server import make_server
from webhooks.emulator.statefile import StateDir, new_world_first_psid, restore, snapshot

logger = logging.getLogger(__name__)


class Emulator:
    """The Messenger Platform emulator. Not started until `start()`.

    Every state change goes through `_apply`, which holds the platform lock while it
    queues the webhooks the change caused: webhooks leave in the order of the changes.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: ClockLike | None = None,
        state_dir: Path | None = None,
    ) -> None:
        """`state_dir`: keep the world (users, threads, the clock's offset) there across
        restarts (`statefile`); None keeps it in memory only."""
        # A private copy: the platform mutates pages (primary app) and apps (bot handler).
        self.config = copy.deepcopy(config or EmulatorConfig.demo())
        self.state_dir = StateDir(state_dir) if state_dir is not None else None
        saved = self.state_dir.load(self.config) if self.state_dir is not None else None
        if saved is not None:
            self.config.users = []  # the saved users, not the seeds
        elif self.state_dir is not None:
            self.config.first_psid = new_world_first_psid()
        offset = float(saved["clock_offset_seconds"]) if saved is not None else 0.0
        self.clock = clock or Clock(offset)
        self.platform = Platform(self.config, self.clock)
        if saved is not None:
            with self.platform.lock:
                restore(self.platform.state, saved)
        self._save()
        self.dispatcher = Dispatcher(
            config=self.config,
            clock=self.clock,
            app_lookup=self.platform.apps.get,
            on_unsubscribe=self.unsubscribe,
        )
        self.graph_faults = GraphFaults()
        self.graph_calls: deque[dict[str, Any]] = deque(maxlen=500)
        self._calls_lock = threading.Lock()
        self.bot: DemoBot | None = None
        bot_app = self.platform.apps.get(self.config.bot_app_id or "")
        if bot_app is not None:
            self.bot = DemoBot(
                app=bot_app,
                graph=self._bot_graph,
                page_names={p.page_id: p.name for p in self.config.pages},
                passes_on_button=self.config.bot_passes_on_button,
                handover_app_id=self.config.bot_handover_app_id,
            )
            bot_app.handler = self.bot.handle
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.base_url = ""

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> str:
        """Bind the server, start delivery workers; returns the base URL."""
        self._server = make_server(self, self.config.host, self.config.port)
        host, port = self._server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 -- a comparison
        self.base_url = f"http://{shown}:{port}"
        self.platform.public_url = self.base_url
        # A worker for every app: one without a callback URL yet may get one later.
        self.dispatcher.start(list(self.platform.apps))
        self._server_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # also how long stop() waits for it
            name="emulator-http",
            daemon=True,
        )
        self._server_thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and delivering; safe to call twice."""
        self.stopping.set()  # wakes calls held by a timeout fault
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self.dispatcher.stop()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def graph_url(self) -> str:
        """What a client sets as GRAPH_API_URL (any /vNN.N/ prefix is served)."""
        return f"{self.base_url}/{self.config.graph_version}"

    def serve_forever(self) -> None:
        """Block until interrupted (the management command)."""
        try:
            while not self.stopping.wait(0.5):
                pass
        finally:
            self.stop()

    # --- state changes -----------------------------------------------------------------

    def _apply(self, operation: Callable[..., Result], **kwargs: Any) -> Result:
        with self.platform.lock:
            try:
                result = operation(**kwargs)
            finally:
                self._save()  # a refusal may have changed something on its way
            self.dispatcher.enqueue(result.webhooks)
        return result

    def _save(self) -> None:
        """Write the world to `state_dir` if it changed (every change calls this)."""
        if self.state_dir is None:
            return
        with self.platform.lock:
            try:
                self.state_dir.save(snapshot(self.platform.state))
            except OSError as exc:
                # The emulator keeps serving; the file is only behind until the next change.
                logger.error(
                    "emulator: could not save its state in %s: %s", self.state_dir.path, exc
                )

    def graph_call(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        access_token: str | None,
        appsecret_proof: str | None = None,
        source: str = "http",
    ) -> Result:
        """A Graph call (path without version prefix); records it for the control page."""
        result = self._apply(
            self.platform.graph,
            method=method,
            path=path,
            params=params,
            access_token=access_token,
            appsecret_proof=appsecret_proof,
        )
        self.record_call(
            method=method,
            path=path,
            app_id=self.platform.app_for_token(access_token),
            status=result.status,
            body=result.body,
            source=source,
        )
        return result

    def _bot_graph(
        self, method: str, path: str, params: dict[str, Any], *, access_token: str
    ) -> Result:
        return self.graph_call(method, path, params, access_token=access_token, source="bot")

    def record_call(
        self,
        *,
        method: str,
        path: str,
        app_id: str | None,
        status: int,
        body: dict[str, Any] | None,
        source: str,
        fault: str | None = None,
    ) -> None:
        error = (body or {}).get("error") if isinstance(body, dict) else None
        with self._calls_lock:
            self.graph_calls.append(
                {
                    "at": self.clock.now_ms(),
                    "method": method,
                    "path": path,
                    "app_id": app_id,
                    "status": status,
                    "error_code": error.get("code") if isinstance(error, dict) else None,
                    "error_subcode": error.get("error_subcode")
                    if isinstance(error, dict)
                    else None,
                    "fault": fault,
                    "source": source,
                }
            )

    def _page(self, page_id: str | None) -> str:
        return page_id or self.config.pages[0].page_id

    def user_create(
        self, first_name: str, last_name: str = "", *, page_id: str | None = None
    ) -> User:
        with self.platform.lock:
            user = self.platform.user_create(
                page_id=self._page(page_id), first_name=first_name, last_name=last_name
            )
            self._save()
        return user

    def user_says(self, psid: str, text: str, *, page_id: str | None = None) -> dict[str, Any]:
        """The user sends a text message; returns its transcript entry (with its mid)."""
        return self._apply(
            self.platform.user_message, page_id=self._page(page_id), psid=psid, text=text
        ).body

    def user_taps_quick_reply(
        self, psid: str, mid: str, index: int, *, page_id: str | None = None
    ) -> dict[str, Any]:
        return self._apply(
            self.platform.user_message,
            page_id=self._page(page_id),
            psid=psid,
            quick_reply=(mid, index),
        ).body

    def user_taps_button(
        self, psid: str, mid: str, index: int, *, page_id: str | None = None
    ) -> dict[str, Any]:
        return self._apply(
            self.platform.user_postback,
            page_id=self._page(page_id),
            psid=psid,
            mid=mid,
            index=index,
        ).body

    def user_reads(self, psid: str, *, page_id: str | None = None) -> dict[str, Any]:
        return self._apply(self.platform.user_read, page_id=self._page(page_id), psid=psid).body

    def take_control(
        self,
        psid: str,
        *,
        app_id: str | None = None,
        page_id: str | None = None,
        metadata: str | None = None,
    ) -> None:
        """An app (default: the bot / primary) takes the thread now: fault injection."""
        page_id = self._page(page_id)
        app_id = app_id or self.platform.pages[page_id].primary_app_id or self.config.bot_app_id
        if app_id is None:
            raise EmulatorError("no app to take control")
        self._apply(
            self.platform.control_take,
            app_id=app_id,
            page_id=page_id,
            psid=psid,
            metadata=metadata,
        )

    def inbox_reply(self, psid: str, text: str, *, page_id: str | None = None) -> dict[str, Any]:
        return self._apply(
            self.platform.inbox_reply, page_id=self._page(page_id), psid=psid, text=text
        ).body

    def primary_set(self, app_id: str, *, page_id: str | None = None) -> None:
        self._apply(self.platform.primary_set, page_id=self._page(page_id), app_id=app_id)

    # --- the page's setup, switched at runtime (EmulatorError 400 for a bad value) -------

    def page_mode_set(self, mode: str, *, page_id: str | None = None) -> None:
        """legacy / cr / cr-zero-config. Zero-config puts the default app aside; back to
        cr or legacy restores it (else the bot)."""
        self._apply(self.platform.page_mode_set, page_id=self._page(page_id), mode=mode)

    def page_take_allowed_set(
        self, app_id: str, allowed: bool, *, page_id: str | None = None
    ) -> None:
        """CR: whether the Page admin allows `app_id` to take control of conversations."""
        self._apply(
            self.platform.take_allowed_set,
            page_id=self._page(page_id),
            app_id=app_id,
            allowed=_flag(allowed, "allowed"),
        )

    def page_requests_refused_set(self, refused: bool, *, page_id: str | None = None) -> None:
        """CR with a default app: request_thread_control answers "(#10) Handover Protocol
        APIs disabled for this page"."""
        self._apply(
            self.platform.requests_refused_set,
            page_id=self._page(page_id),
            refused=_flag(refused, "refused"),
        )

    def page_thread_control_refused_set(self, refused: bool, *, page_id: str | None = None) -> None:
        """The Send API answers (#100) to a `thread_control` field on this page."""
        self._apply(
            self.platform.thread_control_refused_set,
            page_id=self._page(page_id),
            refused=_flag(refused, "refused"),
        )

    # --- page-level faults: they last until turned off (unlike the one-shot Graph faults) --

    def page_restrict(self, restricted: bool = True, *, page_id: str | None = None) -> None:
        """Every Send API call for the page (any app, the demo bot too) answers
        10/1893063 and sends nothing; thread-control calls still work."""
        self._apply(
            self.platform.restrict,
            page_id=self._page(page_id),
            restricted=_flag(restricted, "restricted"),
        )

    def token_expire(
        self, app_id: str, expired: bool = True, *, page_id: str | None = None
    ) -> None:
        """Every Graph call with the app's token for the page answers 190/463."""
        self._apply(
            self.platform.token_expire,
            page_id=self._page(page_id),
            app_id=app_id,
            expired=_flag(expired, "expired"),
        )

    def token_reissue(self, app_id: str, *, page_id: str | None = None) -> str:
        """A new page token for the app (returned); the old one answers 190/460 from now
        on and `token_expire` is cleared. Not kept in `state_dir`: a restart issues the
        command line's tokens again."""
        result = self._apply(
            self.platform.token_reissue, page_id=self._page(page_id), app_id=app_id
        )
        token: str = result.body["access_token"]
        return token

    def permission_revoke(
        self, app_id: str, revoked: bool = True, *, page_id: str | None = None
    ) -> None:
        """The app's Send API calls for the page answer (#230)."""
        self._apply(
            self.platform.permission_revoke,
            page_id=self._page(page_id),
            app_id=app_id,
            revoked=_flag(revoked, "revoked"),
        )

    def advance_clock(self, seconds: float) -> None:
        """Move the emulated time forward: windows close, CR control lapses."""
        with self.platform.lock:
            self.clock.advance(seconds)
            self._save()

    # --- faults ---------------------------------------------------------------------------

    def fail_next_graph_calls(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        status: int = 500,
        seconds: float = 15.0,
        applied: bool = False,
        path: str | None = None,
        app_id: str | None = None,
    ) -> GraphFault:
        return self.graph_faults.arm(
            GraphFault(
                kind=kind,
                remaining=count,
                status=status,
                seconds=seconds,
                applied=applied,
                path=path,
                app_id=app_id,
            )
        )

    def webhook_faults(
        self,
        *,
        duplicate: bool | None = None,
        out_of_order: bool | None = None,
        late_seconds: float | None = None,
        late_echoes_only: bool | None = None,
        app_id: str | None = None,
    ) -> None:
        """Turn webhook faults on or off for one app, or (app_id None) for every app
        with a callback URL; None leaves a setting as it is. `late_seconds` > 0 holds
        echoes (all webhooks with `late_echoes_only=False`) that long. ValueError for a
        negative delay."""
        self.dispatcher.faults_set(
            app_id=app_id,
            duplicate=duplicate,
            out_of_order=out_of_order,
            late_seconds=late_seconds,
            late_echoes_only=late_echoes_only,
        )

    def on_delivery(self, observer: Callable[[Delivery], None]) -> None:
        """Call `observer(delivery)` once each webhook delivery is settled (delivered,
        failed or dropped), from the delivery thread: e.g. to count what an app
        acknowledged over a long run, beyond the recent deliveries kept."""
        self.dispatcher.observe(observer)

    def unsubscribe(self, app_id: str) -> None:
        """Turn off an app's webhooks for all its pages (Meta does so after 1 h of failures)."""
        for page_id in self.platform.pages:
            if (app_id, page_id) in self.platform.subscriptions:
                self.platform.subscription_set(app_id=app_id, page_id=page_id, active=False)

    def set_callback_url(self, app_id: str, url: str | None) -> None:
        """Point an app's webhooks somewhere else, e.g. once the helpdesk's port is known.

        Webhooks already queued go to the new URL; while an app has no URL (and is not
        in-process), its webhooks are not even queued.
        """
        app = self.platform.apps.get(app_id)
        if app is None:
            raise EmulatorError(f"no app {app_id}", status=404)
        if app.handler is not None:
            raise EmulatorError("the demo bot runs in-process", status=409)
        if url is not None and not url.startswith(("http://", "https://")):
            raise EmulatorError("the callback URL must be http(s)")
        app.callback_url = url or None

    def subscribe(self, app_id: str) -> tuple[bool, str]:
        """Re-subscribe an app to its pages after the §8.2 verification handshake."""
        app = self.platform.apps.get(app_id)
        if app is None:
            raise EmulatorError(f"no app {app_id}", status=404)
        ok, detail = verify_callback(app, timeout=self.config.delivery_timeout_seconds)
        if ok:
            for page_id in app.page_tokens:
                self.platform.subscription_set(app_id=app_id, page_id=page_id, active=True)
        return ok, detail

    # --- reading state ---------------------------------------------------------------------

    def thread(self, psid: str, *, page_id: str | None = None, after: int = 0) -> dict[str, Any]:
        return self.platform.thread_view(page_id=self._page(page_id), psid=psid, after=after)

    def transcript(self, psid: str, *, page_id: str | None = None) -> list[dict[str, Any]]:
        """Messages and platform events of a thread, oldest first."""
        messages: list[dict[str, Any]] = self.thread(psid, page_id=page_id)["messages"]
        return messages

    def owner(self, psid: str, *, page_id: str | None = None) -> str | None:
        return self.platform.owner(page_id=self._page(page_id), psid=psid)

    def deliveries(self, app_id: str | None = None) -> list[Delivery]:
        return self.dispatcher.deliveries(app_id)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until webhooks settle, including those the bot's answers cause."""
        deadline = time.monotonic() + timeout
        # Two quiet checks in a row: the bot may queue new webhooks while handling one.
        while time.monotonic() < deadline:
            if not self.dispatcher.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            time.sleep(0.02)
            if self.dispatcher.wait_idle(0):
                return True
        return False

    def wait_for(self, check: Callable[[], Any], *, timeout: float = 10.0, what: str = "") -> Any:
        """Poll `check` until it returns something truthy (webhooks are asynchronous)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what or check}; last value: {last!r}")

    def state(self) -> dict[str, Any]:
        state = self.platform.state_view()
        health = self.dispatcher.health_view()
        for app in state["apps"]:
            app["delivery"] = health.get(app["app_id"])
        state["graph_faults"] = self.graph_faults.view()
        state["webhook_faults"] = self.dispatcher.faults_view()
        state["graph_url"] = self.graph_url
        state["bot"] = {
            "app_id": self.config.bot_app_id,
            "passes_on_button": self.config.bot_passes_on_button,
        }
        return state


def _flag(value: object, name: str) -> bool:
    """A setting's on/off value: a bool, or a clear 400 (1 or "yes" are not accepted)."""
    if not isinstance(value, bool):
        raise EmulatorError(f"{name} must be true or false")
    return value
