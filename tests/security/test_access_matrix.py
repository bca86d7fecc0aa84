"""Who may use what: every operation of the API, read from its own OpenAPI document (a
new operation is in the matrix without a change here), and the WebSocket.

- nobody (no credentials): 401 everywhere; the socket is closed with 4401;
- a deactivated agent's token, or a session after logout: 401 everywhere; their open
  sockets are closed (4401) and a new one is refused;
- an agent of another team: 404 for every operation on a ticket or message of a page
  only a team they are not in handles, the lists do not mention it, nothing changes,
  and no live event from that page reaches their socket;
- a member of that team, with the same requests: neither 401, 403 nor 404 (the ids
  are real).

Rows come from the factories; requests carry valid bodies built from the document, so
that an answer is about access, not about input.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client

from agents.models import (
    Attachment,
    Message,
    Note,
    NoteMention,
    SavedReply,
    Tag,
    Team,
    Ticket,
    TicketEvent,
    TicketTag,
)
from tests.support import factories, payloads
from webhooks.models import GraphCall

HIDDEN_PAGE_ID = "1000000000000091"
HIDDEN_PSID = "3000000000000991"
# Strings that only the hidden page's rows hold: no answer to an outsider may contain them.
HIDDEN_MARKERS = ("Hidden Billing Page", HIDDEN_PSID, "hidden-billing-text", "hidden-handover")
CLOSED = {"type": "websocket.close", "code": 4401}


@pytest.fixture
def world(db, page, fake_graph, settings, tmp_path) -> dict[str, Any]:
    """Two teams: billing (member `insider`) alone handles the hidden page; sales
    (member `outsider`) handles the page Acme. A ticket on each, with a customer
    message and a failed reply."""
    # The bad-token limit has its own test; the matrix sends one bad token per operation.
    settings.API_TOKEN_FAILURES_PER_ADDRESS = 1000
    insider, outsider = factories.agent("insider"), factories.agent("outsider")
    hidden_page = factories.page(
        page_id=HIDDEN_PAGE_ID, name="Hidden Billing Page", access_token="hidden-token"
    )
    billing, sales = Team.objects.create(name="billing"), Team.objects.create(name="sales")
    billing.pages.add(hidden_page)
    billing.members.add(insider)
    sales.pages.add(page)
    sales.members.add(outsider)
    hidden = factories.ticket(
        page=hidden_page, psid=HIDDEN_PSID, handover_metadata="hidden-handover"
    )
    factories.message(ticket=hidden, text="hidden-billing-text")
    failed = factories.message(
        ticket=hidden,
        text="hidden-billing-text reply",
        author_kind=Message.Author.AGENT,
        status=Message.Status.FAILED,
        error="the Graph API could not be reached",
    )
    visible = factories.ticket(page=page)
    factories.message(ticket=visible, text="visible text")
    tag = Tag.objects.create(name="access matrix")  # tags are everyone's; tickets are not
    # A file an agent sent on the hidden page (issue 11, point 7).
    settings.MEDIA_ROOT = str(tmp_path / "media")
    sent_file = factories.message(ticket=hidden, author_kind=Message.Author.AGENT, text="")
    hidden_file = Attachment(
        message=sent_file, name="hidden-billing-text.pdf", content_type="application/pdf", size=8
    )
    hidden_file.file.save("hidden.pdf", ContentFile(b"%PDF-1.4"), save=False)
    hidden_file.kind = Attachment.Kind.FILE
    hidden_file.save()
    # Billing's saved reply, and a note on the hidden ticket that mentions its member.
    reply = SavedReply.objects.create(
        team=billing, title="hidden-billing-text reply", shortcut="hidden", body="x"
    )
    note = Note.objects.create(
        ticket=hidden,
        conversation=hidden.conversation,
        author=insider,
        text="hidden-billing-text note @insider",
        timestamp=1,
    )
    NoteMention.objects.create(note=note, agent=insider)
    return {
        "insider": insider,
        "outsider": outsider,
        "hidden": hidden,
        # The row each path parameter names: the hidden page's.
        "path": {
            "ticket_id": hidden.pk,
            "message_id": failed.pk,
            "tag_id": tag.pk,
            "attachment_id": hidden_file.pk,
            "reply_id": reply.pk,
        },
    }


# --- requests built from the OpenAPI document -------------------------------------------


def _operations() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    document = Client().get("/api/v1/openapi.json").json()
    return [
        (method.upper(), path, operation, document)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = document["components"]["schemas"][name]
    return schema


def _example(schema: dict[str, Any], document: dict[str, Any], agent_id: int) -> Any:
    """A value the schema accepts: defaults first, required properties only."""
    schema = _resolve(schema, document)
    if "default" in schema:
        return schema["default"]
    if "examples" in schema:  # a value of a given shape (a saved reply's one-word shortcut)
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            return _example(schema[combined][0], document, agent_id)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: _example(properties[name], document, agent_id)
            for name in schema.get("required", [])
        }
    if kind == "integer":
        # The only integers in bodies name agents (a transfer's target): the caller's
        # own id, a valid target, so that only access decides.
        return agent_id
    return {"string": "access matrix", "boolean": False, "array": [], "number": 1}[kind]


def _request(
    client: Client, method: str, path: str, operation: dict, document: dict, world: dict
) -> Any:
    ids, agent_id = world["path"], world["outsider"].pk
    url = path
    query = {}
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "path":
            assert name in ids, f"no row for the path parameter {name!r}: add one to `world`"
            url = url.replace("{" + name + "}", str(ids[name]))
        elif parameter.get("required"):
            query[name] = _example(parameter["schema"], document, agent_id)
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        data = json.dumps(_example(body["schema"], document, agent_id))
        return client.generic(
            method, url, data, content_type="application/json", QUERY_STRING=_qs(query)
        )
    return client.generic(method, url, QUERY_STRING=_qs(query))


def _qs(query: dict[str, Any]) -> str:
    return "&".join(f"{k}={v}" for k, v in query.items())


def _statuses(client: Client, world: dict) -> dict[str, int]:
    return {
        f"{method} {path}": _request(client, method, path, operation, document, world).status_code
        for method, path, operation, document in _operations()
    }


def _bearer(agent) -> Client:
    return Client(headers={"Authorization": f"Bearer {agent.api_token}"})


def test_the_matrix_covers_every_operation_of_the_document(world):
    # Guards the matrix itself: the document is read, and it lists what the README does.
    names = {f"{method} {path}" for method, path, _, _ in _operations()}
    assert {
        "GET /api/v1/tickets",
        "GET /api/v1/queues",
        "GET /api/v1/tickets/{ticket_id}",
        "GET /api/v1/tickets/{ticket_id}/messages",
        "POST /api/v1/tickets/{ticket_id}/claim",
        "POST /api/v1/tickets/{ticket_id}/reply",
        "POST /api/v1/tickets/{ticket_id}/close",
        "POST /api/v1/tickets/{ticket_id}/transfer",
        "POST /api/v1/tickets/{ticket_id}/request-control",
        "POST /api/v1/tickets/{ticket_id}/typing",
        "POST /api/v1/messages/{message_id}/retry",
        "GET /api/v1/agents",
    } <= names


# --- nobody, a deactivated agent, a logged-out session --------------------------------


def _unchanged(world: dict) -> tuple:
    hidden = Ticket.objects.get(pk=world["hidden"].pk)
    return (
        (hidden.status, hidden.assignee_id, hidden.closed_at),
        Message.objects.count(),
        TicketEvent.objects.count(),
        GraphCall.objects.count(),
        TicketTag.objects.count(),
    )


def test_without_credentials_every_operation_is_401(world):
    statuses = _statuses(Client(), world)
    assert statuses == dict.fromkeys(statuses, 401)


def test_a_deactivated_agents_token_is_401_everywhere(world, django_capture_on_commit_callbacks):
    insider = world["insider"]
    assert _request_ok(_bearer(insider))  # the token worked
    insider.is_active = False
    insider.save()
    before = _unchanged(world)

    with django_capture_on_commit_callbacks() as callbacks:
        statuses = _statuses(_bearer(insider), world)

    assert statuses == dict.fromkeys(statuses, 401)
    assert (_unchanged(world), callbacks) == (before, [])


def test_a_session_after_logout_is_401_everywhere(world, django_capture_on_commit_callbacks):
    browser = _logged_in(world["insider"])
    session_key = browser.session.session_key
    assert _request_ok(browser)
    assert browser.post("/logout/").status_code == 302
    # The old cookie, sent again (the browser itself forgets it at logout).
    stale = Client()
    stale.cookies["sessionid"] = session_key
    before = _unchanged(world)

    with django_capture_on_commit_callbacks() as callbacks:
        statuses = _statuses(stale, world)

    assert statuses == dict.fromkeys(statuses, 401)
    assert (_unchanged(world), callbacks) == (before, [])


def _request_ok(client: Client) -> bool:
    return client.get("/api/v1/queues").status_code == 200


# --- another team's agent, and the team's own ------------------------------------------


def test_an_agent_of_another_team_gets_404_and_learns_nothing(
    world, django_capture_on_commit_callbacks
):
    outsider = _bearer(world["outsider"])
    before = _unchanged(world)
    answers = {}

    with django_capture_on_commit_callbacks() as callbacks:
        for method, path, operation, document in _operations():
            answers[(method, path)] = _request(outsider, method, path, operation, document, world)

    by_row = {k: r.status_code for k, r in answers.items() if "{" in k[1]}
    assert by_row == dict.fromkeys(by_row, 404)
    # Operations on no particular row (lists, counts, creating one's own saved reply)
    # answer, without the hidden page.
    lists = {k: r for k, r in answers.items() if "{" not in k[1]}
    assert {k: r.status_code // 100 for k, r in lists.items()} == dict.fromkeys(lists, 2)
    leaks = {k: [m for m in HIDDEN_MARKERS if m in r.content.decode()] for k, r in answers.items()}
    assert leaks == {k: [] for k in answers}
    assert _request_ok(outsider)
    assert outsider.get("/api/v1/queues").json()["waiting"] == 1  # Acme's ticket only
    # Nothing changed, and nothing was queued or broadcast.
    assert (_unchanged(world), callbacks) == (before, [])


def test_a_member_of_the_team_reaches_the_same_rows(world):
    statuses = _statuses(_bearer(world["insider"]), world)
    refused = {k: s for k, s in statuses.items() if s in (401, 403, 404) or s >= 500}
    assert refused == {}
    assert set(statuses) == {f"{m} {p}" for m, p, _, _ in _operations()}


# --- the WebSocket --------------------------------------------------------------------


def _socket(session_key: str | None = None) -> WebsocketCommunicator:
    from helpdesk.asgi import application  # noqa: PLC0415 -- builds the whole ASGI app

    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if session_key is not None:
        headers.append((b"cookie", f"sessionid={session_key}".encode()))
    return WebsocketCommunicator(application, "/ws/inbox/", headers=headers)


def _logged_in(agent) -> Client:
    browser = Client()
    browser.force_login(agent)
    return browser


async def _opened(session_key: str | None) -> WebsocketCommunicator:
    socket = _socket(session_key)
    connected, code = await socket.connect()
    assert (connected, code) == (True, None)
    return socket


async def _refused(session_key: str | None) -> None:
    socket = _socket(session_key)
    assert await socket.connect() == (False, 4401)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
def test_sockets_without_a_valid_session_are_closed_4401(world):
    async_to_sync(_refused)(None)
    async_to_sync(_refused)("no-such-session")


@pytest.mark.django_db(transaction=True)
def test_a_socket_hears_nothing_of_another_teams_page(world, clock):
    insider, outsider = _logged_in(world["insider"]), _logged_in(world["outsider"])
    async_to_sync(_other_team)(insider, outsider, world, clock)


def _hidden_page_webhook(text: str, ts: int) -> None:
    """A customer writes on the hidden page (committed: its events are sent)."""
    event = payloads.user_message(text, ts=ts, psid=HIDDEN_PSID, page_id=HIDDEN_PAGE_ID)
    body = payloads.body_bytes(payloads.delivery(event, page_id=HIDDEN_PAGE_ID))
    response = Client().post(
        "/webhooks/messenger/",
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": payloads.signature(body)},
    )
    assert response.status_code == 200


async def _all_heard(socket: WebsocketCommunicator) -> list[dict]:
    heard = []
    while not await socket.receive_nothing(timeout=0.5):
        heard.append(await socket.receive_json_from())
    return heard


async def _other_team(insider, outsider, world, clock):
    theirs = await _opened(insider.session.session_key)
    mine = await _opened(outsider.session.session_key)
    hidden = world["hidden"]

    # A customer writes on the hidden page, and an agent of its team claims the ticket.
    await database_sync_to_async(_hidden_page_webhook)("hidden-billing-text again", clock())
    claim = await database_sync_to_async(insider.post)(f"/api/v1/tickets/{hidden.pk}/claim")
    assert claim.status_code == 200

    heard = await _all_heard(theirs)
    assert {(e["event"], e["conversation_id"]) for e in heard} == {
        ("message.created", hidden.conversation_id),
        ("ticket.updated", hidden.conversation_id),
    }
    assert await _all_heard(mine) == []
    await theirs.disconnect()
    await mine.disconnect()


@pytest.mark.django_db(transaction=True)
def test_deactivation_and_logout_close_sockets_and_refuse_new_ones(world):
    root = get_user_model().objects.create_superuser("root", "root@example.org", "pw-12345678")
    admin = _logged_in(root)
    deactivated, leaving = _logged_in(world["insider"]), _logged_in(world["outsider"])
    async_to_sync(_closing)(admin, world, deactivated, leaving)


async def _closing(admin, world, deactivated, leaving):
    insider = world["insider"]
    gone, left = deactivated.session.session_key, leaving.session.session_key
    first, second = await _opened(gone), await _opened(left)

    response = await database_sync_to_async(admin.post)(
        f"/admin/auth/user/{insider.pk}/change/",
        {
            "username": insider.username,
            "is_staff": "on",
            "date_joined_0": "2025-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2025-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302
    assert await first.receive_output(timeout=2) == CLOSED
    await _refused(gone)

    response = await database_sync_to_async(leaving.post)("/logout/")
    assert response.status_code == 302
    assert await second.receive_output(timeout=2) == CLOSED
    await _refused(left)
