"""XSS payloads (tests/support/xss.py) as the names of files agents send (issue 11,
point 7): the API returns each name verbatim as JSON (the inbox shows it with
textContent: tests/browser/test_attachments.py), the download names it in a quoted
header, and the admin's list of attachments escapes it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents.models import Attachment
from agents.services import attachments
from tests.security.test_xss import _admin, _injected, _render
from tests.support import factories
from tests.support.xss import PAYLOADS

pytestmark = pytest.mark.django_db

# A name is a file's own name: what follows its last "/" (as any browser sends it).
NAMES = tuple(f"{p.rsplit('/', 1)[-1]}.pdf" for p in PAYLOADS)


@pytest.fixture
def sent(page, agent, settings, tmp_path, fake_graph) -> list[Attachment]:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    ticket = factories.ticket(page=page)
    attachments.ticket_reply_files(
        ticket_id=ticket.pk,
        user=agent,
        files=[
            SimpleUploadedFile(name, b"%PDF-1.4", content_type="application/pdf")
            for name in NAMES[:10]
        ],
    )
    attachments.ticket_reply_files(
        ticket_id=ticket.pk,
        user=agent,
        files=[
            SimpleUploadedFile(name, b"%PDF-1.4", content_type="application/pdf")
            for name in NAMES[10:20]
        ],
    )
    return list(Attachment.objects.order_by("id"))


def test_file_names_come_back_verbatim_as_json(sent, api):
    ticket_id = sent[0].message.ticket_id
    response = api.get(f"/api/v1/tickets/{ticket_id}/messages", {"limit": 200})
    assert response["Content-Type"] == "application/json; charset=utf-8"
    names = [f["name"] for m in response.json() for f in m["files"]]
    assert names == [a.name for a in sent]
    assert names == [n for n in NAMES[:20]]


def test_a_download_names_the_file_in_a_quoted_header(sent, api):
    for attachment in sent:
        response = api.get(f"/api/v1/attachments/{attachment.pk}/file")
        disposition = response["Content-Disposition"]
        assert disposition.startswith("attachment; filename")
        assert "\n" not in disposition and "\r" not in disposition
        assert response["Content-Type"] == "application/octet-stream"


def test_the_admin_list_of_attachments_escapes_the_names(sent):
    page = _render(_admin(), "/admin/agents/attachment/")
    assert _injected(page) == []
    text = "\n".join(page.texts)
    assert [a.name for a in sent if a.name not in text] == []
