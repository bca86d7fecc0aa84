"""Configuration of the Messenger Platform emulator: pages, apps, users, delivery.

`EmulatorConfig.demo()` builds the setup `make run` uses (one page, the demo bot as the
primary receiver / default app, the helpdesk as the secondary / non-default app); tests
start from it and override what they need (callback URL, mode, retry delays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["legacy", "cr", "cr-zero-config"]
MODES: tuple[str, ...] = ("legacy", "cr", "cr-zero-config")

# The demo values: what `make run` and the helpdesk's development settings use.
DEMO_PAGE_ID = "1000000000000001"
DEMO_PAGE_NAME = "Demo Page"
DEMO_HELPDESK_APP_ID = "100000000000001"
DEMO_HELPDESK_SECRET = "dev-app-secret"
DEMO_HELPDESK_TOKEN = "demo-page-token"
DEMO_HELPDESK_VERIFY_TOKEN = "dev-verify-token"
DEMO_HELPDESK_CALLBACK_URL = "http://127.0.0.1:8000/webhooks/messenger/"
DEMO_BOT_APP_ID = "200000000000002"
DEMO_BOT_SECRET = "demo-bot-secret"
DEMO_BOT_TOKEN = "demo-bot-token"

# Inbox "apps" that are valid pass targets without being configured (§2.3, §3.2).
PAGE_INBOX_APP_ID = "263902037430900"
INSTAGRAM_INBOX_APP_ID = "1217981644879628"
INBOX_APP_IDS = frozenset({PAGE_INBOX_APP_ID, INSTAGRAM_INBOX_APP_ID})

# Everything a helpdesk next to a bot subscribes to (§7.3); both handover spellings.
ALL_FIELDS = frozenset(
    {
        "messages",
        "standby",
        "messaging_handovers",
        "messaging_handover",
        "message_echoes",
        "messaging_postbacks",
        "message_reads",
        "message_deliveries",
        "messaging_referrals",
    }
)

# An in-process app (the demo bot): gets the exact bytes and headers an HTTP app would,
# answers with an HTTP status. Raising counts as a failed delivery, like a 500.
WebhookHandler = Callable[[bytes, Mapping[str, str]], int]


@dataclass
class AppConfig:
    """One Meta app connected to the emulated page(s).

    `page_tokens` maps page id -> the Page access token issued to this app: a token
    identifies both the calling app and the page, as on Meta. An app is subscribed to
    the pages it has a token for.
    """

    app_id: str
    name: str
    secret: str
    page_tokens: dict[str, str]
    # Where webhooks go: an HTTP callback URL, or (the demo bot) a Python handler.
    callback_url: str | None = None
    handler: WebhookHandler | None = None
    verify_token: str = ""
    subscribed_fields: frozenset[str] = ALL_FIELDS
    # Meta's Human Agent feature: MESSAGE_TAG + HUMAN_AGENT allowed up to 7 days.
    human_agent: bool = False
    # "Require App Secret" in the app dashboard: every call needs appsecret_proof.
    require_appsecret_proof: bool = False
    # Separately approved profile fields (locale, timezone, gender), §5.
    approved_profile_fields: frozenset[str] = frozenset()
    # How the customer page labels this app's messages: "bot", "agent" or "app".
    role: str = "app"


@dataclass
class PageConfig:
    """One Facebook Page and its routing setup.

    `primary_app_id` is the legacy primary receiver or, under Conversation Routing, the
    default app. `take_control_app_ids` are the apps the business allowed to take
    control (CR; in legacy mode only the primary may take). `requests_refused`: a CR
    page with a default app that answers `request_thread_control` with "Handover
    Protocol APIs disabled for this page" (§9.1); `thread_control_refused`: the Send
    API refuses its `thread_control` field on this page.
    """

    page_id: str = DEMO_PAGE_ID
    name: str = DEMO_PAGE_NAME
    mode: Mode = "cr"
    primary_app_id: str | None = DEMO_BOT_APP_ID
    take_control_app_ids: frozenset[str] = frozenset({DEMO_BOT_APP_ID})
    requests_refused: bool = False
    thread_control_refused: bool = False


@dataclass
class UserConfig:
    """A Messenger user seeded at start; the PSID is generated when not given."""

    first_name: str
    last_name: str
    page_id: str = DEMO_PAGE_ID
    psid: str | None = None


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    # 0 picks a free port (tests); `manage.py messenger_emulator` defaults to 8001.
    port: int = 0
    pages: list[PageConfig] = field(default_factory=lambda: [PageConfig()])
    apps: list[AppConfig] = field(default_factory=list)
    users: list[UserConfig] = field(default_factory=list)
    # Which app the in-process demo bot plays (None: no bot).
    bot_app_id: str | None = DEMO_BOT_APP_ID
    # The bot passes to `bot_handover_app_id` by itself when the user asks for a human,
    # instead of waiting for the helpdesk's request_thread_control.
    bot_passes_on_button: bool = False
    bot_handover_app_id: str | None = DEMO_HELPDESK_APP_ID
    # Webhook delivery (§1.5, §8.17): 5 s answer limit, a bounded number of retries.
    delivery_timeout_seconds: float = 5.0
    retry_delays_seconds: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
    # Meta's alert after 15 min of failures, unsubscription after 1 h (emulated clock).
    alert_after_failing_seconds: float = 15 * 60
    unsubscribe_after_failing_seconds: float = 60 * 60
    # How long an out-of-order fault holds a batch when no later one comes.
    out_of_order_hold_seconds: float = 2.0
    # Events per POST: 1 is what Meta says it does; more batches queued events.
    batch_max: int = 1
    # Meta's JSON escapes "/" as "\/" too (PHP json_encode); receivers must hash raw bytes.
    escape_slashes: bool = True
    # [conv] also send pass_thread_control to the app that gave control away.
    pass_notifies_previous_owner: bool = False
    # [conv] zero-config CR: "the first application to request receives control".
    zero_config_request_grants: bool = True
    # Send API limit per page (§4.7); 0 turns it off.
    send_rate_limit_per_second: int = 300
    # The prefix printed for clients (`GRAPH_API_URL`); every /vNN.N/ prefix is served.
    graph_version: str = "v23.0"
    # Seeds ids (PSIDs, mids) so runs are reproducible in tests; None: random mids.
    seed: int | None = None
    # The first PSID handed out; a world kept on disk starts at a random one (statefile).
    first_psid: int = 3100000000000001

    def app(self, app_id: str) -> AppConfig | None:
        return next((a for a in self.apps if a.app_id == app_id), None)

    @classmethod
    def demo(
        cls,
        *,
        mode: Mode = "cr",
        port: int = 8001,
        host: str = "127.0.0.1",
        page_id: str = DEMO_PAGE_ID,
        page_name: str = DEMO_PAGE_NAME,
        helpdesk_app_id: str = DEMO_HELPDESK_APP_ID,
        helpdesk_secret: str = DEMO_HELPDESK_SECRET,
        helpdesk_token: str = DEMO_HELPDESK_TOKEN,
        helpdesk_callback_url: str | None = DEMO_HELPDESK_CALLBACK_URL,
        helpdesk_verify_token: str = DEMO_HELPDESK_VERIFY_TOKEN,
        helpdesk_human_agent: bool = False,
        helpdesk_requires_appsecret_proof: bool = True,
        bot_app_id: str = DEMO_BOT_APP_ID,
        bot_token: str = DEMO_BOT_TOKEN,
        bot_secret: str = DEMO_BOT_SECRET,
        bot_passes_on_button: bool = False,
        bot_can_take_control: bool = True,
        requests_refused: bool = False,
        helpdesk_can_take: bool = False,
        users: list[UserConfig] | None = None,
    ) -> EmulatorConfig:
        """The demo page: the bot is the primary / default app, the helpdesk the other.

        `requests_refused`: the page refuses `request_thread_control` (CR with a default
        app); `helpdesk_can_take`: the Page admin allowed the helpdesk to take control.
        """
        zero_config = mode == "cr-zero-config"
        may_take = {bot_app_id} if bot_can_take_control else set()
        if helpdesk_can_take:
            may_take.add(helpdesk_app_id)
        page = PageConfig(
            page_id=page_id,
            name=page_name,
            mode=mode,
            primary_app_id=None if zero_config else bot_app_id,
            take_control_app_ids=frozenset(may_take),
            requests_refused=requests_refused,
        )
        bot = AppConfig(
            app_id=bot_app_id,
            name="Demo Bot",
            secret=bot_secret,
            page_tokens={page_id: bot_token},
            role="bot",
        )
        helpdesk = AppConfig(
            app_id=helpdesk_app_id,
            name="Helpdesk",
            secret=helpdesk_secret,
            page_tokens={page_id: helpdesk_token},
            callback_url=helpdesk_callback_url,
            verify_token=helpdesk_verify_token,
            human_agent=helpdesk_human_agent,
            require_appsecret_proof=helpdesk_requires_appsecret_proof,
            role="agent",
        )
        if users is None:
            users = [
                UserConfig("Ada", "Lovelace", page_id=page_id),
                UserConfig("Alan", "Turing", page_id=page_id),
            ]
        return cls(
            host=host,
            port=port,
            pages=[page],
            apps=[bot, helpdesk],
            users=users,
            bot_app_id=bot_app_id,
            bot_passes_on_button=bot_passes_on_button,
            bot_handover_app_id=helpdesk_app_id,
        )
