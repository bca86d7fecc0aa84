"""Files and images agents send (issue 11, point 7).

A reply with files is a text (optional) and one message per file, stored in that order
and sent through the same outbox as any reply (`outbound.message_send`: once, retries
safe, failures in words): Messenger sends text and a file as two messages. Each part
goes only once the part before it was sent (`MessageOrder`), so the customer reads
them as the agent wrote them.

Meta's limits are checked before anything is stored (`file_check`): up to 25 MB
(ATTACHMENT_MAX_BYTES), not empty, of a type Messenger takes (`ALLOWED`; programs
never), a picture really being the picture its name says. The browser checks the same
first (it reads `limits()`); this is the authority.

How a file reaches Meta: uploaded by the worker with the Attachment Upload API
(`graph.attachment_upload`, multipart `filedata`, answer `attachment_id`), then sent by
that id. Meta never fetches anything from the helpdesk, so it works behind a firewall
and against the emulator; an upload whose answer was lost is simply made again
(nothing reaches the customer before the send), and a retried send reuses the id.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePath
from typing import IO, Any, Literal, cast

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from agents import tasks
from agents.errors import InvalidInput, NotFound
from agents.models import Agent, Attachment, Message, MessageOrder, Ticket
from agents.selectors import page_visible
from agents.send_errors import SendFailure
from agents.services import outbound  # imports this module too: used at call time
from webhooks import graph
from webhooks.models import Page
from webhooks.queue import enqueue_on_commit

logger = logging.getLogger(__name__)

# What Messenger takes, by extension: (attachment type, the type Meta is told). Anything
# else is refused, programs with their own sentence.
ALLOWED: dict[str, tuple[str, str]] = {
    "jpg": ("image", "image/jpeg"),
    "jpeg": ("image", "image/jpeg"),
    "png": ("image", "image/png"),
    "gif": ("image", "image/gif"),
    "webp": ("image", "image/webp"),
    "mp4": ("video", "video/mp4"),
    "mov": ("video", "video/quicktime"),
    "mp3": ("audio", "audio/mpeg"),
    "m4a": ("audio", "audio/mp4"),
    "aac": ("audio", "audio/aac"),
    "wav": ("audio", "audio/wav"),
    "ogg": ("audio", "audio/ogg"),
    "pdf": ("file", "application/pdf"),
    "txt": ("file", "text/plain"),
    "csv": ("file", "text/csv"),
    "rtf": ("file", "application/rtf"),
    "doc": ("file", "application/msword"),
    "docx": ("file", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xls": ("file", "application/vnd.ms-excel"),
    "xlsx": ("file", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "ppt": ("file", "application/vnd.ms-powerpoint"),
    "pptx": (
        "file",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    "odt": ("file", "application/vnd.oasis.opendocument.text"),
    "ods": ("file", "application/vnd.oasis.opendocument.spreadsheet"),
    "odp": ("file", "application/vnd.oasis.opendocument.presentation"),
}
PROGRAMS = frozenset(
    [
        "exe",
        "msi",
        "bat",
        "cmd",
        "com",
        "scr",
        "pif",
        "cpl",
        "dll",
        "sys",
        "vbs",
        "vbe",
        "js",
        "jse",
        "wsf",
        "wsh",
        "ps1",
        "psm1",
        "sh",
        "bash",
        "jar",
        "apk",
        "app",
        "dmg",
        "pkg",
        "deb",
        "rpm",
        "run",
        "bin",
        "elf",
        "msc",
        "lnk",
        "reg",
        "hta",
        "iso",
    ]
)
# The first bytes of programs, whatever their name says.
PROGRAM_MAGIC = (
    b"MZ",
    b"\x7fELF",
    b"#!",
    b"\xfe\xed\xfa",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
)
PICTURE_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
TYPES_IN_WORDS = (
    "pictures (JPEG, PNG, GIF, WebP), video (MP4, MOV), audio (MP3, M4A, AAC, WAV, OGG) "
    "and documents (PDF, TXT, CSV, RTF, Word, Excel, PowerPoint, OpenDocument)"
)
# Meta's attachment ids expire after 90 days (§4.3): older uploads are made again.
UPLOAD_REUSE = timedelta(days=80)


def size_in_words(size: int, *, up: bool = False) -> str:
    """`up`: rounded up, so that a file just over a limit never reads as the limit."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{math.ceil(size / 1024) if up else round(size / 1024)} KB"
    tenths = size * 10 / (1024 * 1024)
    return f"{(math.ceil(tenths) if up else round(tenths)) / 10:.1f} MB".replace(".0 MB", " MB")


def limits() -> dict[str, Any]:
    """What the composer checks before uploading (the server checks it again)."""
    return {
        "max_bytes": settings.ATTACHMENT_MAX_BYTES,
        "max_files": settings.ATTACHMENT_MAX_FILES,
        "extensions": sorted(ALLOWED),
        "programs": sorted(PROGRAMS),
        "types_in_words": TYPES_IN_WORDS,
    }


@dataclass(frozen=True)
class Checked:
    upload: UploadedFile
    name: str
    extension: str
    kind: str
    content_type: str
    size: int


def _clean_name(name: str) -> str:
    """The file's own name (no folders), without control characters, at most 255."""
    base = PurePath((name or "").replace("\\", "/")).name
    base = "".join(c for c in base if c.isprintable()).strip()
    if len(base) > 255:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 250 - len(ext)] + dot + ext) if dot else base[:255]
    return base or "file"


def file_check(upload: UploadedFile) -> Checked:
    """Meta's limits and Messenger's types, for one file: InvalidInput in words."""
    name = _clean_name(upload.name or "")
    size = int(upload.size or 0)
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if size == 0:
        raise InvalidInput(f"“{name}” is empty: there is nothing to send.")
    limit = settings.ATTACHMENT_MAX_BYTES
    if size > limit:
        raise InvalidInput(
            f"“{name}” is {size_in_words(size, up=True)}: Messenger takes files up to "
            f"{size_in_words(limit)}."
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if extension in PROGRAMS or head.startswith(PROGRAM_MAGIC):
        raise InvalidInput(
            f"“{name}” is a program: the helpdesk does not send programs through Messenger."
        )
    if extension not in ALLOWED:
        kind_words = f"“.{extension}” files" if extension else "files without an extension"
        raise InvalidInput(
            f"“{name}” can't be sent: {kind_words} are not among what Messenger takes "
            f"({TYPES_IN_WORDS})."
        )
    kind, content_type = ALLOWED[extension]
    magic = PICTURE_MAGIC.get(content_type)
    webp = content_type == "image/webp" and head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if (magic and not head.startswith(magic)) or (content_type == "image/webp" and not webp):
        raise InvalidInput(f"“{name}” is not the {extension.upper()} picture its name says.")
    return Checked(upload, name, extension, kind, content_type, size)


def files_check(files: list[UploadedFile]) -> list[Checked]:
    if not files:
        raise InvalidInput("Attach at least one file.")
    if len(files) > settings.ATTACHMENT_MAX_FILES:
        raise InvalidInput(f"A reply carries at most {settings.ATTACHMENT_MAX_FILES} files.")
    return [file_check(f) for f in files]


def ticket_reply_files(
    *, ticket_id: int, user: Agent, files: list[UploadedFile], text: str = ""
) -> list[Message]:
    """Queue a reply with files: its text first (if any), then each file, as messages
    that go out in that order (Celery, after commit: the first, which brings the next).

    Everything is checked before anything is stored: the files (`file_check`), the text,
    then the same rules as a text reply (`outbound.ticket_reply`: we own the thread, the
    ticket is the agent's or waiting, the window is open). Refused: InvalidInput or
    Conflict, no row, no file kept, no Graph call.
    """
    # Someone else's ticket is not found, whatever was sent with it.
    page_id = (
        Ticket.objects.filter(pk=ticket_id).values_list("conversation__page_id", flat=True).first()
    )
    if page_id is None or not page_visible(user, page_id):
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    checked = files_check(files)
    caption = outbound.text_clean(text) if text.strip() else ""
    stored: list[Attachment] = []
    try:
        with transaction.atomic():
            ticket = outbound.reply_ticket_lock(ticket_id, user)
            messages: list[Message] = []
            if caption:
                messages.append(outbound.outbound_create(ticket, user, caption))
            for item in checked:
                message = outbound.outbound_create(ticket, user, "")
                message.attachments = [{"type": item.kind, "url": "", "title": item.name}]
                message.save(update_fields=["attachments"])
                attachment = Attachment(
                    message=message,
                    name=item.name,
                    content_type=item.content_type,
                    size=item.size,
                    kind=item.kind,
                )
                attachment.file.save(
                    f"{uuid.uuid4().hex}.{item.extension}", item.upload, save=False
                )
                stored.append(attachment)
                attachment.save()
                if messages:
                    MessageOrder.objects.create(message=message, after=messages[-1])
                messages.append(message)
            # The first part now; each next one once the part before it is settled
            # (`followers_enqueue`), so that two workers never race for it; the re-drive
            # picks up a part whose task was lost, as for any reply.
            enqueue_on_commit(tasks.message_send, messages[0].pk)
    except BaseException:
        for attachment in stored:  # the rows are rolled back: so are their files
            attachment.file.delete(save=False)
        raise
    return messages


# --- Sending (called by outbound.message_send) -----------------------------------------


def order_check(message: Message) -> Literal["go", "wait"] | SendFailure:
    """May this part of a reply go now? "wait" while the part before it is not sent
    yet (its confirmation sends this one: `followers_enqueue`); a SendFailure when that
    part failed. Caller holds the conversation's lock."""
    order = MessageOrder.objects.filter(message=message).select_related("after").first()
    if order is None:
        return "go"
    before = order.after
    if before.status in (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ):
        return "go"
    if before.status == Message.Status.FAILED:
        return SendFailure(
            text="Not sent: the part of this reply before it was not sent. Retry that one "
            "first, then this one."
        )
    return "wait"


def followers_enqueue(message: Message) -> None:
    """`message` was sent or failed: the part of its reply after it may go (or fail)."""
    for follower_id in MessageOrder.objects.filter(after=message).values_list(
        "message_id", flat=True
    ):
        enqueue_on_commit(tasks.message_send, follower_id)


def attachment_upload(message_id: int) -> None:
    """Upload a file message's file to Meta unless it has a recent `attachment_id` (a
    text message: nothing to do). Raises GraphError. Outside any transaction and before
    the message is claimed (`outbound.message_send`): a large upload may take long."""
    attachment = (
        Attachment.objects.select_related("message__conversation__page")
        .filter(message_id=message_id)
        .first()
    )
    # A part that waits for the one before it (or will fail with it) is not uploaded
    # yet: `order_check` under the lock decides when it goes; this read only spares a
    # useless upload.
    if attachment is not None and order_check(attachment.message) == "go":
        _uploaded(attachment.message.conversation.page, attachment)


def attachment_for_send(page: Page, message: Message) -> dict[str, Any] | None:
    """The Send API's `attachment` for a file message (None for text), by the id of its
    upload (uploaded now if it has none, or an expired one). Raises GraphError from the
    upload (nothing was sent to the customer then)."""
    attachment = Attachment.objects.filter(message=message).first()
    if attachment is None:
        return None
    _uploaded(page, attachment)
    return {"type": attachment.kind, "payload": {"attachment_id": attachment.meta_attachment_id}}


def _uploaded(page: Page, attachment: Attachment) -> None:
    """Make sure the file has a recent Meta `attachment_id` (set on `attachment`)."""
    fresh = attachment.uploaded_at and timezone.now() - attachment.uploaded_at < UPLOAD_REUSE
    if not (attachment.meta_attachment_id and fresh):
        now = timezone.now()
        # One upload per file and 80 days: repeated answers come from its record.
        key = f"attachment_upload:{attachment.pk}:{int(now.timestamp()) // UPLOAD_REUSE_SECONDS}"

        def opened() -> IO[bytes]:
            return cast(IO[bytes], attachment.file.open("rb"))

        meta_id = graph.attachment_upload(
            page,
            key=key,
            kind=attachment.kind,
            upload=graph.FileUpload(
                name=attachment.name, content_type=attachment.content_type, open=opened
            ),
        )
        Attachment.objects.filter(pk=attachment.pk).update(
            meta_attachment_id=meta_id, uploaded_at=now
        )
        attachment.meta_attachment_id, attachment.uploaded_at = meta_id, now


UPLOAD_REUSE_SECONDS = int(UPLOAD_REUSE.total_seconds())


# --- Reading --------------------------------------------------------------------------


def attachment_get(*, user: Agent, attachment_id: int) -> Attachment:
    """A file, for an agent who may see its conversation's page; NotFound otherwise (the
    two are not told apart: no listing of what others have)."""
    attachment = (
        Attachment.objects.select_related("message__conversation").filter(pk=attachment_id).first()
    )
    if attachment is None or not page_visible(user, attachment.message.conversation.page_id):
        raise NotFound(f"Attachment {attachment_id} does not exist.")
    return attachment
