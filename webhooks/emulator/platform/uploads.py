"""Files apps upload (messenger-platform.md §4.3): the Attachment Upload API
(`POST /me/message_attachments`, multipart `message` + `filedata`, answering
`{"attachment_id"}`) and `filedata` sent with a message on `POST /me/messages`.

Meta's limits, with its error shapes: up to 25 MB of any type (code 100, subcode
2018109 "attachment too big"); an empty file or one whose Content-Type does not fit
the attachment's type fails the upload (100/2018047); the type is one of image,
audio, video, file. Uploaded bytes are kept in memory (not in the state file) and
served at `/emulator/media/<attachment id>` so that the customer page shows them.
Callers hold `Platform.lock`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webhooks.emulator.errors import PlatformRefusal, invalid
from webhooks.emulator.platform.state import PlatformState

MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # §4.3: "up to 25 MB"
MEDIA_TYPES = frozenset({"image", "audio", "video", "file"})
TOO_BIG_SUBCODE = 2018109
UPLOAD_FAILED_SUBCODE = 2018047
TOO_BIG_MESSAGE = "(#100) Attachment size exceeds allowable limit"
UPLOAD_FAILED_MESSAGE = "(#100) Upload attachment failure."


@dataclass(frozen=True)
class Upload:
    """A file as an app sent it: its part's file name, Content-Type and bytes."""

    name: str
    content_type: str
    data: bytes


def too_big() -> PlatformRefusal:
    return invalid(TOO_BIG_MESSAGE.removeprefix("(#100) "), TOO_BIG_SUBCODE)


def upload_check(kind: str, upload: Upload) -> None:
    """Meta's checks of an uploaded file for an attachment of type `kind`."""
    if len(upload.data) > MAX_UPLOAD_BYTES:
        raise too_big()
    if not upload.data:
        raise invalid(UPLOAD_FAILED_MESSAGE.removeprefix("(#100) "), UPLOAD_FAILED_SUBCODE)
    major = upload.content_type.split("/", 1)[0].lower()
    # Audio "must use type audio" (the saving-assets page); images and video alike.
    if kind in ("image", "audio", "video") and major != kind:
        raise invalid(
            f"Upload attachment failure: a {kind} needs a {kind}/* Content-Type, "
            f"not {upload.content_type or 'none'}",
            UPLOAD_FAILED_SUBCODE,
        )


def media_url(state: PlatformState, attachment_id: str) -> str:
    return f"{state.public_url}/emulator/media/{attachment_id}"


def upload_store(state: PlatformState, kind: str, upload: Upload, *, reusable: bool) -> str:
    """Keep the file under a new attachment id (reusable ones may be sent again)."""
    attachment_id = state.numeric_id()
    state.uploads[attachment_id] = (kind, upload)
    if reusable:
        state.reusable_attachments.add(attachment_id)
    return attachment_id


def filedata_param(params: dict[str, Any]) -> Upload | None:
    value = params.get("filedata")
    if value is None:
        return None
    if not isinstance(value, Upload):
        # A string is not a file part (Meta's curl samples use -F filedata=@path).
        raise invalid("Param filedata must be a file upload")
    return value
