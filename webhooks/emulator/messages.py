"""The Send API's `message` parameter (messenger-platform.md §4.2): validated, then
normalized for the transcript (what the customer page shows) and the echo (what apps get).

Limits are Meta's: text ≤ 2000, quick replies ≤ 13 (title ≤ 20, payload ≤ 1000), button
template ≤ 3 buttons (title ≤ 20), generic template ≤ 10 elements, metadata ≤ 1000.
The emulator never fetches attachment URLs (no network): it only checks they are URLs.
Uploaded files (`platform.uploads`, by attachment id) are served by the emulator.
"""

from __future__ import annotations

import re
from typing import Any

from webhooks.emulator.errors import invalid

MEDIA_TYPES = frozenset({"image", "audio", "video", "file"})
URL = re.compile(r"^https?://\S+$")


def message_content(
    message: dict[str, Any],
    *,
    public_url: str,
    reusable_attachments: set[str],
    uploads: dict[str, tuple[str, Any]] | None = None,
) -> dict[str, Any]:
    """Validate `message` (§4.2) and normalize it for the transcript and the echo."""
    allowed = {"text", "attachment", "quick_replies", "metadata", "sticker_id"}
    unknown = set(message) - allowed
    if unknown:
        raise invalid(f"Unknown param message[{sorted(unknown)[0]}]")
    present = [k for k in ("text", "attachment", "sticker_id") if message.get(k) is not None]
    if len(present) != 1:
        raise invalid("message must have exactly one of text, attachment, sticker_id")
    content: dict[str, Any] = {
        "text": None,
        "attachments": [],
        "echo_attachments": [],
        "cards": [],
        "buttons": [],
        "quick_replies": [],
        "template": False,
        "reusable": False,
    }
    if "text" in present:
        text = message["text"]
        if not isinstance(text, str) or not text.strip():
            raise invalid("param message[text] must be a non-empty string")
        if len(text) > 2000:
            raise invalid("Length of param message[text] must be less than or equal to 2000")
        content["text"] = text
    elif "sticker_id" in present:
        sticker = str(message["sticker_id"])
        if not sticker.isdigit():
            raise invalid("param message[sticker_id] must be a sticker id")
        url = f"{public_url}/emulator/static/sticker.svg"
        content["attachments"] = [{"type": "sticker", "url": url}]
        content["echo_attachments"] = [
            {"type": "image", "payload": {"url": url, "sticker_id": int(sticker)}}
        ]
    else:
        _attachment(message["attachment"], content, public_url, reusable_attachments, uploads or {})
    replies = message.get("quick_replies")
    if replies is not None:
        content["quick_replies"] = _quick_replies(replies)
    return content


def _attachment(
    attachment: Any,
    content: dict[str, Any],
    public_url: str,
    reusable_attachments: set[str],
    uploads: dict[str, tuple[str, Any]],
) -> None:
    if not isinstance(attachment, dict):
        raise invalid("param message[attachment] must be an object")
    kind = attachment.get("type")
    payload = attachment.get("payload")
    if not isinstance(payload, dict):
        raise invalid("param message[attachment][payload] is required")
    if kind in MEDIA_TYPES:
        url, attachment_id = payload.get("url"), payload.get("attachment_id")
        file_name = ""
        if attachment_id is not None:
            if str(attachment_id) not in reusable_attachments:
                raise invalid("Attachment Id is invalid or not owned by this page", 2018074)
            uploaded = uploads.get(str(attachment_id))
            if uploaded is None:
                url = f"{public_url}/emulator/static/attachment.svg"
            else:
                # A file an app uploaded: the customer page shows the file itself.
                url = f"{public_url}/emulator/media/{attachment_id}"
                file_name = str(uploaded[1].name)
        elif not isinstance(url, str) or not URL.match(url):
            # The emulator never fetches URLs (no network): it only checks them.
            raise invalid("param message[attachment][payload][url] must be a URL")
        content["reusable"] = payload.get("is_reusable") is True and attachment_id is None
        content["attachments"] = [
            {"type": kind, "url": url, **({"title": file_name} if file_name else {})}
        ]
        content["echo_attachments"] = [{"type": kind, "payload": {"url": url}}]
        return
    if kind != "template":
        raise invalid(
            "param message[attachment][type] must be image, audio, video, file or template"
        )
    template_type = payload.get("template_type")
    if template_type == "button":
        text = payload.get("text")
        if not isinstance(text, str) or not text or len(text) > 640:
            raise invalid("param payload[text] is required (at most 640 characters)")
        buttons = payload.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise invalid("param payload[buttons] must have 1 to 3 buttons")
        content["text"] = text
        content["buttons"] = [_button(b) for b in buttons]
    elif template_type == "generic":
        elements = payload.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            raise invalid("param payload[elements] must have 1 to 10 elements")
        for index, element in enumerate(elements):
            if not isinstance(element, dict):
                raise invalid("param payload[elements] must be objects")
            title = element.get("title")
            if not isinstance(title, str) or not title or len(title) > 80:
                raise invalid("param elements[title] is required (at most 80 characters)")
            buttons = element.get("buttons") or []
            if not isinstance(buttons, list) or len(buttons) > 3:
                raise invalid("param elements[buttons] has at most 3 buttons")
            content["cards"].append(
                {
                    "title": title,
                    "subtitle": str(element.get("subtitle") or "")[:80],
                    "image_url": str(element.get("image_url") or ""),
                }
            )
            content["buttons"] += [{**_button(b), "card": index} for b in buttons]
    else:
        raise invalid("param payload[template_type] must be button or generic")
    content["template"] = True
    # Echoes of templates carry the template back as an attachment (§2.3).
    content["echo_attachments"] = [
        {"title": None, "url": None, "type": "template", "payload": payload}
    ]


def _button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict):
        raise invalid("buttons must be objects")
    kind, title = button.get("type"), button.get("title")
    if not isinstance(title, str) or not title or len(title) > 20:
        raise invalid("param buttons[title] is required (at most 20 characters)")
    if kind == "postback":
        payload = button.get("payload")
        if not isinstance(payload, str) or not payload or len(payload) > 1000:
            raise invalid("param buttons[payload] is required (at most 1000 characters)")
        return {"type": "postback", "title": title, "payload": payload}
    if kind == "web_url":
        url = button.get("url")
        if not isinstance(url, str) or not URL.match(url):
            raise invalid("param buttons[url] must be a URL")
        return {"type": "web_url", "title": title, "url": url}
    if kind == "phone_number":
        return {"type": "phone_number", "title": title, "payload": str(button.get("payload"))}
    raise invalid("param buttons[type] must be postback, web_url or phone_number")


def _quick_replies(replies: Any) -> list[dict[str, Any]]:
    if not isinstance(replies, list) or not 1 <= len(replies) <= 13:
        raise invalid("param message[quick_replies] must have 1 to 13 items")
    result = []
    for reply in replies:
        if not isinstance(reply, dict):
            raise invalid("quick replies must be objects")
        kind = reply.get("content_type", "text")
        if kind in ("user_phone_number", "user_email"):
            result.append({"content_type": kind, "title": kind, "payload": kind})
            continue
        if kind != "text":
            raise invalid(
                "param quick_replies[content_type] must be text, user_phone_number or user_email"
            )
        title, payload = reply.get("title"), reply.get("payload")
        if not isinstance(title, str) or not title or len(title) > 20:
            raise invalid("param quick_replies[title] is required (at most 20 characters)")
        if isinstance(payload, int) and not isinstance(payload, bool):
            payload = str(payload)
        if not isinstance(payload, str) or not payload or len(payload) > 1000:
            raise invalid("param quick_replies[payload] is required (at most 1000 characters)")
        result.append({"content_type": "text", "title": title, "payload": payload})
    return result
