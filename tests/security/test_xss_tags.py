"""XSS payloads (tests/support/xss.py) as tag names and descriptions (issue 11): the API
returns them verbatim as JSON (the inbox shows them with textContent: the browser's side
is in tests/browser/test_tags_filters.py), and the admin's tag list escapes them."""

from __future__ import annotations

import pytest

from agents.models import Tag, TicketTag
from tests.security.test_xss import _admin, _injected, _render
from tests.support import factories
from tests.support.xss import PAYLOADS

pytestmark = pytest.mark.django_db


def _tags() -> list[Tag]:
    made: dict[str, Tag] = {}
    for n, payload in enumerate(PAYLOADS):
        name = payload[:40]  # the column's length
        if name.lower() not in made:
            made[name.lower()] = Tag.objects.create(name=name, description=PAYLOADS[-1 - n])
    return list(made.values())


def test_tag_names_and_descriptions_come_back_verbatim_and_are_escaped_in_admin(
    page, fake_graph, api
):
    tags = _tags()
    ticket = factories.ticket(page=page)
    for tag in tags:
        TicketTag.objects.create(ticket=ticket, tag=tag)

    listed = api.get("/api/v1/tags")
    assert listed["Content-Type"] == "application/json; charset=utf-8"
    assert {(t["name"], t["description"]) for t in listed.json()} == {
        (t.name, t.description) for t in tags
    }
    [row] = api.get("/api/v1/tickets").json()
    assert {t["name"] for t in row["tags"]} == {t.name for t in tags}
    # The filter by a payload's name works, and an unknown one is refused as text.
    assert len(api.get("/api/v1/tickets", {"tag": tags[0].name}).json()) == 1
    refused = api.get("/api/v1/tickets", {"tag": PAYLOADS[0] + "x"})
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/json; charset=utf-8"

    shown = _render(_admin(), "/admin/agents/tag/")
    assert _injected(shown) == []
    text = "\n".join(shown.texts)
    assert [t.name for t in tags if t.name not in text] == []
