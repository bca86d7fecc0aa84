"""Private notes through the agent API: stored apart from messages and never sent to
Messenger; in the conversation's order by their time; `@mentions` notify the agent named
(on their own socket group, in their mentions) and nobody else; a mention of someone
who may not see the ticket refuses the note without saying whether they exist."""

from __future__ import annotations

from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from agents.consumers import InboxConsumer
from agents.models import Message, Note, NoteMention, Team
from agents.services import notes
from tests.support import factories
from webhooks.models import GraphCall

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(agent, agent2, page):
    """ana (Ana Lima) and bo (Bo Jensen) on billing, which handles the page; cy on
    shipping, which does not."""
    for user, first, last in ((agent, "Ana", "Lima"), (agent2, "Bo", "Jensen")):
        user.first_name, user.last_name = first, last
        user.save()
    cy = factories.agent("cy", first_name="Cy", last_name="Shipping")
    billing = Team.objects.create(name="billing")
    billing.pages.add(page)
    billing.members.add(agent, agent2)
    shipping = Team.objects.create(name="shipping")
    shipping.members.add(cy)
    return cy


def test_a_note_is_stored_apart_and_never_sent(api, post, page, fake_graph, agent):
    ticket = factories.ticket(page=page, status="open", assignee=agent)
    with mock.patch("agents.realtime.broadcast") as broadcast:
        response = post(api, f"/api/v1/tickets/{ticket.pk}/notes", {"text": "  VIP, be nice  "})
    assert response.status_code == 201
    note = Note.objects.get()
    body = response.json()
    assert (body["id"], body["ticket_id"], body["text"], body["author"]["username"]) == (
        note.pk,
        ticket.pk,
        "VIP, be nice",
        "ana",
    )
    assert body["mentions"] == []
    # Nothing for Messenger: no message, no Graph call, nothing queued.
    assert not Message.objects.exists()
    assert not GraphCall.objects.exists()
    assert fake_graph.calls == []
    assert [c.args[0] for c in broadcast.call_args_list] == ["note.created"]
    assert broadcast.call_args.kwargs == {
        "conversation_id": ticket.conversation_id,
        "ticket_id": ticket.pk,
        "note_id": note.pk,
    }


def test_notes_come_in_time_order_on_a_closed_ticket_too(api, post, page, agent):
    ticket = factories.ticket(page=page, status="closed")
    first = post(api, f"/api/v1/tickets/{ticket.pk}/notes", {"text": "first"}).json()
    factories.message(ticket=ticket, text="a customer message between them")
    second = post(api, f"/api/v1/tickets/{ticket.pk}/notes", {"text": "second"}).json()
    listed = api.get(f"/api/v1/tickets/{ticket.pk}/notes").json()
    assert [n["text"] for n in listed] == ["first", "second"]
    message = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()[0]
    # The messages feed stays messages; the timestamps place the notes around them.
    assert first["timestamp"] <= message["timestamp"] <= second["timestamp"]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("   ", "The note is empty."),
        ("x" * 5001, "The note is longer than 5000 characters."),
    ],
)
def test_a_bad_note_is_refused(api, post, page, text, detail):
    ticket = factories.ticket(page=page)
    response = post(api, f"/api/v1/tickets/{ticket.pk}/notes", {"text": text})
    assert (response.status_code, response.json()) == (400, {"detail": detail})
    assert not Note.objects.exists()


def test_a_note_on_a_ticket_not_yours_to_see_is_404(api, post, page):
    ticket = factories.ticket(page=page)
    Team.objects.create(name="other").pages.add(page)
    assert post(api, f"/api/v1/tickets/{ticket.pk}/notes", {"text": "hi"}).status_code == 404
    assert api.get(f"/api/v1/tickets/{ticket.pk}/notes").status_code == 404
    assert not Note.objects.exists()


def test_a_mention_notifies_that_agent_only(api, api2, post, page, agent, agent2, staff):
    ticket = factories.ticket(page=page, status="open", assignee=agent)
    with mock.patch("agents.realtime.user_event") as user_event:
        response = post(
            api,
            f"/api/v1/tickets/{ticket.pk}/notes",
            {"text": "@Bo Jensen can you check the refund? cc @ana"},
        )
    assert response.status_code == 201
    note = Note.objects.get()
    assert [m["username"] for m in response.json()["mentions"]] == ["ana", "bo"]
    # bo is told, on his own group; ana named herself: nobody is told.
    assert [c.args for c in user_event.call_args_list] == [(agent2.pk, "mention.created")]
    assert user_event.call_args.kwargs == {"ticket_id": ticket.pk, "note_id": note.pk}

    bo = api2.get("/api/v1/mentions").json()
    assert bo["unread"] == 1
    [mention] = bo["mentions"]
    assert (mention["ticket_id"], mention["contact_name"], mention["author"]["name"]) == (
        ticket.pk,
        "Ada Lovelace",
        "Ana Lima",
    )
    assert (mention["text"], mention["read"]) == (note.text, False)
    # ana named herself: shown among her mentions, read already.
    ana = api.get("/api/v1/mentions").json()
    assert (ana["unread"], [m["read"] for m in ana["mentions"]]) == (0, [True])

    # bo opens the ticket: read.
    read = post(api2, f"/api/v1/tickets/{ticket.pk}/mentions/read")
    assert read.json() == {"read": 1}
    assert api2.get("/api/v1/mentions?unread=true").json() == {"unread": 0, "mentions": []}
    assert api2.get("/api/v1/mentions").json()["mentions"][0]["read"] is True


def test_mentioning_someone_who_cannot_see_the_ticket_refuses_the_note(
    api, post, page, agent, staff
):
    ticket = factories.ticket(page=page, status="open", assignee=agent)
    with mock.patch("agents.realtime.user_event") as user_event:
        cy = post(api, f"/api/v1/tickets/{ticket.pk}/notes", {"text": "ask @cy about it"})
        nobody = post(api, f"/api/v1/tickets/{ticket.pk}/notes", {"text": "ask @zed about it"})
    # The same words whether the agent exists elsewhere or not at all: nothing leaks.
    assert (cy.status_code, cy.json()) == (
        400,
        {
            "detail": "@cy names no agent who can see this ticket. Mention an agent who "
            "works on its page, or write the name without @."
        },
    )
    assert nobody.json()["detail"] == cy.json()["detail"].replace("@cy", "@zed")
    assert not Note.objects.exists()
    assert not NoteMention.objects.exists()
    user_event.assert_not_called()


def test_an_email_address_is_no_mention(api, post, page, agent, staff):
    ticket = factories.ticket(page=page)
    response = post(api, f"/api/v1/tickets/{ticket.pk}/notes", {"text": "wrote to ada@bo.com"})
    assert (response.status_code, response.json()["mentions"]) == (201, [])


def test_mentions_find_by_username_or_full_name():
    ana = factories.agent("ana", first_name="Ana", last_name="Lima")
    bo = factories.agent("bo.j", first_name="Bo", last_name="Jensen")
    cy = factories.agent("cy", first_name="Cy", last_name="")
    agents = [ana, bo, cy]
    assert notes.mentions_find("@bo.j, and @ana.", agents) == ([bo, ana], [])
    assert notes.mentions_find("(@ANA LIMA) @Cy @bo", agents) == ([ana, cy], ["@bo"])
    assert notes.mentions_find("@Bo Jensen twice @bo.j", agents) == ([bo], [])
    assert notes.mentions_find("no one: a@b.c @@", agents) == ([], [])


@pytest.mark.django_db(transaction=True)
def test_the_mention_reaches_the_mentioned_agents_sockets_only(agent, agent2, page):
    async_to_sync(_mention_over_sockets)(agent, agent2, page)


async def _mention_over_sockets(agent, agent2, page):
    ticket = await database_sync_to_async(factories.ticket)(page=page)
    sockets = {}
    for user in (agent, agent2):
        communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
        communicator.scope["user"] = user
        assert (await communicator.connect())[0]
        sockets[user.username] = communicator
    note = await database_sync_to_async(notes.note_add)(
        ticket_id=ticket.pk, user=agent, text="@bo over to you"
    )
    common = {"event": "note.created", "conversation_id": ticket.conversation_id}
    common |= {"ticket_id": ticket.pk, "note_id": note.pk}
    # Both see the note (their page); only bo hears he is mentioned.
    assert await sockets["ana"].receive_json_from(timeout=5) == common
    received = [await sockets["bo"].receive_json_from(timeout=5) for _ in range(2)]
    mention = {"event": "mention.created", "ticket_id": ticket.pk, "note_id": note.pk}
    assert sorted(received, key=str) == sorted([common, mention], key=str)
    assert await sockets["ana"].receive_nothing(timeout=0.5)
    for communicator in sockets.values():
        await communicator.disconnect()
