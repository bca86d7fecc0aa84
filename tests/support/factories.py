"""Rows a test needs to exist, made directly: no webhook, no task, no Graph call.

Plain functions with keyword arguments; each saves and returns its row, with defaults
like those the pipeline leaves (a waiting ticket in a conversation the helpdesk owns,
a fresh contact profile, an open messaging window). They write no audit rows
(`ControlTransition`, `TicketEvent`) and send no real-time events: a test about how
state comes about sends signed webhooks instead (the `deliver` fixture).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from agents.auth import token_create
from agents.models import Agent, Contact, ControlState, Conversation, Message, Ticket
from agents.services.state import now_ms
from tests.support import payloads
from webhooks.events import timestamp_to_datetime
from webhooks.models import Page
from webhooks.services import page_connect

PASSWORD = "pw-12345678"
# Before the first timestamp of the `clock` fixture (a minute ago): webhooks a test
# sends afterwards are newer than the handover.
HANDOVER_AGO_MS = 120_000
_NOW: Any = object()  # "now", evaluated when the row is made


def agent(username: str, *, password: str = PASSWORD, **extra: Any) -> Agent:
    """A staff user with an API token; the token itself is `agent.api_token`."""
    user = get_user_model().objects.create_user(
        username=username, password=password, is_staff=True, **extra
    )
    user.api_token = token_create(user=user)  # type: ignore[attr-defined]
    return user


def page(
    *,
    page_id: str = payloads.PAGE_ID,
    name: str = "Acme",
    access_token: str = "page-token-secret",
    bot_app_id: str = payloads.BOT_APP_ID,
    **extra: Any,
) -> Page:
    """A connected page, through `page_connect` (its default triggers; `pages.changed`
    after commit)."""
    connected, _ = page_connect(
        page_id=page_id, access_token=access_token, bot_app_id=bot_app_id, name=name, **extra
    )
    return connected


def contact(
    *,
    page: Page,
    psid: str = payloads.PSID,
    first_name: str = "Ada",
    last_name: str = "Lovelace",
    profile_fetched_at: datetime | None = _NOW,
    **fields: Any,
) -> Contact:
    """A contact whose profile is fresh: a webhook for it fetches no profile."""
    if profile_fetched_at is _NOW:
        profile_fetched_at = timezone.now()
    return Contact.objects.create(
        page=page,
        psid=psid,
        first_name=first_name,
        last_name=last_name,
        profile_fetched_at=profile_fetched_at,
        **fields,
    )


def conversation(
    *,
    page: Page,
    psid: str = payloads.PSID,
    control_state: ControlState = ControlState.BOT,
    owner_app_id: str | None = None,
    last_user_message_at: datetime | None = _NOW,
    **fields: Any,
) -> Conversation:
    """A conversation (and its contact) in `control_state`; the user last wrote now
    unless told otherwise, so the messaging window is open. The owner defaults to the
    one the state implies (the bot, us, or nobody)."""
    if owner_app_id is None:
        owner_app_id = {
            ControlState.BOT: page.bot_app_id,
            ControlState.AGENT: settings.MESSENGER_APP_ID,
            ControlState.RETURNING: settings.MESSENGER_APP_ID,
            ControlState.REQUESTED: page.bot_app_id,
        }.get(control_state, "")
    if last_user_message_at is _NOW:
        last_user_message_at = timestamp_to_datetime(now_ms())  # event times are in ms
    return Conversation.objects.create(
        contact=contact(page=page, psid=psid),
        page=page,
        control_state=control_state,
        owner_app_id=owner_app_id,
        last_user_message_at=last_user_message_at,
        last_message_at=last_user_message_at,
        **fields,
    )


_new_conversation = conversation  # `ticket` and `message` take a `conversation` argument


def ticket(
    *,
    page: Page | None = None,
    conversation: Conversation | None = None,
    psid: str = payloads.PSID,
    status: Ticket.Status = Ticket.Status.WAITING,
    assignee: Agent | None = None,
    handover_timestamp: int | None = None,
    **fields: Any,
) -> Ticket:
    """A ticket; without `conversation`, in a new one of `page` that the helpdesk owns
    (or the bot again, for a closed ticket). Control came two minutes ago."""
    if conversation is None:
        if page is None:
            raise TypeError("ticket() needs a page or a conversation")
        conversation = _new_conversation(
            page=page,
            psid=psid,
            control_state=ControlState.BOT
            if status == Ticket.Status.CLOSED
            else ControlState.AGENT,
        )
    if status == Ticket.Status.CLOSED:
        fields.setdefault("closed_at", timezone.now())
    return Ticket.objects.create(
        conversation=conversation,
        status=status,
        assignee=assignee,
        handover_timestamp=now_ms() - HANDOVER_AGO_MS
        if handover_timestamp is None
        else handover_timestamp,
        **fields,
    )


_OUTBOUND = {Message.Author.BOT, Message.Author.PAGE_INBOX, Message.Author.AGENT}


def message(
    *,
    ticket: Ticket | None = None,
    conversation: Conversation | None = None,
    text: str = "hello",
    author_kind: Message.Author = Message.Author.CUSTOMER,
    timestamp: int | None = None,
    **fields: Any,
) -> Message:
    """A message in `ticket` (and its conversation), or context of `conversation` when
    no ticket is given. Direction and status follow the author: what the customer wrote
    is received, what the page sent is sent."""
    if conversation is None:
        if ticket is None:
            raise TypeError("message() needs a ticket or a conversation")
        conversation = ticket.conversation
    outbound = author_kind in _OUTBOUND
    fields.setdefault(
        "direction", Message.Direction.OUTBOUND if outbound else Message.Direction.INBOUND
    )
    fields.setdefault("status", Message.Status.SENT if outbound else Message.Status.RECEIVED)
    return Message.objects.create(
        conversation=conversation,
        ticket=ticket,
        text=text,
        author_kind=author_kind,
        timestamp=now_ms() if timestamp is None else timestamp,
        **fields,
    )
