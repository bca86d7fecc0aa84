"""`manage.py demo_seed`: the demo data `make run` starts with (development only).

Connects the demo page to the emulator's demo bot, makes the demo agent (an admin, with
the demo password) and prints its API token: the same on every run. With
`--emulator-url`, the page's contacts that the running emulator does not know (its
world was reset, or its state file lost) are removed with their tickets, and a line
says so.
"""

from __future__ import annotations

from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.services.demo import (
    demo_agent_ensure,
    demo_contacts_forget,
    demo_csat_ensure,
    demo_routing_ensure,
    demo_saved_replies_ensure,
    demo_tags_ensure,
)
from webhooks.emulator.config import (
    DEMO_BOT_APP_ID,
    DEMO_HELPDESK_TOKEN,
    DEMO_PAGE_ID,
    DEMO_PAGE_NAME,
)
from webhooks.services import page_connect

DEMO_HANDBACK_NOTICE = "You're now chatting with our assistant again."

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


def emulator_psids(url: str, page_id: str) -> set[str]:
    """The PSIDs of the page's users in the emulator at `url`."""
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy
    try:
        response = session.get(f"{url.rstrip('/')}/emulator/api/state", timeout=10)
        response.raise_for_status()
        users = response.json()["users"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"the emulator at {url} did not say who its users are: {exc}") from None
    return {str(u["psid"]) for u in users if str(u.get("page_id")) == page_id}


class Command(BaseCommand):
    help = "The demo page, agent and API token of `make run` (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--emulator-url",
            default="",
            help="The running emulator (http://127.0.0.1:8001): remove the page's contacts "
            "it does not know.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Asked first: an emulator that does not answer changes nothing.
        known = (
            emulator_psids(options["emulator_url"], DEMO_PAGE_ID)
            if options["emulator_url"]
            else None
        )
        page, _ = page_connect(
            page_id=DEMO_PAGE_ID,
            access_token=DEMO_HELPDESK_TOKEN,
            bot_app_id=DEMO_BOT_APP_ID,
            name=DEMO_PAGE_NAME,
            handback_notice=DEMO_HANDBACK_NOTICE,
        )
        self.stdout.write(f"Demo page: {page.name} ({page.page_id}), bot app {page.bot_app_id}.")
        page = demo_csat_ensure(page_id=page.page_id)
        self.stdout.write(
            f"Ratings: closing a ticket asks the customer for a rating (1 to 5), and the bot "
            f"gets the conversation back after the answer or {page.csat_wait_minutes} minutes."
        )
        if known is not None:
            forgotten = demo_contacts_forget(page_id=page.page_id, known_psids=known)
            if forgotten:
                self.stdout.write(
                    f"The emulator does not know {len(forgotten)} contact(s) of {page.name} "
                    "(its state was reset): removed them with their conversations and "
                    f"tickets (PSIDs {', '.join(forgotten)})."
                )
        demo_tags_ensure()  # issue 11: tags to apply and filter by
        token, removed = demo_agent_ensure(username=DEMO_USERNAME, password=DEMO_PASSWORD)
        self.stdout.write(f"Demo login: {DEMO_USERNAME} / {DEMO_PASSWORD} (admin).")
        if removed:
            self.stdout.write(f"Removed {removed} older API token(s) of {DEMO_USERNAME}.")
        self.stdout.write(f"API token: {token}")
        if demo_saved_replies_ensure(username=DEMO_USERNAME):
            self.stdout.write("Saved replies: type / in the reply box (e.g. /refund).")
        self.stdout.write(demo_routing_ensure(page_id=page.page_id, username=DEMO_USERNAME))
