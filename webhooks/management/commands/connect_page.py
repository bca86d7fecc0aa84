from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks.models import ControlMode, Handback
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
        parser.add_argument(
            "--control-mode",
            choices=ControlMode.values,
            default=ControlMode.AUTO,
            help="How the helpdesk gets control: request (ask the bot), take (Conversation "
            "Routing with a default app, where the Page lets this app take control), or auto "
            "(request, then take when Meta refuses requests; the default).",
        )
        parser.add_argument(
            "--handback",
            choices=Handback.values,
            default=Handback.PASS,
            help="How closing hands back: pass to the bot (default) or release (the thread "
            "goes idle; the default app answers next). Legacy pages always pass.",
        )
        parser.add_argument(
            "--handback-notice",
            default="",
            help="Sent before control goes back, e.g. \"You're now chatting with our "
            'assistant again." (Meta requires automation to say so). Default: none.',
        )
        parser.add_argument(
            "--extend-max-hours",
            type=int,
            default=72,
            help="Keep control while an agent works, up to this many hours after the "
            "customer's last message (0-168; 0: never extend). Default 72.",
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
                control_mode=options["control_mode"],
                handback=options["handback"],
                handback_notice=options["handback_notice"],
                control_extend_max_hours=options["extend_max_hours"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        verb = "Connected" if created else "Updated"
        self.stdout.write(f"{verb} page {page.name} ({page.page_id}); bot app {page.bot_app_id}.")
