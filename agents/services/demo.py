"""The demo data of `make run` (development only): the demo agent and its API token,
and forgetting contacts that the emulator no longer has.

Called by `manage.py demo_seed`; nothing in production calls these.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection
from datetime import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from agents.auth import token_digest
from agents.models import (
    ApiToken,
    Contact,
    OfficeHours,
    PageRouting,
    SavedReply,
    Tag,
    Team,
    TeamRouting,
)
from webhooks.models import Page
from webhooks.services import page_csat_set


def demo_token(*, username: str) -> str:
    """The demo agent's API token: derived from SECRET_KEY, so every `make run` prints the
    same one (the `.env` that `make run` writes keeps SECRET_KEY) and nothing stores it."""
    mac = hmac.new(
        settings.SECRET_KEY.encode(), f"demo API token of {username}".encode(), hashlib.sha256
    )
    return "hd_" + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def demo_agent_ensure(*, username: str, password: str) -> tuple[str, int]:
    """The demo agent, an active admin with this password, and its one API token.

    Returns the token and how many other tokens of the agent were deleted (those
    earlier `make run`s created, one per run). Idempotent.
    """
    with transaction.atomic():
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = user.is_superuser = user.is_active = True
        user.save()
        token = demo_token(username=username)
        digest = token_digest(token)
        removed, _ = ApiToken.objects.filter(user=user).exclude(digest=digest).delete()
        ApiToken.objects.get_or_create(user=user, digest=digest, defaults={"prefix": token[:8]})
    return token, removed


def demo_contacts_forget(*, page_id: str, known_psids: Collection[str]) -> list[str]:
    """Delete the page's contacts whose PSIDs are not in `known_psids` (the users the
    emulator has), with their conversations, tickets and messages: the demo never shows
    tickets of users that no longer exist. Returns the PSIDs forgotten."""
    with transaction.atomic():
        stale = Contact.objects.filter(page__page_id=page_id).exclude(psid__in=known_psids)
        psids = sorted(stale.values_list("psid", flat=True))
        stale.delete()
    return psids


# Issue 11, tags: what a newcomer finds in the tag picker and the list's filter.
DEMO_TAGS = (
    ("refund", "red", "The customer wants their money back."),
    ("delivery", "blue", "Where is my parcel, late or damaged deliveries."),
    ("vip", "purple", "A customer to look after."),
    ("bug", "orange", "Something in the product does not work."),
    ("feedback", "green", "Praise, complaints and ideas."),
)


def demo_tags_ensure() -> list[str]:
    """The demo's tags, made where no tag of that name (whatever the case) exists; an
    admin's renames, colours and deactivations are kept. Returns the names made."""
    made = []
    with transaction.atomic():
        for name, colour, description in DEMO_TAGS:
            if not Tag.objects.filter(name__iexact=name).exists():
                Tag.objects.create(name=name, colour=colour, description=description)
                made.append(name)
    return made


def demo_csat_ensure(*, page_id: str) -> Page:
    """The demo page asks for a rating when a ticket closes (CSAT before hand-back),
    keeping the question, thank-you and wait an admin may have changed. Idempotent."""
    page = Page.objects.get(page_id=page_id)
    return page_csat_set(
        page_pk=page.pk,
        enabled=True,
        question=page.csat_question,
        thanks=page.csat_thanks,
        wait_minutes=page.csat_wait_minutes,
    )


DEMO_SAVED_REPLIES = (
    # (shortcut, title, body, personal: the demo agent's own, else every agent's)
    (
        "hi",
        "Greeting",
        "Hi {first_name}, I'm {agent_name} from {page_name}. How can I help?",
        False,
    ),
    (
        "refund",
        "Refund policy",
        "Refunds go back to the card you paid with within 5 working days of the return "
        "reaching us, {first_name}.",
        False,
    ),
    (
        "order",
        "Ask for the order number",
        "Could you send me your order number? It starts with # and is in your confirmation email.",
        False,
    ),
    (
        "bye",
        "Sign-off",
        "Glad I could help, {first_name}! The assistant is here if you need anything else.",
        True,
    ),
)


def demo_saved_replies_ensure(*, username: str) -> int:
    """The demo's saved replies: every agent's, and one of the demo agent's own, made
    once (a reply someone changed keeps their text). Returns how many were created."""
    owner = get_user_model().objects.get(username=username)
    created = 0
    with transaction.atomic():
        for shortcut, title, body, personal in DEMO_SAVED_REPLIES:
            _, made = SavedReply.objects.get_or_create(
                shortcut=shortcut,
                owner=owner if personal else None,
                team=None,
                defaults={"title": title, "body": body, "created_by": owner},
            )
            created += made
    return created


# --- Issue 11: presence, routing and office hours --------------------------------------

DEMO_TEAM = "Support"
DEMO_SECOND_TEAM = "Billing"


def demo_routing_ensure(*, page_id: str, username: str) -> str:
    """The demo page routes to the Support team (the demo agent is a member): tickets
    are assigned automatically to whoever is online, up to 3 each; Support works Monday
    to Friday, 9:00 to 18:00 in Paris, and outside those hours (or with nobody online)
    the customer is told when the team is back, and the ticket waits. A second team,
    Billing (New York hours, assigning by hand), shows other settings; it takes a page
    when one is added to it. Idempotent: an admin's later changes to these rows stay.
    Returns a line for the demo's output."""
    with transaction.atomic():
        page = Page.objects.get(page_id=page_id)
        user = get_user_model().objects.get(username=username)
        support, _ = Team.objects.get_or_create(name=DEMO_TEAM)
        support.pages.add(page)
        support.members.add(user)
        routing, created = TeamRouting.objects.get_or_create(
            team=support, defaults={"capacity": 3, "time_zone": "Europe/Paris"}
        )
        if created:
            OfficeHours.objects.bulk_create(
                OfficeHours(routing=routing, weekday=day, opens=time(9), closes=time(18))
                for day in range(5)
            )
        PageRouting.objects.get_or_create(page=page, defaults={"team": support})
        billing, _ = Team.objects.get_or_create(name=DEMO_SECOND_TEAM)
        billing_routing, created = TeamRouting.objects.get_or_create(
            team=billing,
            defaults={"auto_assign": False, "capacity": 5, "time_zone": "America/New_York"},
        )
        if created:
            OfficeHours.objects.bulk_create(
                OfficeHours(routing=billing_routing, weekday=day, opens=time(8), closes=time(20))
                for day in range(5)
            )
    return (
        f"Routing: {page.name} goes to the {DEMO_TEAM} team (auto-assignment, 3 open tickets "
        "per agent, Monday to Friday 9:00-18:00 Europe/Paris); a second team, "
        f"{DEMO_SECOND_TEAM}, has its own settings."
    )
