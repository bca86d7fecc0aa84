from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from agents import realtime
from agents.auth import token_create
from agents.models import Team


class Command(BaseCommand):
    help = "Create a support agent (or update one) and print a new personal API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", help="Password for the web inbox and admin.")
        parser.add_argument(
            "--team",
            action="append",
            default=[],
            help="Team name (created if missing); repeat for several.",
        )
        parser.add_argument(
            "--admin", action="store_true", help="Make the agent a Django admin (superuser)."
        )
        parser.add_argument(
            "--lead",
            action="store_true",
            help="A support lead: may see the reports (/reports/).",
        )
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        if not username:
            raise CommandError("The username is empty.")
        password = options["password"]
        if password is not None and len(password) < 8:
            raise CommandError("The password must have at least 8 characters.")
        User = get_user_model()
        with transaction.atomic():
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": options["email"]}
            )
            if password:
                user.set_password(password)
            elif created:
                user.set_unusable_password()
            user.is_staff = True  # agents may log in to the inbox and (read-only) admin
            if options["admin"]:
                user.is_superuser = True
            user.is_active = True
            user.save()
            if options["lead"]:
                user.user_permissions.add(
                    Permission.objects.get(
                        content_type__app_label="agents", codename="view_reports"
                    )
                )
            for name in options["team"]:
                team, _ = Team.objects.get_or_create(name=name.strip())
                team.members.add(user)
            token = token_create(user=user)
            # An existing agent's open sockets follow the new teams and admin flag.
            realtime.access_changed_on_commit([user.pk])
        self.stdout.write(f"{'Created' if created else 'Updated'} agent {username}.")
        self.stdout.write(f"API token (shown once): {token}")
