"""What people do: the customer (a Messenger user) and a person in the Page Inbox.

The customer page's user is created, sends text, taps quick replies and postback
buttons, and reads; a Page admin replies from the Inbox. Refusals are `EmulatorError`
(the emulator's own API answers them), not Graph errors. Every function expects its
caller to hold `Platform.lock` and returns the webhooks the action causes.
"""

from __future__ import annotations

from typing import Any

from webhooks.emulator.config import PAGE_INBOX_APP_ID, PageConfig
from webhooks.emulator.errors import EmulatorError
from webhooks.emulator.platform.ownership import refresh, set_owner
from webhooks.emulator.platform.routing import echo_hooks, route, user_event
from webhooks.emulator.platform.send_api import WINDOW_MS
from webhooks.emulator.platform.state import PlatformState, Result, Thread, User, Webhook
from webhooks.emulator.platform.thread_control import take


def user_create(
    state: PlatformState, *, page_id: str, first_name: str, last_name: str, psid: str | None
) -> User:
    """Add a Messenger user of a page (PSIDs are page-scoped numeric strings)."""
    page = state.page_or_404(page_id)
    first_name, last_name = first_name.strip()[:50], last_name.strip()[:50]
    if not first_name:
        raise EmulatorError("first_name is required")
    if psid is None:
        while f"{state.next_psid}" in {p for (_, p) in state.users}:
            state.next_psid += 1
        psid = str(state.next_psid)
        state.next_psid += 1
    elif not psid.isdigit():
        raise EmulatorError("a PSID is a numeric string")
    if (page_id, psid) in state.users:
        raise EmulatorError(f"user {psid} already exists on page {page_id}")
    user = User(psid=psid, page_id=page_id, first_name=first_name, last_name=last_name)
    state.users[(page_id, psid)] = user
    # [legacy] the primary receiver owns every thread by default; CR starts idle.
    owner = page.primary_app_id if page.mode == "legacy" else None
    state.threads[(page_id, psid)] = Thread(page_id=page_id, psid=psid, owner=owner)
    return user


def user_message(
    state: PlatformState,
    *,
    page_id: str,
    psid: str,
    text: str,
    quick_reply: tuple[str, int] | None,
) -> Result:
    """The user sends text, or taps quick reply `index` of message `mid`."""
    page = state.page_or_404(page_id)
    thread = state.thread_or_404(page_id, psid)
    now = state.clock.now_ms()
    refresh(state, thread, now)
    message: dict[str, Any] = {"mid": state.mid()}
    payload = None
    if quick_reply is not None:
        reply = find_choice(thread, quick_reply, "quick_replies")
        text, payload = reply["title"], reply["payload"]
        message["text"] = text
        message["quick_reply"] = {"payload": payload}
    else:
        text = text.strip()
        if not text:
            raise EmulatorError("text is required")
        if len(text) > 2000:
            raise EmulatorError("text is limited to 2000 characters")
        message["text"] = text
    note = user_opens(state, page, thread, now)
    entry = state.append(
        thread,
        {
            "kind": "message",
            "author": "user",
            "mid": message["mid"],
            "text": text,
            "quick_reply_payload": payload,
            "timestamp": now,
        },
    )
    if note:
        state.note(thread, now, note)
    event = user_event(thread, now, message=message)
    return Result(entry, route(state, page, thread, event, "messages", now))


def user_postback(state: PlatformState, *, page_id: str, psid: str, mid: str, index: int) -> Result:
    """The user taps postback button `index` of message `mid`."""
    page = state.page_or_404(page_id)
    thread = state.thread_or_404(page_id, psid)
    now = state.clock.now_ms()
    refresh(state, thread, now)
    button = find_choice(thread, (mid, index), "buttons")
    if button.get("type") != "postback":
        raise EmulatorError("that button is not a postback button")
    note = user_opens(state, page, thread, now)
    postback_mid = state.mid()
    entry = state.append(
        thread,
        {
            "kind": "postback",
            "author": "user",
            "mid": postback_mid,
            "text": button["title"],
            "postback_payload": button["payload"],
            "timestamp": now,
        },
    )
    if note:
        state.note(thread, now, note)
    event = user_event(
        thread,
        now,
        postback={
            "mid": postback_mid,
            "title": button["title"],
            "payload": button["payload"],
            "_button_mid": mid,  # routing only, removed before delivery
        },
    )
    return Result(entry, route(state, page, thread, event, "messaging_postbacks", now))


def user_read(state: PlatformState, *, page_id: str, psid: str) -> Result:
    """The user's Messenger shows the page's messages: delivery, then read (§2.7)."""
    page = state.page_or_404(page_id)
    thread = state.thread_or_404(page_id, psid)
    now = state.clock.now_ms()
    refresh(state, thread, now)
    unseen = [
        e
        for e in thread.transcript
        if e["kind"] == "message"
        and e["author"] != "user"
        and e["timestamp"] > thread.delivered_watermark
    ]
    if not unseen:
        return Result({"delivered": []})
    watermark = max(e["timestamp"] for e in unseen)
    thread.delivered_watermark = watermark
    # Meta's delivery example carries no timestamp (§2.7).
    delivery = {
        "sender": {"id": psid},
        "recipient": {"id": page_id},
        "delivery": {"mids": [e["mid"] for e in unseen], "watermark": watermark},
    }
    read = user_event(thread, now, read={"watermark": watermark})
    hooks = route(state, page, thread, delivery, "message_deliveries", now)
    hooks += route(state, page, thread, read, "message_reads", now)
    return Result({"delivered": [e["mid"] for e in unseen]}, hooks)


def user_opens(state: PlatformState, page: PageConfig, thread: Thread, now: int) -> str | None:
    """A user message or tap: opens the window; routes an idle CR thread.

    Returns the routing note for the transcript (added after the user's entry).
    """
    thread.last_user_at = now
    thread.typing_app_id = None
    if page.mode == "cr" and thread.owner is None and page.primary_app_id:
        # [doc] §6.2: organic messages on an idle thread go to the default app,
        # which then controls the thread. [conv] no webhook announces it.
        set_owner(thread, page.primary_app_id, now)
        return f"Routed to {state.app_name(page.primary_app_id)} (default app)"
    return None


def find_choice(thread: Thread, ref: tuple[str, int], kind: str) -> dict[str, Any]:
    """Quick reply or button (`kind`) number `index` of the page's message `mid`."""
    mid, index = ref
    for entry in thread.transcript:
        if entry.get("mid") == mid and entry["author"] != "user":
            choices: list[dict[str, Any]] = entry.get(kind) or []
            if 0 <= index < len(choices):
                return choices[index]
            break
    raise EmulatorError(f"no such {kind[:-1].replace('_', ' ')} on message {mid}")


def inbox_reply(state: PlatformState, *, page_id: str, psid: str, text: str) -> Result:
    """A person answers from the Page Inbox: the Inbox takes control, then sends.

    §6.2: replying in a conversation the Inbox does not control makes it take control.
    """
    page = state.page_or_404(page_id)
    thread = state.thread_or_404(page_id, psid)
    now = state.clock.now_ms()
    refresh(state, thread, now)
    text = text.strip()
    if not text:
        raise EmulatorError("text is required")
    if now - (thread.last_user_at or -WINDOW_MS - 1) > WINDOW_MS:
        raise EmulatorError("the 24-hour window is closed", status=409)
    hooks: list[Webhook] = []
    if page.mode != "cr-zero-config":
        hooks += take(state, PAGE_INBOX_APP_ID, page, thread, None, now)
    mid = state.mid()
    thread.sent_by[mid] = PAGE_INBOX_APP_ID
    entry = state.append(
        thread,
        {
            "kind": "message",
            "author": "inbox",
            "app_id": PAGE_INBOX_APP_ID,
            "app_name": "Page Inbox",
            "mid": mid,
            "text": text,
            "attachments": [],
            "cards": [],
            "buttons": [],
            "quick_replies": [],
            "persona": None,
            "timestamp": now,
        },
    )
    echo = {
        "sender": {"id": page_id},
        "recipient": {"id": psid},
        "timestamp": now,
        "message": {
            "is_echo": True,
            "app_id": int(PAGE_INBOX_APP_ID),
            "mid": mid,
            "text": text,
        },
    }
    hooks += echo_hooks(state, page, thread, echo, now)
    return Result(entry, hooks)
