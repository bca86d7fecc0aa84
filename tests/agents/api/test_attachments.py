"""Files and images agents send (issue 11, point 7), through the API against the
recording fake of the Graph API: uploaded with the Attachment Upload API and sent by
their attachment_id, after the reply's text, in order, once; Meta's limits checked
before anything is stored or sent; each file only for the agents who may see its
ticket; emoji typed with the OS go out intact."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents.models import Attachment, Message, MessageOrder, Team
from agents.services import attachments
from tests.support import factories, payloads
from tests.support.fakegraph import Scripted, graph_error
from webhooks import graph

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 48
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def send_files(api, django_capture_on_commit_callbacks):
    """POST files (multipart) and run what the request enqueued (tasks run eagerly)."""

    def send(ticket_id: int, *files: SimpleUploadedFile, text: str = "", client=None):
        data: dict = {"files": list(files)}
        if text:
            data["text"] = text
        with django_capture_on_commit_callbacks(execute=True):
            return (client or api).post(f"/api/v1/tickets/{ticket_id}/attachments", data)

    return send


def _stored(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def test_an_image_and_a_pdf_go_out_after_the_text_as_attachments_in_order(
    ticket, send_files, fake_graph, media
):
    response = send_files(
        ticket.pk,
        SimpleUploadedFile("label.png", PNG, content_type="image/png"),
        SimpleUploadedFile("invoice.pdf", PDF, content_type="application/pdf"),
        text="Here you go 📦",
    )
    assert response.status_code == 201, response.content
    text, image, pdf = Message.objects.filter(author_kind="agent").order_by("id")
    answer = response.json()
    assert [m["id"] for m in answer] == [text.pk, image.pk, pdf.pk]
    assert [m["files"] for m in answer] == [
        [],
        [
            {
                "id": image.attachment_file.pk,
                "name": "label.png",
                "size": len(PNG),
                "content_type": "image/png",
                "kind": "image",
                "url": f"/api/v1/attachments/{image.attachment_file.pk}/file",
            }
        ],
        [
            {
                "id": pdf.attachment_file.pk,
                "name": "invoice.pdf",
                "size": len(PDF),
                "content_type": "application/pdf",
                "kind": "file",
                "url": f"/api/v1/attachments/{pdf.attachment_file.pk}/file",
            }
        ],
    ]
    calls = fake_graph.business_calls()
    assert [c.path for c in calls] == [
        "/me/messages",
        "/me/message_attachments",
        "/me/messages",
        "/me/message_attachments",
        "/me/messages",
    ]
    persona = fake_graph.calls_to("/me/personas")[0].answered["id"]
    send_text, upload_image, send_image, upload_pdf, send_pdf = calls
    assert send_text.body == {
        "recipient": {"id": payloads.PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Here you go 📦", "metadata": f"helpdesk:message={text.pk}"},
        "persona_id": persona,
    }
    # The Attachment Upload API: multipart `message` + `filedata`, reusable.
    assert upload_image.body == {
        "message": {"attachment": {"type": "image", "payload": {"is_reusable": True}}}
    }
    assert upload_image.files == {"filedata": ("label.png", "image/png", PNG)}
    assert upload_pdf.body == {
        "message": {"attachment": {"type": "file", "payload": {"is_reusable": True}}}
    }
    assert upload_pdf.files == {"filedata": ("invoice.pdf", "application/pdf", PDF)}
    image_id = upload_image.answered["attachment_id"]
    pdf_id = upload_pdf.answered["attachment_id"]
    assert send_image.body == {
        "recipient": {"id": payloads.PSID},
        "messaging_type": "RESPONSE",
        "message": {
            "attachment": {"type": "image", "payload": {"attachment_id": image_id}},
            "metadata": f"helpdesk:message={image.pk}",
        },
        "persona_id": persona,
    }
    assert send_pdf.body["message"] == {
        "attachment": {"type": "file", "payload": {"attachment_id": pdf_id}},
        "metadata": f"helpdesk:message={pdf.pk}",
    }
    for message in (text, image, pdf):
        message.refresh_from_db()
        assert message.status == "sent"
    assert [a.meta_attachment_id for a in Attachment.objects.order_by("id")] == [image_id, pdf_id]
    assert len(_stored(media)) == 2
    # The list preview says what the last message was.
    assert pdf.attachments == [{"type": "file", "url": "", "title": "invoice.pdf"}]


def test_a_retried_file_is_not_uploaded_again(ticket, send_files, fake_graph, api, post):
    fake_graph.fail_next("/me/messages", graph_error(100, message="(#100) Invalid parameter"))
    send_files(ticket.pk, SimpleUploadedFile("label.png", PNG, content_type="image/png"))
    message = Message.objects.get(author_kind="agent")
    assert (message.status, message.error) == (
        "failed",
        "Messenger rejected the message as invalid; sending it again won't help.",
    )
    response = post(api, f"/api/v1/messages/{message.pk}/retry")
    assert response.status_code == 200, response.content
    message.refresh_from_db()
    assert message.status == "sent"
    assert len(fake_graph.calls_to("/me/message_attachments")) == 1
    assert len(fake_graph.calls_to("/me/messages")) == 2


def test_an_upload_whose_answer_is_lost_is_retried_and_the_file_sent_once(
    ticket, send_files, fake_graph
):
    fake_graph.fail_next("/me/message_attachments", Scripted(503, {}), times=1)
    send_files(ticket.pk, SimpleUploadedFile("label.png", PNG, content_type="image/png"))
    message = Message.objects.get(author_kind="agent")
    assert message.status == "sent"
    assert len(fake_graph.calls_to("/me/message_attachments")) == 2
    assert len([c for c in fake_graph.sends() if "message" in c.body]) == 1


def test_when_the_text_fails_the_file_after_it_is_not_sent(ticket, send_files, fake_graph):
    fake_graph.fail_next("/me/messages", graph_error(551, message="not available"))
    send_files(
        ticket.pk, SimpleUploadedFile("label.png", PNG, content_type="image/png"), text="Here"
    )
    text, image = Message.objects.filter(author_kind="agent").order_by("id")
    assert MessageOrder.objects.get(message=image).after == text
    assert (text.status, image.status) == ("failed", "failed")
    assert image.error == (
        "Not sent: the part of this reply before it was not sent. Retry that one first, "
        "then this one."
    )
    assert fake_graph.calls_to("/me/message_attachments") == []
    assert len(fake_graph.sends()) == 1


def test_the_file_waits_while_the_text_before_it_is_not_sent(ticket, send_files, fake_graph):
    # The text's send is retried (a transient error): the file does not overtake it.
    fake_graph.fail_next("/me/messages", graph_error(2, message="temporary"), times=1)
    send_files(
        ticket.pk, SimpleUploadedFile("label.png", PNG, content_type="image/png"), text="Here"
    )
    sent = [c.body["message"] for c in fake_graph.sends() if "message" in c.body]
    assert [("text" in m, "attachment" in m) for m in sent] == [
        (True, False),
        (True, False),
        (False, True),
    ]
    assert set(Message.objects.filter(author_kind="agent").values_list("status", flat=True)) == {
        "sent"
    }


REFUSALS = [
    (
        SimpleUploadedFile("empty.pdf", b"", content_type="application/pdf"),
        "“empty.pdf” is empty: there is nothing to send.",
    ),
    (
        SimpleUploadedFile("setup.exe", b"MZ\x90\x00", content_type="application/x-msdownload"),
        "“setup.exe” is a program: the helpdesk does not send programs through Messenger.",
    ),
    (
        SimpleUploadedFile("report.pdf", b"MZ\x90\x00 hidden", content_type="application/pdf"),
        "“report.pdf” is a program: the helpdesk does not send programs through Messenger.",
    ),
    (
        SimpleUploadedFile("notes.xyz", b"hello", content_type="application/octet-stream"),
        "“notes.xyz” can't be sent: “.xyz” files are not among what Messenger takes "
        f"({attachments.TYPES_IN_WORDS}).",
    ),
    (
        SimpleUploadedFile("photo.png", b"GIF89a not a png", content_type="image/png"),
        "“photo.png” is not the PNG picture its name says.",
    ),
]


@pytest.mark.parametrize(("upload", "detail"), REFUSALS, ids=lambda v: getattr(v, "name", ""))
def test_refused_files_leave_no_row_no_file_and_no_graph_call(
    ticket, send_files, fake_graph, media, upload, detail
):
    upload.seek(0)
    response = send_files(ticket.pk, upload, text="with a caption")
    assert (response.status_code, response.json()) == (400, {"detail": detail})
    assert not Message.objects.filter(author_kind="agent").exists()
    assert not Attachment.objects.exists()
    assert _stored(media) == []
    assert fake_graph.calls == []
    ticket.refresh_from_db()
    assert ticket.status == "waiting"  # not even claimed


def test_a_file_over_metas_25_mb_is_refused(ticket, send_files, fake_graph, media):
    big = SimpleUploadedFile("video.mp4", b"\x00" * (25 * MB + 1), content_type="video/mp4")
    response = send_files(ticket.pk, big)
    assert response.status_code == 400
    assert response.json() == {
        "detail": "“video.mp4” is 25.1 MB: Messenger takes files up to 25 MB."
    }
    assert (Message.objects.filter(author_kind="agent").count(), _stored(media)) == (0, [])
    assert fake_graph.calls == []


def test_one_bad_file_refuses_the_whole_reply(ticket, send_files, fake_graph, media):
    response = send_files(
        ticket.pk,
        SimpleUploadedFile("label.png", PNG, content_type="image/png"),
        SimpleUploadedFile("empty.txt", b"", content_type="text/plain"),
    )
    assert response.status_code == 400
    assert not Message.objects.filter(author_kind="agent").exists()
    assert (_stored(media), fake_graph.calls) == ([], [])


def test_a_reply_while_the_bot_has_the_conversation_stores_nothing(
    page, send_files, fake_graph, media
):
    ticket = factories.ticket(page=page)
    ticket.conversation.control_state = "bot"
    ticket.conversation.save(update_fields=["control_state"])
    response = send_files(ticket.pk, SimpleUploadedFile("label.png", PNG, content_type="image/png"))
    assert response.status_code == 409
    assert (Attachment.objects.count(), _stored(media), fake_graph.calls) == (0, [], [])


def test_a_file_is_downloaded_only_by_agents_who_may_see_its_ticket(
    page, ticket, send_files, api, api2, agent, agent2, fake_graph
):
    billing = Team.objects.create(name="billing")
    billing.pages.add(page)
    billing.members.add(agent)
    Team.objects.create(name="shipping").members.add(agent2)
    send_files(ticket.pk, SimpleUploadedFile("invoice.pdf", PDF, content_type="application/pdf"))
    attachment = Attachment.objects.get()
    url = f"/api/v1/attachments/{attachment.pk}/file"

    mine = api.get(url)
    assert mine.status_code == 200
    assert b"".join(mine.streaming_content) == PDF
    assert mine["Content-Type"] == "application/octet-stream"
    assert mine["Content-Disposition"] == 'attachment; filename="invoice.pdf"'
    assert mine["X-Content-Type-Options"] == "nosniff"

    other = api2.get(url)
    assert (other.status_code, other.json()) == (
        404,
        {"detail": f"Attachment {attachment.pk} does not exist."},
    )
    missing = api.get(f"/api/v1/attachments/{attachment.pk + 1}/file")
    assert missing.status_code == 404


def test_a_picture_is_shown_inline(ticket, send_files, api, fake_graph):
    send_files(ticket.pk, SimpleUploadedFile("label.png", PNG, content_type="image/png"))
    response = api.get(f"/api/v1/attachments/{Attachment.objects.get().pk}/file")
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'inline; filename="label.png"'


def test_the_limits_the_composer_checks(api, settings):
    settings.ATTACHMENT_MAX_FILES = 3
    limits = api.get("/api/v1/attachments/limits").json()
    assert (limits["max_bytes"], limits["max_files"]) == (25 * MB, 3)
    assert {"jpg", "png", "gif", "webp", "pdf", "mp4", "mp3"} <= set(limits["extensions"])
    assert "exe" in limits["programs"] and "exe" not in limits["extensions"]


def test_too_many_files_are_refused(ticket, send_files, settings, fake_graph):
    settings.ATTACHMENT_MAX_FILES = 2
    files = [SimpleUploadedFile(f"{i}.png", PNG, content_type="image/png") for i in range(3)]
    response = send_files(ticket.pk, *files)
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "A reply carries at most 2 files."},
    )
    assert fake_graph.calls == []


def test_emoji_typed_with_the_os_go_out_intact(ticket, api, post, fake_graph):
    text = "Merci ! 👍🏽 👨‍👩‍👧 🇫🇷 ❤️"
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": text})
    assert response.status_code == 201
    [send] = [c for c in fake_graph.sends() if "message" in c.body]
    assert send.body["message"]["text"] == text
    assert Message.objects.get(author_kind="agent").text == text


def test_the_openapi_document_describes_the_file_operations_once(api):
    # Swagger UI refuses a document with a key twice (a 200 declared two ways once did).
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    raw = api.get("/api/v1/openapi.json").content
    document = json.loads(raw, object_pairs_hook=no_duplicates)
    download = document["paths"]["/api/v1/attachments/{attachment_id}/file"]["get"]
    assert sorted(download["responses"]) == ["200", "401", "404", "422", "429"]
    upload = document["paths"]["/api/v1/tickets/{ticket_id}/attachments"]["post"]
    assert list(upload["requestBody"]["content"]) == ["multipart/form-data"]
    assert upload["tags"] == ["tickets", "attachments"]


def test_a_file_is_uploaded_before_its_message_is_claimed(ticket, send_files, fake_graph):
    # However long a large upload takes, the message is not `sending` meanwhile: no other
    # worker can take it for one that died mid-call (and make it wait for an echo).
    seen: list[str] = []
    real = graph.attachment_upload

    def spy(*args, **kwargs):
        seen.append(Message.objects.get(author_kind="agent").status)
        return real(*args, **kwargs)

    with mock.patch.object(graph, "attachment_upload", spy):
        send_files(ticket.pk, SimpleUploadedFile("label.png", PNG, content_type="image/png"))
    assert seen == ["pending"]
    assert Message.objects.get(author_kind="agent").status == "sent"
