"""`manage.py contact_export --page-id P --psid S [--output FILE]`: one person's data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from agents.services import privacy


class Command(BaseCommand):
    help = (
        "Export everything stored about one Messenger user of one page (a person's "
        "request for their data) as JSON: profile, conversation, tickets with their "
        "internal notes, tags and ratings, messages, handover history, raw webhook events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--page-id", required=True, help="The Facebook Page's id.")
        parser.add_argument("--psid", required=True, help="The person's page-scoped id.")
        parser.add_argument("--output", help="Write the JSON to this file (default: stdout).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            document = privacy.contact_export(page_id=options["page_id"], psid=options["psid"])
        except (privacy.PrivacyInputError, LookupError) as exc:
            raise CommandError(str(exc)) from None
        text = json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
        output = options["output"]
        if not output:
            self.stdout.write(text)
            return
        try:
            Path(output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Could not write {output}: {exc.strerror}.") from None
        self.stderr.write(f"Wrote the export to {output}.")
