"""The admin index in the support lead's words, and lists that cost the same number of
queries however many rows they show."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import date, time

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import (
    Csat,
    Holiday,
    OfficeHours,
    PageRouting,
    Persona,
    Tag,
    Team,
    TeamRouting,
    Ticket,
    TicketTag,
)
from agents.services import attachments, notes, personas, presence, replies, tickets
from agents.services.throttle import login_failure_record
from helpdesk.admin import SECTIONS
from tests.support import factories, payloads
from webhooks.models import DataDeletionRequest

pytestmark = pytest.mark.django_db


def _sections(html: str) -> list[tuple[str, list[str]]]:
    """The index's sections: each caption and the names of its rows, in order."""
    found = []
    for block in re.findall(r'<div class="app-\w+ module.*?</table>', html, re.S):
        caption = re.search(r"<caption>(.*?)</caption>", block, re.S).group(1)
        caption = re.sub(r"<[^>]+>", "", caption).strip()
        rows = re.findall(r'<th scope="row"[^>]*>\s*<a [^>]*>([^<]+)</a>', block)
        found.append((caption, rows))
    return found


def test_the_index_groups_setup_apart_from_history(admin_client):
    html = admin_client.get("/admin/").content.decode()

    assert _sections(html) == [
        (
            "Setup",
            [
                "Doctor: is Meta still talking to us?",
                "Facebook pages",
                "Triggers",
                "Teams",
                "Tags",
                "Saved replies",
                "Team routing",
                "Page routing",
                "Office hours",
                "Holidays",
                "Agents",
                "Agent profiles",
                "API tokens",
                "Permission groups",
                "Sign-in failures",
            ],
        ),
        (
            "Conversations",
            [
                "Tickets",
                "Conversations",
                "Contacts",
                "Messages",
                "Ratings (CSAT)",
                "Attachments",
                "Notes",
                "Tickets in a queue",
                "Agent presences",
                "Open inbox sockets",
            ],
        ),
        (
            "History",
            [
                "Handover history",
                "Ticket history",
                "Ticket tags",
                "Personas",
                "Send orders",
                "Mentions",
                "Webhook deliveries",
                "Webhook events",
                "Meta API calls",
                "Data deletion requests",
            ],
        ),
    ]
    assert "What happened, as it was recorded. Read only." in html
    # Setup has "Add" links; history has none, and is "View" only.
    assert 'href="/admin/webhooks/page/add/"' in html
    assert "/admin/agents/controltransition/add/" not in html
    assert 'href="/admin/agents/controltransition/" class="viewlink"' in html


def test_every_registered_model_is_in_a_section():
    placed = [label for *_, labels in SECTIONS for label in labels]
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert sorted(placed) == sorted(registered)


def test_an_apps_own_page_still_lists_its_models(admin_client):
    html = admin_client.get("/admin/agents/").content.decode()

    assert [caption for caption, _ in _sections(html)] == ["Helpdesk"]
    assert "Handover history" in html and "Tickets" in html


# --- Query counts -----------------------------------------------------------------------

_numbers = itertools.count(1)


@pytest.fixture
def grow(page, deliver, clock, fake_graph, settings, tmp_path) -> Callable[[int], None]:
    """Adds `n` rows of every registered model, with their related rows different each
    time (another page, another agent, another conversation)."""

    # The page is on a team: its tickets are queued (a TicketWait each).
    routed = Team.objects.create(name="Routed")
    routed.pages.add(page)

    def more(n: int) -> None:
        for _ in range(n):
            k = next(_numbers)
            psid = f"39{k:04d}"
            deliver(payloads.user_message("hi", ts=clock(), psid=psid), channel="standby")
            deliver(payloads.pass_control(ts=clock(), psid=psid, metadata="handover"))
            agent = factories.agent(f"agent{k}")
            ticket = Ticket.objects.get(conversation__contact__psid=psid)
            routed.members.add(agent)  # who may see the page
            tickets.ticket_claim(ticket_id=ticket.pk, user=agent)
            now = timezone.now()  # a rating asked at the close (CSAT)
            Csat.objects.create(ticket=ticket, asked_at=now, expires_at=now, score=k % 5 + 1)
            personas.profile_update(agent, public_name=f"Agent {k}", picture_url="")
            Persona.objects.create(page=page, agent=agent, persona_id=f"9{k}", name=f"Agent {k}")
            other_page = factories.page(page_id=f"77{k:04d}", name=f"Page {k}")
            team = Team.objects.create(name=f"Team {k}")
            team.members.add(agent)
            # Issue 11: routing, office hours, holidays, presence.
            routing_row = TeamRouting.objects.create(team=team)
            OfficeHours.objects.create(
                routing=routing_row, weekday=0, opens=time(9), closes=time(17)
            )
            Holiday.objects.create(routing=routing_row, date=date(2026, 12, k % 28 + 1))
            team.pages.add(other_page)
            PageRouting.objects.create(page=other_page, team=team)
            presence.socket_open(user_id=agent.pk, channel_name=f"admin-test-{k}")
            presence.presence_set(user=agent, status="away")
            Group.objects.create(name=f"Group {k}")
            login_failure_record(username=f"user{k}", address=f"10.0.0.{k}")
            tag = Tag.objects.create(name=f"tag {k}")
            TicketTag.objects.create(ticket=ticket, tag=tag, applied_by=agent)
            notes.note_add(ticket_id=ticket.pk, user=agent, text=f"note {k} @{agent.username}")
            replies.saved_reply_create(user=agent, title=f"Reply {k}", shortcut=f"r{k}", body="x")
            settings.MEDIA_ROOT = str(tmp_path / "media")
            attachments.ticket_reply_files(
                ticket_id=ticket.pk,
                user=agent,
                files=[SimpleUploadedFile("a.pdf", b"%PDF-1.4", content_type="application/pdf")],
                text="Here",
            )
            # Meta's data deletion callback (issue 13, point 6).
            DataDeletionRequest.objects.create(
                confirmation_code=f"{k:024d}",
                user_digest=f"{k:064d}",
                status=DataDeletionRequest.Status.DONE,
            )

    return more


def _queries(admin_client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200, url
    return len(queries)


def test_every_list_costs_the_same_queries_for_more_rows(admin_client, grow):
    lists = sorted(
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for model in admin.site._registry
    )
    grow(2)
    few = {url: _queries(admin_client, url) for url in lists}
    row_counts = {model._meta.label_lower: model.objects.count() for model in admin.site._registry}

    grow(3)
    many = {url: _queries(admin_client, url) for url in lists}

    not_grown = [
        model._meta.label_lower
        for model in admin.site._registry
        if model.objects.count() <= row_counts[model._meta.label_lower]
    ]
    assert not_grown == []  # every list shows more rows the second time
    assert many == few
