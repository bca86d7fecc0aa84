"""Files and images agents send (issue 11, point 7): a reply with files, the limits the
composer checks first, and each file for the agents who may see its ticket."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from ninja import File, Form, Schema, Status
from ninja.files import UploadedFile

from agents.api.endpoints import AgentRequest, api
from agents.api.schemas import Error, MessageOut
from agents.models import Message
from agents.services import attachments

# Served inline (the timeline shows them); anything else downloads.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


class AttachmentLimitsOut(Schema):
    """What Messenger takes: the composer refuses other files before uploading them, the
    server refuses them again (400, nothing stored)."""

    max_bytes: int
    max_files: int
    extensions: list[str]
    programs: list[str]
    types_in_words: str


@api.get(
    "/attachments/limits",
    response=AttachmentLimitsOut,
    tags=["attachments"],
    summary="What files a reply may carry",
)
def attachment_limits(request: AgentRequest) -> dict[str, Any]:
    """Meta's limits as the helpdesk applies them: the largest file (bytes, 25 MB at
    most), files per reply, the extensions Messenger takes (anything else is refused),
    and those of programs (refused with their own sentence)."""
    return attachments.limits()


@api.post(
    "/tickets/{ticket_id}/attachments",
    response={201: list[MessageOut], 400: Error, 404: Error, 409: Error},
    tags=["tickets", "attachments"],
    summary="Reply with files (and text)",
)
def ticket_reply_files(
    request: AgentRequest,
    ticket_id: int,
    files: File[list[UploadedFile] | None] = None,
    text: Form[str] = "",
) -> Status[list[Message]]:
    """Queue a reply with files (multipart: `files`, one or more, and an optional `text`).
    Messenger sends text and a file as separate messages: the answer is those messages,
    the text first, then one per file, sent by a worker in that order, each as a text
    reply is (pending → sent, or failed with `error`). Each file is uploaded to Meta and
    sent as an attachment (`image`, `video`, `audio` or `file`).

    400, with the reason in words and nothing stored, for an empty file, one over the
    limit (25 MB, Meta's), a type Messenger does not take, a program, a picture that is
    not what its name says, or too many files (`GET /attachments/limits`). 409 when you
    cannot reply now (as `POST /tickets/{ticket_id}/reply`)."""
    messages = attachments.ticket_reply_files(
        ticket_id=ticket_id, user=request.user, files=list(files or []), text=text
    )
    return Status(201, messages)


@api.get(
    "/attachments/{attachment_id}/file",
    response={404: Error},
    tags=["attachments"],
    summary="Download a file an agent sent",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The file: pictures inline, anything else as a download",
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            }
        }
    },
)
def attachment_file(request: AgentRequest, attachment_id: int) -> FileResponse:
    """The file, for agents who may see its ticket's page; 404 otherwise (the same answer
    as for a file that does not exist). Pictures are shown inline, anything else
    downloads under its name."""
    attachment = attachments.attachment_get(user=request.user, attachment_id=attachment_id)
    inline = attachment.content_type in INLINE_TYPES
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=not inline,
        filename=attachment.name,
        content_type=attachment.content_type if inline else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
