"""`manage.py messenger_emulator`: run the Messenger Platform emulator until Ctrl-C.

The defaults are the demo setup `make run` uses: page 1000000000000001 "Demo Page", the
demo bot (app 200000000000002) as its primary receiver / default app, and this helpdesk
(MESSENGER_APP_ID, signed with MESSENGER_APP_SECRET, page token "demo-page-token")
receiving webhooks at http://127.0.0.1:8000/webhooks/messenger/. Point the helpdesk's
GRAPH_API_URL at the printed URL and connect the page with the same token:

    manage.py messenger_emulator --port 8001
    GRAPH_API_URL=http://127.0.0.1:8001/v23.0 manage.py connect_page --page-id \
        1000000000000001 --access-token demo-page-token --bot-app-id 200000000000002 \
        --name "Demo Page"

`--page-setup` says how the demo page routes conversations (§9.1 of the platform notes):

    cr-take          Conversation Routing, the demo bot as default app, request_thread_control
                     refused ("Handover Protocol APIs disabled"), the helpdesk allowed to take
                     control: what most real Pages are now
    cr-request       Conversation Routing, the demo bot as default app, requests answered
                     (the bot passes when asked); the default, as `--mode cr`
    legacy           the Handover Protocol: the bot is the primary receiver
    cr-zero-config   Conversation Routing without a default app

Without it, `--mode` says the setup (cr is cr-request). The control page switches all of
it at runtime.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webhooks.emulator import Emulator, EmulatorConfig
from webhooks.emulator.callbacks import verify_callback
from webhooks.emulator.config import (
    DEMO_BOT_APP_ID,
    DEMO_BOT_TOKEN,
    DEMO_HELPDESK_CALLBACK_URL,
    DEMO_HELPDESK_TOKEN,
    DEMO_PAGE_ID,
    DEMO_PAGE_NAME,
    MODES,
    Mode,
)

# --page-setup -> (mode, requests refused, the helpdesk may take control).
PAGE_SETUPS: dict[str, tuple[Mode, bool, bool]] = {
    "cr-take": ("cr", True, True),
    "cr-request": ("cr", False, False),
    "legacy": ("legacy", False, False),
    "cr-zero-config": ("cr-zero-config", False, False),
}


def config_from_options(options: dict[str, Any]) -> EmulatorConfig:
    """The emulator configuration the command line describes."""
    callback = options["callback_url"] or None
    given_mode = options["mode"]
    if given_mode is not None and given_mode not in MODES:
        raise CommandError(f"--mode must be one of {', '.join(MODES)}")
    setup = options.get("page_setup")
    if setup is None:
        setup = {"cr": "cr-request"}.get(given_mode or "cr", given_mode)
    if setup not in PAGE_SETUPS:
        raise CommandError(f"--page-setup must be one of {', '.join(PAGE_SETUPS)}")
    mode, requests_refused, helpdesk_can_take = PAGE_SETUPS[setup]
    if given_mode is not None and given_mode != mode:
        raise CommandError(f"--page-setup {setup} is --mode {mode}, not --mode {given_mode}")
    if options["helpdesk_app_id"] == options["bot_app_id"]:
        raise CommandError("the helpdesk and the bot need different app ids")
    if options["page_token"] == options["bot_token"]:
        raise CommandError("the helpdesk and the bot need different page tokens")
    config = EmulatorConfig.demo(
        mode=mode,
        port=options["port"],
        host=options["host"],
        page_id=options["page_id"],
        page_name=options["page_name"],
        helpdesk_app_id=options["helpdesk_app_id"],
        helpdesk_secret=options["helpdesk_secret"],
        helpdesk_token=options["page_token"],
        helpdesk_callback_url=callback,
        helpdesk_verify_token=options["verify_token"],
        helpdesk_human_agent=options["human_agent"],
        helpdesk_requires_appsecret_proof=not options["no_appsecret_proof"],
        bot_app_id=options["bot_app_id"],
        bot_token=options["bot_token"],
        bot_passes_on_button=options["bot_passes_on_button"],
        bot_can_take_control=not options["bot_cannot_take"],
        requests_refused=requests_refused,
        helpdesk_can_take=helpdesk_can_take,
    )
    config.graph_version = options["graph_version"]
    return config


def setup_words(emulator: Emulator) -> str:
    """The demo page's routing setup in words, as the control page says it."""
    page = emulator.state()["pages"][0]
    words = [page["mode_text"]]
    if page["mode"] == "cr" and page["requests_refused"]:
        words.append("requests refused")
    if page["mode"] == "cr":
        names = {a.app_id: a.name for a in emulator.config.apps}
        allowed = [names.get(a, a) for a in page["take_control_app_ids"]]
        words.append("may take: " + (", ".join(allowed) or "nobody"))
    return "; ".join(words)


class Command(BaseCommand):
    help = "Run the Messenger Platform emulator (Graph API, webhooks, demo bot, customer page)."
    # An in-memory server: no database, no migrations needed.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (loopback).")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument(
            "--mode",
            default=None,
            choices=MODES,
            help="cr: Conversation Routing (default app = the bot); legacy: primary/secondary "
            "receivers; cr-zero-config: no default app. Default: cr (or --page-setup's).",
        )
        parser.add_argument(
            "--page-setup",
            default=None,
            choices=list(PAGE_SETUPS),
            help="How the demo page routes conversations: cr-take (CR, the bot as default "
            "app, request_thread_control refused, the helpdesk allowed to take control), "
            "cr-request (CR, requests answered: what --mode cr gives), legacy, "
            "cr-zero-config. Default: --mode's setup.",
        )
        parser.add_argument("--page-id", default=DEMO_PAGE_ID)
        parser.add_argument("--page-name", default=DEMO_PAGE_NAME)
        parser.add_argument(
            "--page-token",
            default=DEMO_HELPDESK_TOKEN,
            help="The Page access token issued to the helpdesk app.",
        )
        parser.add_argument("--helpdesk-app-id", default=settings.MESSENGER_APP_ID)
        parser.add_argument(
            "--helpdesk-secret",
            default=settings.MESSENGER_APP_SECRET,
            help="Signs the helpdesk's webhooks and checks its appsecret_proof "
            "(default: MESSENGER_APP_SECRET).",
        )
        parser.add_argument("--verify-token", default=settings.MESSENGER_VERIFY_TOKEN)
        parser.add_argument(
            "--callback-url",
            default=DEMO_HELPDESK_CALLBACK_URL,
            help="Where the helpdesk's webhooks go ('' for none).",
        )
        parser.add_argument(
            "--human-agent",
            action="store_true",
            help="The helpdesk app has the Human Agent feature (HUMAN_AGENT up to 7 days).",
        )
        parser.add_argument(
            "--no-appsecret-proof",
            action="store_true",
            help="Do not require appsecret_proof from the helpdesk (it is checked when sent).",
        )
        parser.add_argument("--bot-app-id", default=DEMO_BOT_APP_ID)
        parser.add_argument("--bot-token", default=DEMO_BOT_TOKEN)
        parser.add_argument(
            "--bot-passes-on-button",
            action="store_true",
            help="The bot passes control to the helpdesk itself when the user asks for a "
            "human (default: it waits for the helpdesk's request_thread_control).",
        )
        parser.add_argument(
            "--bot-cannot-take",
            action="store_true",
            help="CR: the business does not allow the bot to take control.",
        )
        parser.add_argument("--graph-version", default="v23.0")
        parser.add_argument(
            "--state-dir",
            type=Path,
            default=None,
            help="Keep the users, threads and the clock's offset in this directory across "
            "restarts (make run: var/emulator); default: in memory only.",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Run the webhook verification handshake with the helpdesk before starting.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = config_from_options(options)
        if options["verbosity"] >= 2:
            logging.getLogger("webhooks.emulator").setLevel(logging.DEBUG)
        if options["verify"]:
            helpdesk = config.app(options["helpdesk_app_id"])
            assert helpdesk is not None
            ok, detail = verify_callback(helpdesk)
            if not ok:
                raise CommandError(f"webhook verification failed: {detail}")
        emulator = Emulator(config, state_dir=options["state_dir"])
        try:
            base = emulator.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {config.host}:{config.port}: {exc}") from None
        # SIGTERM (a process supervisor, `make run`) stops as cleanly as Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: emulator.stopping.set())
        page = config.pages[0]
        self.stdout.write(
            "\n".join(
                [
                    f"Messenger Platform emulator ({page.mode}) on {base}",
                    f"  Customer page:  {base}/",
                    f"  Control page:   {base}/control",
                    f"  GRAPH_API_URL:  {emulator.graph_url}",
                    f"  Page:           {page.name} ({page.page_id})",
                    f"  Routing:        {setup_words(emulator)}",
                    f"  Bot app:        {config.bot_app_id} (primary / default app)",
                    f"  Helpdesk app:   {options['helpdesk_app_id']} -> "
                    f"{options['callback_url'] or '(no callback URL)'}",
                    f"  State:          {options['state_dir'] or 'in memory'}",
                    "Ctrl-C to stop.",
                ]
            )
        )
        # On Ctrl-C serve_forever stops the emulator on its way out.
        with contextlib.suppress(KeyboardInterrupt):
            emulator.serve_forever()
        self.stdout.write("Emulator stopped.")
