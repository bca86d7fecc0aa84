"""No secret in any log record, and the Page token nowhere in plain text.

A handover story, start to end, with every logger at DEBUG: the page connected and an
agent created from the command line, Meta's verification, a login (and a failed one),
webhooks in, a socket opened with the session, API calls with the bearer token (and
with a wrong one, and with the right one under another scheme), replies out through
the fake Graph API, Graph failures whose messages quote the Page token back, a profile
fetch that fails the same way, a request with a bad signature, the close and the
hand-back, a logout.

Then no record (its message, its arguments, its exception and stack, its extra
fields) holds the Page access token, the app secret, the verify token, the API token,
a password or a session key; and no row of any table holds the Page token, the app
secret, the verify token, the API token or a password (the token is kept encrypted,
and Meta's quotes of it are replaced before they are stored).
"""

from __future__ import annotations

import io
import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db.models import BinaryField
from django.test import Client

from agents.models import Message, Ticket
from tests.support import payloads
from tests.support.fakegraph import Scripted, graph_error
from tests.support.stack import Clock
from webhooks.models import GraphCall, Page

PAGE_TOKEN = "EAAG-page-access-token-d41d8cd98f00b204"
PASSWORD = "correct-horse-battery-staple-42"
WRONG_PASSWORD = "wrong-horse-battery-staple-43"
URL = "/webhooks/messenger/"
# LogRecord's own attributes; anything else on a record came as `extra`.
STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@contextmanager
def every_record() -> Iterator[list[logging.LogRecord]]:
    """Every record any logger makes, at DEBUG: every existing logger (and the root,
    which new ones inherit from) is set to DEBUG and enabled, and those that do not
    propagate get the collecting handler too."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(logging.DEBUG)
    root = logging.getLogger()
    loggers = [root] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    disabled = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if logger is root or not logger.propagate:
            logger.addHandler(keep)
    try:
        yield records
    finally:
        for logger, level, was_disabled in saved:
            logger.setLevel(level)
            logger.disabled = was_disabled
            logger.removeHandler(keep)
        logging.disable(disabled)


def _everything_in(record: logging.LogRecord) -> str:
    parts = [repr(record.msg), repr(record.args), record.stack_info or ""]
    try:
        parts.append(record.getMessage())
    except (TypeError, ValueError) as exc:  # a bad format string is a bug of its own
        parts.append(f"unformattable: {exc}")
    if record.exc_info:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    parts += [repr(v) for k, v in vars(record).items() if k not in STANDARD]
    return "\n".join(parts)


def _stored_text() -> dict[str, str]:
    """Every value of every row of every model, as text, by model."""
    stored = {}
    for model in apps.get_models():
        values = []
        for row in model._default_manager.all():
            for field in model._meta.concrete_fields:
                value = getattr(row, field.attname)
                if isinstance(field, BinaryField) and value is not None:
                    value = bytes(value).decode("utf-8", "replace")
                values.append(str(value))
        stored[model._meta.label] = "\n".join(values)
    return stored


def _signed(client: Client, *events: dict[str, Any], channel: str = "messaging") -> None:
    body = payloads.body_bytes(payloads.delivery(*events, channel=channel))
    response = client.post(
        URL,
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": payloads.signature(body)},
    )
    assert response.status_code == 200


async def _socket_opens(session_key: str) -> None:
    from helpdesk.asgi import application  # noqa: PLC0415 -- builds the whole ASGI app

    socket = WebsocketCommunicator(
        application,
        "/ws/inbox/",
        headers=[
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"cookie", f"sessionid={session_key}".encode()),
        ],
    )
    connected, _ = await socket.connect()
    assert connected
    await socket.disconnect()


def _story(fake_graph) -> dict[str, str]:
    """The handover, start to end; returns the secrets it used, by name."""
    clock, out = Clock(), io.StringIO()
    anonymous = Client()
    call_command(
        "connect_page",
        "--page-id",
        payloads.PAGE_ID,
        "--access-token",
        PAGE_TOKEN,
        "--bot-app-id",
        payloads.BOT_APP_ID,
        "--name",
        "Acme",
        stdout=out,
    )
    call_command("create_agent", "ana", "--password", PASSWORD, stdout=out)
    api_token = out.getvalue().split("API token (shown once): ")[1].split()[0]
    assert PAGE_TOKEN not in out.getvalue()

    # Meta checks the endpoint; someone guesses.
    for token in (settings.MESSENGER_VERIFY_TOKEN, "a-guess"):
        anonymous.get(
            URL, {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1"}
        )

    # The agent logs in (after a typo) and opens the inbox and its socket.
    browser = Client()
    failed = browser.post("/login/", {"username": "ana", "password": WRONG_PASSWORD})
    assert failed.status_code == 200
    assert browser.post("/login/", {"username": "ana", "password": PASSWORD}).status_code == 302
    session_key = browser.cookies["sessionid"].value
    assert browser.get("/").status_code == 200
    async_to_sync(_socket_opens)(session_key)

    # The profile fetch fails, Meta quoting the token; the customer asks for a person.
    fake_graph.fail_next(
        f"/{payloads.PSID}",
        graph_error(100, message=f"Unsupported get request. Token {PAGE_TOKEN} is not a user"),
    )
    _signed(anonymous, payloads.user_message("hi", ts=clock()), channel="standby")
    _signed(anonymous, payloads.postback("Talk to a human", ts=clock()), channel="standby")
    _signed(anonymous, payloads.pass_control(ts=clock(), metadata="human please"))
    ticket = Ticket.objects.get()

    # The API, with the token; with a wrong one; with the right one under another scheme.
    api = Client(headers={"Authorization": f"Bearer {api_token}"})
    assert api.get("/api/v1/tickets").status_code == 200
    wrong = Client(headers={"Authorization": "Bearer hd_not-the-token"})
    assert wrong.get("/api/v1/tickets").status_code == 401
    scheme = Client(headers={"Authorization": f"Token {api_token}"})
    assert scheme.get("/api/v1/tickets").status_code == 401
    assert api.post(f"/api/v1/tickets/{ticket.pk}/claim").status_code == 200

    # Replies: Meta fails transiently, then for good, each time quoting the token.
    fake_graph.fail_next(
        "/me/messages",
        graph_error(2, message=f"Service unavailable for token {PAGE_TOKEN}", status=503),
    )
    reply = api.post(
        f"/api/v1/tickets/{ticket.pk}/reply", {"text": "On it"}, content_type="application/json"
    )
    assert reply.status_code == 201
    fake_graph.fail_next(
        "/me/messages",
        graph_error(190, message=f"Error validating access token: {PAGE_TOKEN} has expired"),
    )
    fake_graph.fail_next(
        "/me/messages", Scripted(502, {"html": f"<p>bad gateway {PAGE_TOKEN}</p>"})
    )
    for text in ("Still here", "One more thing"):
        response = api.post(
            f"/api/v1/tickets/{ticket.pk}/reply", {"text": text}, content_type="application/json"
        )
        assert response.status_code == 201

    # Someone posts a webhook without the secret.
    forged = anonymous.post(
        URL,
        b'{"object": "page"}',
        content_type="application/json",
        headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
    )
    assert forged.status_code == 403

    # Closing hands the conversation back; the agent logs out.
    closed = api.post(
        f"/api/v1/tickets/{ticket.pk}/close",
        {"closing_message": "Bye", "outcome": "resolved"},
        content_type="application/json",
    )
    assert closed.status_code == 200
    assert browser.post("/logout/").status_code == 302
    return {
        "page access token": PAGE_TOKEN,
        "app secret": settings.MESSENGER_APP_SECRET,
        "verify token": settings.MESSENGER_VERIFY_TOKEN,
        "API token": api_token,
        "password": PASSWORD,
        "mistyped password": WRONG_PASSWORD,
        "session key": session_key,
    }


@pytest.mark.django_db(transaction=True)
def test_no_secret_is_logged_and_the_page_token_is_never_stored_in_clear(fake_graph):
    with every_record() as records:
        secrets = _story(fake_graph)

    leaks = {
        name: [f"{r.name}: {r.getMessage()[:200]}" for r in records if secret in _everything_in(r)]
        for name, secret in secrets.items()
    }
    assert leaks == {name: [] for name in secrets}

    # In the database: sessions are stored under their key by design; nothing else is.
    stored = _stored_text()
    in_clear = {
        name: [label for label, text in stored.items() if secret in text]
        for name, secret in secrets.items()
        if name != "session key"
    }
    assert in_clear == {name: [] for name in in_clear}

    # The story went where it should: the calls were made and failed as scripted.
    sends = [c for c in fake_graph.sends() if "message" in c.body]
    assert [c.headers["Authorization"] for c in sends] == [f"Bearer {PAGE_TOKEN}"] * len(sends)
    assert sorted(Message.objects.filter(author_kind="agent").values_list("text", "status")) == [
        ("Bye", "pending"),  # waits behind the paused page (the token expired)
        ("On it", "sent"),
        ("One more thing", "pending"),  # so does what follows, unsent
        ("Still here", "pending"),  # the 190 paused the page's outbox: it waits
    ]
    assert Page.objects.get().outbox_paused_code == "token"
    errors = GraphCall.objects.exclude(last_error="").values_list("last_error", flat=True)
    assert sorted(errors) == [
        "Meta rejected a parameter (code 100): Unsupported get request. Token [page token] "
        "is not a user",
        "the Page access token is invalid or expired (code 190): Error validating access "
        "token: [page token] has expired",
    ]
    # The capture saw everything, libraries' DEBUG records included.
    levels = {record.levelno for record in records}
    assert {logging.DEBUG, logging.INFO, logging.WARNING} <= levels
    assert any(r.name == "webhooks.graph" and r.levelno == logging.WARNING for r in records)
