"""Saved replies and notes in Django admin: an admin manages every saved reply (the
inbox's rules hold there too); notes are shown, never changed."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from agents.models import Note, SavedReply, Team
from tests.support import factories

pytestmark = pytest.mark.django_db

ADD = "/admin/agents/savedreply/add/"


@pytest.fixture
def root(client):
    user = get_user_model().objects.create_superuser("root", password="pw-12345678")
    client.force_login(user)
    return user


def test_an_admin_adds_a_reply_for_everyone(client, root):
    response = client.post(
        ADD, {"title": " Opening  hours ", "shortcut": "/Hours", "body": "9 to 5, {first_name}."}
    )
    assert response.status_code == 302, response.content
    reply = SavedReply.objects.get()
    assert (reply.title, reply.shortcut, reply.owner, reply.team, reply.created_by) == (
        "Opening hours",
        "hours",
        None,
        None,
        root,
    )
    listing = client.get("/admin/agents/savedreply/").content.decode()
    assert "every agent" in listing


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"title": "t", "shortcut": "two words", "body": "x"}, "The shortcut is one word"),
        ({"title": "t", "shortcut": "ok", "body": "x" * 2001}, "Messenger takes at most 2000"),
        (
            {"title": "t", "shortcut": "ok", "body": "x", "owner": "OWNER", "team": "TEAM"},
            "not both",
        ),
        ({"title": "t", "shortcut": "taken", "body": "x"}, "Every agent&#x27;s replies have this"),
    ],
)
def test_bad_replies_are_refused_in_words(client, root, data, error):
    team = Team.objects.create(name="billing")
    SavedReply.objects.create(title="Taken", shortcut="taken", body="x")
    data = {k: {"OWNER": root.pk, "TEAM": team.pk}.get(v, v) for k, v in data.items()}
    response = client.post(ADD, data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert list(SavedReply.objects.values_list("shortcut", flat=True)) == ["taken"]


def test_notes_are_shown_and_never_changed(client, root, page, fake_graph):
    ticket = factories.ticket(page=page)
    note = Note.objects.create(
        ticket=ticket, conversation=ticket.conversation, author=root, text="VIP", timestamp=1
    )
    assert "VIP" in client.get("/admin/agents/note/").content.decode()
    assert client.get(f"/admin/agents/note/{note.pk}/change/").status_code == 200
    assert client.post(f"/admin/agents/note/{note.pk}/change/", {"text": "x"}).status_code == 403
    assert client.get("/admin/agents/note/add/").status_code == 403
    note.refresh_from_db()
    assert note.text == "VIP"
