"""`manage.py contact_erase --page-id P --psid S [--yes]`: erase one person's data."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.services import privacy


class Command(BaseCommand):
    help = (
        "Erase everything stored about one Messenger user of one page (a person's "
        "request to delete their data). Without --yes, says what would be deleted and "
        "changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--page-id", required=True, help="The Facebook Page's id.")
        parser.add_argument("--psid", required=True, help="The person's page-scoped id.")
        parser.add_argument(
            "--yes", action="store_true", help="Really erase (without it: a dry run)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        page_id, psid = options["page_id"], options["psid"]
        try:
            if not options["yes"]:
                plan = privacy.contact_erase_plan(page_id=page_id, psid=psid)
            else:
                plan = privacy.contact_erase(page_id=page_id, psid=psid)
        except privacy.EraseRefused as exc:
            raise CommandError(f"Nothing was erased. {exc}") from None
        except privacy.PrivacyInputError as exc:
            raise CommandError(str(exc)) from None
        if plan.empty:
            self.stdout.write("Nothing is stored about this person on this page: nothing to erase.")
            return
        counts = ", ".join(f"{kind.replace('_', ' ')}: {n}" for kind, n in plan.counts.items() if n)
        if options["yes"]:
            self.stdout.write(f"Erased. {counts}.")
            return
        self.stdout.write(f"Would erase: {counts}.")
        if plan.refusal:
            self.stdout.write(f"It would be refused now: {plan.refusal}")
        self.stdout.write("Nothing was changed. Run again with --yes to erase.")
