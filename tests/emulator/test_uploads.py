"""Files over HTTP, as Meta takes them (messenger-platform.md §4.1, §4.3): the Attachment
Upload API (`/me/message_attachments`, multipart `message` + `filedata`), `filedata` on
the Send API, Meta's limits and error shapes, the echo, and the file served to the
customer page."""

from __future__ import annotations

import http.client
import json

from tests.emulator.support import PSID
from tests.emulator.test_server import bot_passes_to_helpdesk, graph, http_session
from webhooks.emulator.platform.uploads import MAX_UPLOAD_BYTES
from webhooks.emulator.server import GRAPH_MAX_BODY

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _upload(emulator, kind: str, name: str, data: bytes, content_type: str, **payload):
    # Generous: reading 25 MB of multipart takes a while on a busy machine.
    return graph(
        emulator,
        "POST",
        "/me/message_attachments",
        data={
            "message": json.dumps(
                {"attachment": {"type": kind, "payload": {"is_reusable": True, **payload}}}
            )
        },
        files={"filedata": (name, data, content_type)},
        timeout=60,
    )


def _ours(emulator):
    emulator.user_says(PSID, "hi")
    assert emulator.wait_idle()
    bot_passes_to_helpdesk(emulator)


def test_an_uploaded_image_is_sent_by_its_id_echoed_and_served(emulator, receiver):
    _ours(emulator)
    uploaded = _upload(emulator, "image", "label.png", PNG, "image/png")
    assert uploaded.status_code == 200, uploaded.text
    attachment_id = uploaded.json()["attachment_id"]
    assert set(uploaded.json()) == {"attachment_id"}

    sent = graph(
        emulator,
        "POST",
        "/me/messages",
        json={
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {
                "attachment": {"type": "image", "payload": {"attachment_id": attachment_id}},
                "metadata": "helpdesk:message=7",
            },
        },
    )
    assert sent.status_code == 200, sent.text
    url = f"{emulator.base_url}/emulator/media/{attachment_id}"
    entry = [e for e in emulator.transcript(PSID) if e["author"] == "agent"][-1]
    assert entry["attachments"] == [{"type": "image", "url": url, "title": "label.png"}]
    echoes = [
        event["message"]
        for _, event in receiver.events()
        if event.get("message", {}).get("is_echo") and event["message"].get("attachments")
    ]
    assert echoes[-1]["attachments"] == [{"type": "image", "payload": {"url": url}}]
    assert echoes[-1]["metadata"] == "helpdesk:message=7"

    served = http_session.get(url, timeout=5)
    assert served.status_code == 200
    assert served.content == PNG
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["Content-Disposition"] == 'inline; filename="label.png"'


def test_a_file_with_the_send_api_in_one_call(emulator):
    _ours(emulator)
    sent = graph(
        emulator,
        "POST",
        "/me/messages",
        data={
            "recipient": json.dumps({"id": PSID}),
            "messaging_type": "RESPONSE",
            "message": json.dumps({"attachment": {"type": "file", "payload": {}}}),
        },
        files={"filedata": ("invoice.pdf", PDF, "application/pdf")},
    )
    assert sent.status_code == 200, sent.text
    assert set(sent.json()) == {"recipient_id", "message_id"}  # not reusable: no id
    entry = [e for e in emulator.transcript(PSID) if e["author"] == "agent"][-1]
    (attachment,) = entry["attachments"]
    assert (attachment["type"], attachment["title"]) == ("file", "invoice.pdf")
    served = http_session.get(attachment["url"], timeout=5)
    assert served.content == PDF
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"] == 'attachment; filename="invoice.pdf"'


def test_meta_refuses_an_empty_file_and_a_picture_that_is_not_an_image(emulator):
    empty = _upload(emulator, "file", "empty.pdf", b"", "application/pdf")
    assert empty.status_code == 400
    error = empty.json()["error"]
    assert (error["code"], error["error_subcode"], error["type"]) == (
        100,
        2018047,
        "OAuthException",
    )
    wrong = _upload(emulator, "image", "notes.txt", b"hello", "text/plain")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["error_subcode"] == 2018047
    assert "image/* Content-Type" in wrong.json()["error"]["message"]
    assert emulator.platform.state.uploads == {}


def test_a_file_over_25_mb_is_refused_with_metas_too_big_error(emulator):
    big = _upload(emulator, "file", "big.pdf", b"x" * (MAX_UPLOAD_BYTES + 1), "application/pdf")
    assert big.status_code == 400
    error = big.json()["error"]
    assert (error["code"], error["error_subcode"]) == (100, 2018109)
    assert error["message"] == "(#100) Attachment size exceeds allowable limit"
    assert emulator.platform.state.uploads == {}
    # Exactly 25 MB is taken.
    limit = _upload(emulator, "file", "big.pdf", b"x" * MAX_UPLOAD_BYTES, "application/pdf")
    assert limit.status_code == 200, limit.text


def test_an_unknown_media_id_is_404(emulator):
    response = http_session.get(f"{emulator.base_url}/emulator/media/123", timeout=5)
    assert response.status_code == 404


def test_a_body_over_the_limit_is_refused_unread_with_metas_error(emulator):
    # Only the headers are sent: the emulator answers from Content-Length alone.
    host, port = emulator.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("POST", "/v23.0/me/message_attachments")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(GRAPH_MAX_BODY + 1))
    connection.putheader("Authorization", "Bearer whatever")
    connection.endheaders()
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 400
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 2018109)
    assert emulator.platform.state.uploads == {}
