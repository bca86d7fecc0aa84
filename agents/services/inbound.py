"""Applying Messenger's events to the helpdesk: messages, echoes, receipts, handovers,
and the triggers that make the helpdesk ask for a conversation.

`messenger_event_handle` is `settings.MESSENGER_EVENT_HANDLER`: `webhooks` calls it
once per event, inside the transaction that records the event's dedupe key, so a
redelivered event changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings

from agents import realtime, tasks
from agents.locks import conversations_lock_by_psids
from agents.models import ControlState, Conversation, Message, Ticket, Trigger
from agents.services import csat, routing
from agents.services.contacts import conversation_lock_or_create
from agents.services.control import (
    handover_event_apply,
    handover_request_start,
    owner_check_on_standby,
)
from agents.services.group import (
    clocks_move,
    conversation_take,
    event_group,
    flush,
    message_store,
    mid_added,
    mid_stored,
)
from agents.services.outbound import outbound_confirm
from agents.services.state import app_label
from webhooks.events import (
    CHANNEL_STANDBY,
    DeliveryEvent,
    EchoEvent,
    Event,
    MessageEvent,
    PassThreadControlEvent,
    PostbackEvent,
    ReadEvent,
    RequestThreadControlEvent,
    TakeThreadControlEvent,
    timestamp_to_datetime,
)
from webhooks.models import Page
from webhooks.queue import enqueue_on_commit

OWN_METADATA = re.compile(r"^helpdesk:message=(\d+)$")
DEFAULT_TRIGGERS = (
    (Trigger.Kind.POSTBACK_TITLE, "Talk to a human"),
    (Trigger.Kind.QUICK_REPLY_PAYLOAD, "TALK_TO_HUMAN"),
    (Trigger.Kind.KEYWORD, "talk to a human"),
)
# Triggers count only while the helpdesk does not have, or is not getting, the thread.
TRIGGER_STATES = (ControlState.BOT, ControlState.IDLE, ControlState.TAKEN, ControlState.REQUESTED)


def messenger_event_handle(page: Page, event: Event) -> str | None:
    """Apply one parsed Messenger event; returns a note for the event log."""
    if isinstance(event, MessageEvent | PostbackEvent):
        return message_record_inbound(page, event)
    if isinstance(event, EchoEvent):
        return message_record_echo(page, event)
    # A handover or a receipt reads and changes messages: those its group keeps are
    # written first (`group.flush`; nothing outside a group).
    flush()
    if isinstance(
        event, PassThreadControlEvent | TakeThreadControlEvent | RequestThreadControlEvent
    ):
        return handover_event_apply(page, event)
    if isinstance(event, ReadEvent | DeliveryEvent):
        return receipt_apply(page, event)
    return "not handled"


@contextmanager
def messenger_events_prepare(pages: Mapping[str, Page], events: Sequence[Event]) -> Iterator[None]:
    """`settings.MESSENGER_GROUP_PREPARE_HANDLER`: around a group of events applied in
    one transaction (`webhooks.services.deliveries_process`). Locks the conversations
    they will lock, in one order (`locks.conversations_lock_by_psids`), and looks up
    which of their mids are stored, in two statements; the events then use both
    (`services.group`) instead of a statement each."""
    locked = conversations_lock_by_psids(
        (pages[event.page_id].pk, event.psid)
        for event in events
        if event.psid and event.page_id in pages
    )
    mids = {
        event.mid
        for event in events
        if isinstance(event, MessageEvent | PostbackEvent | EchoEvent) and event.mid
    }
    if mids:
        stored = {
            mid
            for mid in Message.objects.filter(mid__in=mids).order_by().values_list("mid", flat=True)
            if mid
        }
    else:
        stored = set()
    conversations = {(c.page_id, c.contact.psid): c for c in locked}
    with event_group(conversations, asked=mids, stored=stored):
        yield
        flush()  # what the group's messages kept, in its transaction


def page_defaults_ensure(page_pk: int) -> None:
    """Give a newly connected page the default trigger list (once; admins edit it after).

    `settings.MESSENGER_PAGE_CONNECTED_HANDLER`. Emits `pages.changed`: open inbox
    sockets recompute which pages they follow.
    """
    realtime.broadcast_on_commit("pages.changed")
    page = Page.objects.get(pk=page_pk)
    if (
        not page.outbox_paused_reason
        and Message.objects.filter(
            conversation__page=page,
            direction=Message.Direction.OUTBOUND,
            status=Message.Status.PENDING,
        ).exists()
    ):
        # A new token resumed a paused page: what waited goes out, in order.
        enqueue_on_commit(tasks.outbox_resume, page_pk)
    if Trigger.objects.filter(page=page).exists():
        return
    Trigger.objects.bulk_create(
        [Trigger(page=page, kind=kind, value=value) for kind, value in DEFAULT_TRIGGERS]
    )


def _triggers_active(page: Page) -> list[Trigger]:
    """The page's active triggers, read once per `Page` object: the processing reads the
    pages afresh for each task, so an edit counts from the next task on."""
    cached: list[Trigger] | None = getattr(page, "_triggers_active", None)
    if cached is None:
        cached = list(Trigger.objects.filter(page=page, active=True))
        setattr(page, "_triggers_active", cached)  # noqa: B010 -- not a model field
    return cached


def trigger_match(page: Page, event: MessageEvent | PostbackEvent) -> str | None:
    """The trigger that this event matches, described, or None."""
    for trigger in _triggers_active(page):
        value = trigger.value.strip().casefold()
        if not value:
            continue
        if isinstance(event, PostbackEvent):
            if (
                trigger.kind == Trigger.Kind.POSTBACK_TITLE
                and event.title.strip().casefold() == value
            ):
                return f"postback '{event.title}'"
            continue
        if (
            trigger.kind == Trigger.Kind.QUICK_REPLY_PAYLOAD
            and event.quick_reply_payload
            and event.quick_reply_payload.strip().casefold() == value
        ):
            return f"quick reply '{event.quick_reply_payload}'"
        if trigger.kind == Trigger.Kind.KEYWORD and re.search(
            rf"(?<!\w){re.escape(value)}(?!\w)", event.text.casefold()
        ):
            return f"keyword '{trigger.value}'"
    return None


def _mid_stored(mid: str) -> bool:
    """Whether a message with this mid is stored (its event's group knows, else ask)."""
    known = mid_stored(mid)
    if known is not None:
        return known
    return Message.objects.filter(mid=mid).exists()


def _ticket_for_new_message(
    conversation: Conversation, *, timestamp: int, from_customer: bool = False
) -> Ticket | None:
    """The ticket a new message belongs to: the open one, while we own the thread, unless
    the message is older than the handover (a late delivery: it is context). While the
    thread is being handed back, what the customer says still answers the agent: it is
    the closed ticket's."""
    return _ticket_if_after_handover(
        _ticket_current(conversation, from_customer=from_customer), timestamp
    )


def _ticket_if_after_handover(ticket: Ticket | None, timestamp: int) -> Ticket | None:
    """`ticket`, unless a message of `timestamp` is older than its handover (context)."""
    if ticket is None or timestamp < ticket.handover_timestamp:
        return None
    return ticket


def _ticket_current(conversation: Conversation, *, from_customer: bool) -> Ticket | None:
    """`_ticket_for_new_message`'s ticket, whatever the message's time. One query."""
    if conversation.control_state not in (ControlState.AGENT, ControlState.RETURNING):
        return None
    tickets = Ticket.objects.filter(conversation=conversation)
    ticket = tickets.exclude(status=Ticket.Status.CLOSED).first()
    if ticket is None and from_customer and conversation.control_state == ControlState.RETURNING:
        ticket = tickets.filter(status=Ticket.Status.CLOSED).order_by("-closed_at", "-id").first()
    return ticket


def _touch(conversation: Conversation, *, timestamp: int, from_user: bool) -> None:
    """Move the conversation's clocks forward, never back (`group.clocks_move`)."""
    clocks_move(conversation, timestamp_to_datetime(timestamp), from_user=from_user)


def message_record_inbound(page: Page, event: MessageEvent | PostbackEvent) -> str:
    """A message or button tap from the user: context, or a ticket message; on standby
    a trigger may ask for the thread. Caller is in a transaction."""
    # Locked like the handover path: a message and the pass that opens a ticket,
    # processed concurrently, are applied one after the other.
    conversation = conversation_lock_or_create(page=page, psid=event.psid)
    current = _ticket_current(conversation, from_customer=True)
    # A message older than the handover is context (`_ticket_for_new_message`).
    ticket = _ticket_if_after_handover(current, event.timestamp)
    fields: dict[str, Any]
    if isinstance(event, MessageEvent):
        fields = {
            "mid": event.mid,
            "text": event.text,
            "attachments": [a.as_dict() for a in event.attachments],
            "quick_reply_payload": event.quick_reply_payload,
        }
    else:
        fields = {"mid": event.mid or None, "text": event.title, "postback_title": event.title}
    if fields["mid"] and _mid_stored(fields["mid"]):
        return "duplicate mid"
    message = Message(
        conversation=conversation,
        ticket=ticket,
        direction=Message.Direction.INBOUND,
        author_kind=Message.Author.CUSTOMER,
        channel=event.channel,
        timestamp=event.timestamp,
        status=Message.Status.RECEIVED,
        **fields,
    )

    def stored(message: Message) -> None:
        realtime.broadcast_on_commit(
            "message.created",
            page_pk=conversation.page_id,
            conversation_id=conversation.pk,
            message_id=message.pk,
        )
        if ticket is not None:
            realtime.broadcast_on_commit(
                "ticket.updated",
                page_pk=conversation.page_id,
                ticket_id=ticket.pk,
                conversation_id=conversation.pk,
            )

    message_store(message, stored)  # in a group, with the group's other messages
    mid_added(message.mid or "")
    _touch(conversation, timestamp=event.timestamp, from_user=True)
    note = "context" if ticket is None else "ticket message"
    if current is not None and current.notice_owed and current.status != Ticket.Status.CLOSED:
        # Nobody can answer, and they could not be told (routing.notice_owed_send).
        flush()  # their message first, the notice after it
        note += "; " + routing.notice_owed_send(current)
    # CSAT (issue 11, point 9): a tap on the rating question (on standby too) or a typed
    # 1 to 5 while the rating is awaited.
    if csat.csat_may_answer(conversation, message):
        flush()  # the rating reads and adds messages: the group's are written first
        rated = csat.csat_answer_inbound(conversation, message)
        if rated is not None:
            return f"{note}; {rated}"
    if event.channel == CHANNEL_STANDBY and conversation.control_state == ControlState.AGENT:
        note += "; " + owner_check_on_standby(conversation, timestamp=event.timestamp)
    if event.channel == CHANNEL_STANDBY and conversation.control_state in TRIGGER_STATES:
        reason = trigger_match(page, event)
        if reason is not None:
            flush()  # the request reads the conversation's messages and clocks
            refusal = handover_request_start(conversation_id=conversation.pk, reason=reason)
            note += f"; trigger {reason}: " + (
                "a request is already pending" if refusal else "control requested"
            )
    return note


def message_record_echo(page: Page, event: EchoEvent) -> str:
    """A copy of what the page sent: ours confirms our send; the bot's or the Page
    Inbox's joins the timeline. Caller is in a transaction."""
    conversation = conversation_lock_or_create(page=page, psid=event.psid)
    if event.app_id == settings.MESSENGER_APP_ID:
        flush()  # confirming our send reads and changes messages: the group's first
        own = Message.objects.filter(mid=event.mid).first()
        match = OWN_METADATA.match(event.metadata)
        if own is None and match:
            own = Message.objects.filter(pk=int(match.group(1)), conversation=conversation).first()
        if own is not None:
            outbound_confirm(own.pk, mid=event.mid, by_echo=True)
            return "own echo matched"
    elif _mid_stored(event.mid):
        return "duplicate mid"
    if event.app_id == settings.MESSENGER_APP_ID:
        author = Message.Author.AGENT
    elif event.app_id == settings.PAGE_INBOX_APP_ID:
        author = Message.Author.PAGE_INBOX
    else:
        author = Message.Author.BOT
    message = Message(
        conversation=conversation,
        ticket=_ticket_for_new_message(conversation, timestamp=event.timestamp),
        direction=Message.Direction.OUTBOUND,
        author_kind=author,
        app_id=event.app_id,
        mid=event.mid,
        text=event.text,
        attachments=[a.as_dict() for a in event.attachments],
        channel=event.channel,
        timestamp=event.timestamp,
        status=Message.Status.SENT,
    )
    message_store(
        message,
        lambda message: realtime.broadcast_on_commit(
            "message.created",
            page_pk=conversation.page_id,
            conversation_id=conversation.pk,
            message_id=message.pk,
        ),
    )
    mid_added(message.mid or "")
    _touch(conversation, timestamp=event.timestamp, from_user=False)
    return f"echo from {app_label(page, event.app_id)}"


def receipt_apply(page: Page, event: ReadEvent | DeliveryEvent) -> str:
    """Delivery and read receipts move our outbound messages' status forward.

    Under the conversation's lock, as `outbound.outbound_confirm`: a message being
    confirmed meanwhile reads the new watermark, or is already sent when this looks."""
    conversation = conversation_take(page.pk, event.psid) or (
        Conversation.objects.select_for_update(of=("self",))
        .filter(page=page, contact__psid=event.psid)
        .first()
    )
    if conversation is None:
        return "receipt for an unknown conversation"
    # Kept on the conversation too: a receipt can overtake the Send API's answer (the
    # customer's phone shows the message before our worker stores that it was sent);
    # outbound_confirm applies the watermarks to the message it confirms.
    field = "read_watermark" if isinstance(event, ReadEvent) else "delivered_watermark"
    Conversation.objects.filter(pk=conversation.pk, **{f"{field}__lt": event.watermark}).update(
        **{field: event.watermark}
    )
    outbound = Message.objects.filter(
        conversation=conversation, direction=Message.Direction.OUTBOUND
    )
    if isinstance(event, ReadEvent):
        changed = outbound.filter(
            timestamp__lte=event.watermark,
            status__in=[Message.Status.SENT, Message.Status.DELIVERED],
        ).update(status=Message.Status.READ)
    else:
        changed = (
            outbound.filter(status=Message.Status.SENT)
            .filter(timestamp__lte=event.watermark)
            .update(status=Message.Status.DELIVERED)
        )
        if event.mids:
            changed += outbound.filter(status=Message.Status.SENT, mid__in=event.mids).update(
                status=Message.Status.DELIVERED
            )
    if changed:
        realtime.broadcast_on_commit(
            "conversation.updated", page_pk=conversation.page_id, conversation_id=conversation.pk
        )
    return f"{changed} message(s) marked {event.kind}"
