"""Saved replies through the agent API: who sees and changes which (personal, a team's,
everyone's), validation in words with nothing changed, placeholders filled for a ticket
or left visible, and a reply that still holds one is never sent."""

from __future__ import annotations

import json

import pytest

from agents.models import Message, SavedReply, Team
from tests.support import factories
from webhooks.models import GraphCall

pytestmark = pytest.mark.django_db

URL = "/api/v1/saved-replies"


def _put(client, url, data):
    return client.put(url, json.dumps(data), content_type="application/json")


def _post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


@pytest.fixture
def teams(agent, agent2):
    """ana is on billing, bo on shipping."""
    billing = Team.objects.create(name="billing")
    billing.members.add(agent)
    shipping = Team.objects.create(name="shipping")
    shipping.members.add(agent2)
    return billing, shipping


def _reply(**fields):
    fields.setdefault("title", "Refund policy")
    fields.setdefault("shortcut", "refund")
    fields.setdefault("body", "Hi {first_name}, refunds take 5 days. {agent_name}")
    return SavedReply.objects.create(**fields)


def test_an_agent_sees_their_own_their_teams_and_everyones(api, agent, agent2, teams):
    billing, shipping = teams
    mine = _reply(owner=agent, shortcut="mine")
    ours = _reply(team=billing, shortcut="ours")
    everyone = _reply(shortcut="hello", title="Greeting")
    _reply(owner=agent2, shortcut="bos")  # bo's own
    _reply(team=shipping, shortcut="ship")  # another team's

    rows = api.get(URL).json()

    assert [(r["id"], r["scope"], r["can_edit"]) for r in rows] == [
        (everyone.pk, "everyone", False),
        (mine.pk, "personal", True),
        (ours.pk, "team", True),
    ]
    assert rows[2]["team"] == {"id": billing.pk, "name": "billing"}
    assert rows[0]["rendered"] is None


def test_the_list_filters_by_words_in_title_shortcut_or_text(api, agent):
    refund = _reply(owner=agent)
    ship = _reply(owner=agent, title="Shipping times", shortcut="ship", body="It ships in 2 days.")
    wait = _reply(owner=agent, title="Please wait", shortcut="wait", body="Checking the REFUND.")

    # The shortcut that starts so first, then the text that holds it.
    assert [r["id"] for r in api.get(URL, {"q": "/ref"}).json()] == [refund.pk, wait.pk]
    assert [r["id"] for r in api.get(URL, {"q": "wait"}).json()] == [wait.pk]
    assert [r["id"] for r in api.get(URL, {"q": "SHIPS IN"}).json()] == [ship.pk]
    assert api.get(URL, {"q": "nothing like it"}).json() == []


def test_another_teams_reply_is_invisible_and_cannot_be_changed(api, agent2, teams, page):
    _, shipping = teams
    ticket = factories.ticket(page=page)  # one ana may see
    theirs = _reply(team=shipping, shortcut="ship", body="unchanged")
    personal = _reply(owner=agent2, shortcut="bo", body="unchanged")

    for reply in (theirs, personal):
        changed = _put(api, f"{URL}/{reply.pk}", {"title": "x", "shortcut": "x", "body": "x"})
        deleted = api.delete(f"{URL}/{reply.pk}")
        rendered = api.get(f"/api/v1/tickets/{ticket.pk}/saved-replies/{reply.pk}/render")
        assert (changed.status_code, deleted.status_code) == (404, 404)
        assert changed.json() == {"detail": f"Saved reply {reply.pk} does not exist."}
        assert (rendered.status_code, rendered.json()) == (
            404,
            {"detail": f"Saved reply {reply.pk} does not exist."},
        )
    assert list(SavedReply.objects.values_list("title", "shortcut", "body").order_by("pk")) == [
        ("Refund policy", "ship", "unchanged"),
        ("Refund policy", "bo", "unchanged"),
    ]


def test_everyones_replies_are_changed_by_admins_only(api, agent):
    everyone = _reply(shortcut="hello")
    refused = _put(api, f"{URL}/{everyone.pk}", {"title": "x", "shortcut": "x", "body": "x"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only an admin changes the replies every agent sees."
    assert api.delete(f"{URL}/{everyone.pk}").status_code == 403
    assert SavedReply.objects.get().title == "Refund policy"

    agent.is_superuser = True
    agent.save()
    changed = _put(api, f"{URL}/{everyone.pk}", {"title": "Hi", "shortcut": "hi", "body": "Hi!"})
    assert changed.status_code == 200
    assert (changed.json()["title"], changed.json()["can_edit"]) == ("Hi", True)


def test_create_change_and_delete_ones_own_and_a_teams(api, api2, agent, agent2, teams):
    billing, _ = teams
    created = _post(api, URL, {"title": " Refund  policy ", "shortcut": "/Refund", "body": "B"})
    assert created.status_code == 201
    reply = SavedReply.objects.get()
    assert (reply.title, reply.shortcut, reply.owner, reply.team, reply.created_by) == (
        "Refund policy",
        "refund",
        agent,
        None,
        agent,
    )
    team = _post(api, URL, {"title": "T", "shortcut": "team", "body": "B", "team_id": billing.pk})
    assert (team.status_code, team.json()["scope"]) == (201, "team")

    # bo joins billing: he may change the team's reply; not ana's own.
    billing.members.add(agent2)
    team_id = team.json()["id"]
    changed = _put(api2, f"{URL}/{team_id}", {"title": "T2", "shortcut": "team", "body": "B2"})
    assert (changed.status_code, changed.json()["body"]) == (200, "B2")
    assert (
        _put(api2, f"{URL}/{reply.pk}", {"title": "x", "shortcut": "x", "body": "x"}).status_code
        == 404
    )

    assert api.delete(f"{URL}/{reply.pk}").status_code == 204
    assert list(SavedReply.objects.values_list("pk", flat=True)) == [team_id]


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (
            {"title": " ", "shortcut": "ok", "body": "x"},
            "The title is empty.",
        ),
        (
            {"title": "t", "shortcut": "two words", "body": "x"},
            "The shortcut is one word: letters, digits, - and _ (no spaces), starting with "
            "a letter or a digit.",
        ),
        (
            {"title": "t", "shortcut": "ok", "body": "x" * 2001},
            "The text is 2001 characters long: Messenger takes at most 2000.",
        ),
        (
            {"title": "", "shortcut": "", "body": ""},
            "The title is empty. The shortcut is empty. The text is empty.",
        ),
    ],
)
def test_bad_input_is_refused_in_words_and_changes_nothing(api, agent, data, detail):
    existing = _reply(owner=agent)
    created = _post(api, URL, data)
    changed = _put(api, f"{URL}/{existing.pk}", data)
    assert (created.status_code, created.json()) == (400, {"detail": detail})
    assert (changed.status_code, changed.json()) == (400, {"detail": detail})
    assert list(SavedReply.objects.values_list("title", "shortcut", "body")) == [
        ("Refund policy", "refund", existing.body)
    ]


def test_a_shortcut_is_unique_within_its_scope_only(api, agent, agent2, teams):
    billing, _ = teams
    _reply(owner=agent)
    _reply(owner=agent2)  # bo's /refund does not stand in ana's way
    duplicate = _post(api, URL, {"title": "Again", "shortcut": "REFUND", "body": "x"})
    assert duplicate.status_code == 400
    assert duplicate.json() == {
        "detail": "The shortcut /refund is taken in your replies: choose another."
    }
    # The same shortcut for the team is another scope.
    team = _post(api, URL, {"title": "T", "shortcut": "refund", "body": "x", "team_id": billing.pk})
    assert team.status_code == 201
    again = _post(
        api, URL, {"title": "T", "shortcut": "refund", "body": "y", "team_id": billing.pk}
    )
    assert again.json() == {
        "detail": "The shortcut /refund is taken in the team billing's replies: choose another."
    }
    assert SavedReply.objects.count() == 3


def test_a_team_reply_only_for_a_team_one_is_on(api, teams):
    _, shipping = teams
    refused = _post(api, URL, {"title": "T", "shortcut": "t", "body": "x", "team_id": shipping.pk})
    assert refused.status_code == 400
    assert refused.json() == {
        "detail": f"You are not on team {shipping.pk}: a team's reply is for its members."
    }
    assert not SavedReply.objects.exists()
    assert [t["name"] for t in api.get(f"{URL}/teams").json()] == ["billing"]


# --- placeholders -----------------------------------------------------------------------


def test_placeholders_are_filled_for_the_ticket(api, agent, page):
    ticket = factories.ticket(page=page)  # Ada Lovelace, on Acme
    agent.first_name = "Ana"
    agent.save()
    reply = _reply(owner=agent, body="Hi {first_name}, {agent_name} from {page_name} here.")

    rendered = api.get(f"/api/v1/tickets/{ticket.pk}/saved-replies/{reply.pk}/render").json()
    listed = api.get(URL, {"ticket_id": ticket.pk}).json()

    expected = {"text": "Hi Ada, Ana from Acme here.", "unfilled": []}
    assert rendered == expected
    assert listed[0]["rendered"] == expected


def test_a_placeholder_without_a_value_stays_visible(api, agent, page):
    conversation = factories.conversation(page=page, control_state="agent")
    conversation.contact.first_name = ""
    conversation.contact.save()
    ticket = factories.ticket(conversation=conversation)
    reply = _reply(owner=agent, body="Hi {first_name}! {first_name}, I'm {agent_name}.")

    rendered = api.get(f"/api/v1/tickets/{ticket.pk}/saved-replies/{reply.pk}/render").json()

    # The persona name: the agent's first name, else their username.
    assert rendered == {
        "text": "Hi {first_name}! {first_name}, I'm ana.",
        "unfilled": ["{first_name}"],
    }


def test_a_ticket_not_yours_to_see_renders_nothing(api, agent, page):
    ticket = factories.ticket(page=page)
    team = Team.objects.create(name="other")
    team.pages.add(page)  # a team that ana is not on handles the page
    reply = _reply(owner=agent)
    assert (
        api.get(f"/api/v1/tickets/{ticket.pk}/saved-replies/{reply.pk}/render").status_code == 404
    )
    assert api.get(URL, {"ticket_id": ticket.pk}).status_code == 404


def test_a_reply_with_an_unfilled_placeholder_is_refused_and_never_sent(
    api, post, page, fake_graph
):
    ticket = factories.ticket(page=page)
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "Hi {first_name}, sure."})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The message still contains {first_name}: replace it with the words the "
        "customer should read before sending."
    }
    assert not Message.objects.exists()
    assert not GraphCall.objects.exists()
    assert fake_graph.calls == []
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("waiting", None)  # not claimed either


def test_the_closing_message_is_held_to_the_same_rule(api, post, agent, page, fake_graph):
    ticket = factories.ticket(page=page, status="open", assignee=agent)
    response = post(
        api,
        f"/api/v1/tickets/{ticket.pk}/close",
        {"closing_message": "Bye {first_name} and {page_name}"},
    )
    assert response.status_code == 400
    assert "{first_name}, {page_name}: replace them" in response.json()["detail"]
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert fake_graph.calls == []
