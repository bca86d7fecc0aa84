from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks.services import page_connect


class Command(BaseCommand):
    help = "Register (or update) a Facebook Page: id, Page access token, the bot's app id, name."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--page-id", required=True)
        parser.add_argument("--access-token", required=True)
        parser.add_argument("--bot-app-id", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--human-agent",
            action="store_true",
            help="The app has Meta's Human Agent feature (7-day replies).",
        )
        parser.add_argument(
            "--legacy-handover",
            action="store_true",
            help="A legacy Handover Protocol page: control never lapses (default: "
            "Conversation Routing, where it lapses 24 h after the user's last message).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            page, created = page_connect(
                page_id=options["page_id"],
                access_token=options["access_token"],
                bot_app_id=options["bot_app_id"],
                name=options["name"],
                human_agent_enabled=options["human_agent"],
                conversation_routing=not options["legacy_handover"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        verb = "Connected" if created else "Updated"
        self.stdout.write(f"{verb} page {page.name} ({page.page_id}); bot app {page.bot_app_id}.")
