"""XSS payloads (tests/support/xss.py) as customer message texts, contact names,
attachment URLs and titles, and page names; and as an agent's name.

- The API returns each verbatim, as a JSON string, served as JSON (the inbox puts them
  in the page with textContent, see static/agents/inbox/dom.js).
- The server-rendered pages (the inbox shell, the admin changelists of pages,
  contacts, conversations, messages and tickets) escape them: the page parses to the
  same elements and attributes as with harmless data, no handler attribute, script or
  javascript: URL holds any of them, and each is shown as text.

The browser's side is tests/browser/test_xss.py.
"""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from agents.models import Contact, Message, Ticket
from tests.support import factories
from tests.support.xss import MARKERS, PAYLOADS
from webhooks.models import Page

pytestmark = pytest.mark.django_db

ADMIN_LISTS = (
    "/admin/webhooks/page/",
    "/admin/agents/contact/",
    "/admin/agents/conversation/",
    "/admin/agents/message/",
    "/admin/agents/ticket/",
)
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "srcdoc", "xlink:href", "style"}


def _attachments(value: str) -> list[dict[str, str]]:
    return [
        {"type": "image", "url": value, "title": value},
        {"type": "file", "url": value, "title": value},
    ]


def _world(strings: tuple[str, ...]) -> list[Ticket]:
    """One page per string, named by it; a contact, a ticket and a customer message
    that carry it as name, text and attachment URL and title."""
    tickets = []
    for index, value in enumerate(strings):
        page = factories.page(page_id=f"10000000000{index:05d}", name=value, access_token="t")
        conversation = factories.conversation(page=page, psid=f"30000000000{index:05d}")
        Contact.objects.filter(pk=conversation.contact_id).update(first_name=value, last_name="")
        ticket = factories.ticket(conversation=conversation)
        factories.message(ticket=ticket, text=value, attachments=_attachments(value))
        tickets.append(ticket)
    return tickets


def _rename(tickets: list[Ticket], strings: tuple[str, ...]) -> None:
    """Put other strings where the payloads were (same rows, same shape)."""
    for ticket, value in zip(tickets, strings, strict=True):
        conversation = ticket.conversation
        Page.objects.filter(pk=conversation.page_id).update(name=value)
        Contact.objects.filter(pk=conversation.contact_id).update(first_name=value)
        Message.objects.filter(ticket=ticket).update(text=value, attachments=_attachments(value))


HARMLESS = tuple(f"harmless {i}" for i in range(len(PAYLOADS)))


# --- the API ------------------------------------------------------------------------


def test_the_api_returns_every_payload_verbatim_as_json(api):
    tickets = _world(PAYLOADS)

    listing = api.get("/api/v1/tickets", {"queue": "waiting"})

    assert listing["Content-Type"] == "application/json; charset=utf-8"
    assert listing["X-Content-Type-Options"] == "nosniff"
    shown = {t["id"]: (t["page_name"], t["contact"]["name"]) for t in listing.json()}
    assert shown == {t.pk: (p, p) for t, p in zip(tickets, PAYLOADS, strict=True)}
    for ticket, payload in zip(tickets, PAYLOADS, strict=True):
        messages = api.get(f"/api/v1/tickets/{ticket.pk}/messages")
        assert messages["Content-Type"] == "application/json; charset=utf-8"
        [message] = messages.json()
        assert (message["text"], message["attachments"]) == (payload, _attachments(payload))
        detail = api.get(f"/api/v1/tickets/{ticket.pk}").json()
        assert (detail["page_name"], detail["contact"]["name"]) == (payload, payload)
        assert detail["last_message"]["text"] == payload


def test_the_context_and_search_return_every_payload_verbatim_as_json(api):
    # Issue 11: the customer panel (name, page, the agents' note) and search (the
    # contact's name, the message's snippet) hand them to the inbox as they are.
    tickets = _world(PAYLOADS)
    for ticket, payload in zip(tickets, PAYLOADS, strict=True):
        saved = api.put(
            f"/api/v1/tickets/{ticket.pk}/context/note",
            f'{{"text": {_json(payload)}}}',
            content_type="application/json",
        )
        assert (saved.status_code, saved.json()["text"]) == (200, payload.strip())
        context = api.get(f"/api/v1/tickets/{ticket.pk}/context")
        assert context["Content-Type"] == "application/json; charset=utf-8"
        body = context.json()
        assert (body["contact"]["name"], body["page_name"], body["note"]["text"]) == (
            payload,
            payload,
            payload.strip(),
        )
    found = api.get("/api/v1/search", {"q": "xss", "limit": 50})
    assert found["Content-Type"] == "application/json; charset=utf-8"
    snippets = {m["snippet"] for r in found.json() for m in r["messages"]}
    expected = {" ".join(p.split()) for p in PAYLOADS if "xss" in p.lower()}
    assert snippets == expected


def _json(value: str) -> str:
    import json  # noqa: PLC0415 -- only this test writes a body by hand

    return json.dumps(value)


# --- server-rendered pages ------------------------------------------------------------


class _Page(HTMLParser):
    """What a browser would build from the HTML: elements with their attributes, the
    text of scripts and styles, and the text shown."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.shape: Counter[tuple[str, tuple[str, ...]]] = Counter()
        self.executable: list[str] = []
        self.texts: list[str] = []
        self._raw_text_tag: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.shape[(tag, tuple(sorted(name for name, _ in attrs)))] += 1
        for name, value in attrs:
            value = value or ""
            handler = name.startswith("on")
            url = name in URL_ATTRIBUTES and value.strip().lower().startswith(
                ("javascript:", "data:", "vbscript:")
            )
            if handler or url or name in ("srcdoc", "style"):
                self.executable.append(f"<{tag} {name}={value!r}>")
        if tag in ("script", "style"):
            self._raw_text_tag = tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._raw_text_tag = None

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw_text_tag:
            self._raw_text_tag = None

    def handle_data(self, data: str) -> None:
        if self._raw_text_tag is not None:
            self.executable.append(f"<{self._raw_text_tag}>{data}")
        else:
            self.texts.append(data)


def _injected(page: _Page) -> list[str]:
    return [part for part in page.executable if any(m in part for m in MARKERS)]


def _admin() -> Client:
    root = get_user_model().objects.create_superuser("root", "root@example.org", "pw-12345678")
    client = Client()
    client.force_login(root)
    return client


def _render(client: Client, url: str) -> _Page:
    response = client.get(url)
    assert response.status_code == 200, url
    return _Page(response.content.decode())


def test_the_admin_changelists_escape_every_payload():
    tickets = _world(PAYLOADS)
    admin = _admin()

    with_payloads = {url: _render(admin, url) for url in ADMIN_LISTS}
    _rename(tickets, HARMLESS)
    with_harmless = {url: _render(admin, url) for url in ADMIN_LISTS}

    injected = {url: _injected(page) for url, page in with_payloads.items()}
    assert injected == {url: [] for url in ADMIN_LISTS}
    # Markup from the data would add elements or attributes.
    assert {url: p.shape for url, p in with_payloads.items()} == {
        url: p.shape for url, p in with_harmless.items()
    }
    # Each payload is there, as text (page names in the pages' and the contacts' lists,
    # contact names in the contacts' list, texts in the messages' list).
    for url, place in (
        ("/admin/webhooks/page/", "page names"),
        ("/admin/agents/contact/", "contact names"),
        ("/admin/agents/message/", "message texts"),
    ):
        text = "\n".join(with_payloads[url].texts)
        missing = [p for p in PAYLOADS if p not in text]
        assert missing == [], f"{place} not shown as text in {url}"


def test_the_inbox_shell_escapes_the_agents_name(fake_graph):
    agent = factories.agent("harmless", first_name="harmless")
    browser = Client()
    browser.force_login(agent)
    baseline = _render(browser, "/").shape
    shown = {}
    for index, payload in enumerate(PAYLOADS):
        agent.first_name = payload[:150]  # the column's length
        agent.save()
        page = _render(browser, f"/tickets/{index + 1}/")
        assert _injected(page) == [], payload
        assert page.shape == baseline, payload
        shown[payload[:150]] = payload[:150] in "".join(page.texts)
    assert shown == dict.fromkeys(shown, True)
