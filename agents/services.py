"""The helpdesk's business rules: thread control, tickets, messages.

Every state change locks its rows (agents/locks.py), checks the current state, writes
the change and its audit row in one transaction, and leaves the process (Celery,
Channels) only after commit.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from agents import realtime
from agents.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from agents.locks import conversation_lock, message_lock, ticket_lock
from agents.models import (
    Contact,
    ControlState,
    ControlTransition,
    Conversation,
    Message,
    Ticket,
    TicketEvent,
    Trigger,
)
from webhooks import graph
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
)
from webhooks.models import Page

logger = logging.getLogger(__name__)

MESSAGE_TEXT_LIMIT = 2000  # Messenger's limit for a text message
METADATA_LIMIT = 1000
STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
# Messenger shows a typing indicator for about 20 s or until the next message; one
# typing_on per conversation every 10 s keeps it up while an agent types.
TYPING_THROTTLE = timedelta(seconds=10)
OWN_METADATA = re.compile(r"^helpdesk:message=(\d+)$")
DEFAULT_TRIGGERS = (
    (Trigger.Kind.POSTBACK_TITLE, "Talk to a human"),
    (Trigger.Kind.QUICK_REPLY_PAYLOAD, "TALK_TO_HUMAN"),
    (Trigger.Kind.KEYWORD, "talk to a human"),
)


def now_ms() -> int:
    return int(time.time() * 1000)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _metadata(**fields: object) -> str:
    text = json.dumps({"source": "helpdesk", **fields}, separators=(",", ":"))
    return text[:METADATA_LIMIT]


# --- Pages and contacts ---------------------------------------------------------


def page_defaults_ensure(page_pk: int) -> None:
    """Give a newly connected page the default trigger list (once; admins edit it after).

    Emits `pages.changed`: open inbox sockets recompute which pages they follow.
    """
    realtime.broadcast_on_commit("pages.changed")
    page = Page.objects.get(pk=page_pk)
    if page.triggers.exists():
        return
    Trigger.objects.bulk_create(
        [Trigger(page=page, kind=kind, value=value) for kind, value in DEFAULT_TRIGGERS]
    )


def conversation_get_or_create(*, page: Page, psid: str) -> Conversation:
    """The conversation for (page, PSID), created with its contact on first sight.

    A contact whose profile is missing or older than PROFILE_CACHE_SECONDS gets it
    fetched after commit (the Graph call is keyed per cache period, so a burst of events
    makes one call).
    """
    try:
        with transaction.atomic():
            contact, _ = Contact.objects.get_or_create(page=page, psid=psid)
    except IntegrityError:
        contact = Contact.objects.get(page=page, psid=psid)
    fresh_after = timezone.now() - timedelta(seconds=settings.PROFILE_CACHE_SECONDS)
    if contact.profile_fetched_at is None or contact.profile_fetched_at <= fresh_after:
        from agents.tasks import contact_profile_refresh

        transaction.on_commit(lambda: _enqueue(contact_profile_refresh, contact.pk))
    try:
        with transaction.atomic():
            conversation, _ = Conversation.objects.get_or_create(
                contact=contact, defaults={"page": page}
            )
    except IntegrityError:
        conversation = Conversation.objects.get(contact=contact)
    return conversation


def contact_profile_refresh(*, contact_id: int) -> None:
    """Fetch name and picture from the User Profile API.

    A refusal (Meta does not always allow it) is recorded and the contact keeps its
    fallback name; transient errors are raised for the task to retry.
    """
    contact = Contact.objects.select_related("page").get(pk=contact_id)
    fresh_after = timezone.now() - timedelta(seconds=settings.PROFILE_CACHE_SECONDS)
    if contact.profile_fetched_at and contact.profile_fetched_at > fresh_after:
        return
    period = int(time.time() // settings.PROFILE_CACHE_SECONDS)
    try:
        profile = graph.user_profile(
            contact.page, psid=contact.psid, key=f"profile:{contact.pk}:{period}"
        )
    except graph.GraphError as exc:
        if exc.retryable:
            raise
        Contact.objects.filter(pk=contact.pk).update(
            profile_error=exc.describe()[:500], profile_fetched_at=timezone.now()
        )
        return
    Contact.objects.filter(pk=contact.pk).update(
        first_name=profile["first_name"][:200],
        last_name=profile["last_name"][:200],
        profile_pic=profile["profile_pic"][:2000],
        profile_error="",
        profile_fetched_at=timezone.now(),
    )
    conversation = Conversation.objects.filter(contact_id=contact.pk).first()
    if conversation:
        realtime.broadcast_on_commit("conversation.updated", conversation_id=conversation.pk)


# --- Thread control ---------------------------------------------------------------


def _transition(
    conversation: Conversation,
    *,
    to_state: str,
    cause: str,
    detail: str = "",
    metadata: str = "",
    event_timestamp: int | None = None,
    owner_app_id: str | None = None,
) -> None:
    """Change the thread-control state and write its audit row.

    The caller holds the conversation's lock (agents.locks.conversation_lock).
    """
    from_state = conversation.control_state
    conversation.control_state = to_state
    fields = ["control_state"]
    if owner_app_id is not None:
        conversation.owner_app_id = owner_app_id
        fields.append("owner_app_id")
    if event_timestamp is not None:
        conversation.control_event_timestamp = max(
            conversation.control_event_timestamp, event_timestamp
        )
        fields.append("control_event_timestamp")
    if metadata:
        conversation.control_metadata = metadata
        fields.append("control_metadata")
    if to_state == ControlState.REQUESTED:
        conversation.requested_at = timezone.now()
        fields.append("requested_at")
    conversation.save(update_fields=fields)
    ControlTransition.objects.create(
        conversation=conversation,
        from_state=from_state,
        to_state=to_state,
        cause=cause,
        detail=detail[:500],
        metadata=metadata,
        event_timestamp=event_timestamp,
    )
    realtime.broadcast_on_commit("conversation.updated", conversation_id=conversation.pk)


def _unclosed_ticket(conversation: Conversation) -> Ticket | None:
    return (
        Ticket.objects.select_for_update()
        .filter(conversation=conversation)
        .exclude(status=Ticket.Status.CLOSED)
        .first()
    )


def _ticket_event(ticket: Ticket, kind: str, *, actor=None, detail: str = "") -> None:
    TicketEvent.objects.create(ticket=ticket, kind=kind, actor=actor, detail=detail[:500])
    realtime.broadcast_on_commit(
        "ticket.updated", ticket_id=ticket.pk, conversation_id=ticket.conversation_id
    )


def _system_message(
    conversation: Conversation, text: str, *, timestamp: int, ticket: Ticket | None = None
) -> Message:
    message = Message.objects.create(
        conversation=conversation,
        ticket=ticket,
        direction=Message.Direction.INBOUND,
        author_kind=Message.Author.SYSTEM,
        text=text,
        timestamp=timestamp,
        status=Message.Status.RECEIVED,
    )
    realtime.broadcast_on_commit(
        "message.created", conversation_id=conversation.pk, message_id=message.pk
    )
    return message


def _app_label(page: Page, app_id: str) -> str:
    if app_id == page.bot_app_id:
        return "the bot"
    if app_id == settings.PAGE_INBOX_APP_ID:
        return "the Page Inbox"
    if app_id == settings.MESSENGER_APP_ID:
        return "the helpdesk"
    return f"app {app_id}" if app_id else "nobody (idle)"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _control_gained(conversation: Conversation, event: PassThreadControlEvent) -> str:
    """Control passed to us: the state becomes `agent`; a ticket opens or reopens.

    Caller holds the conversation lock.
    """
    _transition(
        conversation,
        to_state=ControlState.AGENT,
        cause=ControlTransition.Cause.WEBHOOK,
        detail=f"{_app_label(conversation.page, event.previous_owner_app_id)} passed control "
        "to the helpdesk",
        metadata=event.metadata,
        event_timestamp=event.timestamp,
        owner_app_id=event.new_owner_app_id,
    )
    ticket = _unclosed_ticket(conversation)
    if ticket is not None:
        ticket.flagged = False
        ticket.flag_reason = ""
        ticket.handover_metadata = event.metadata
        ticket.save(update_fields=["flagged", "flag_reason", "handover_metadata", "updated_at"])
        _ticket_event(ticket, "control_regained", detail=event.metadata)
        outcome = "control regained for the open ticket"
    else:
        window_start = timezone.now() - timedelta(seconds=settings.TICKET_REOPEN_WINDOW_SECONDS)
        ticket = (
            Ticket.objects.select_for_update()
            .filter(
                conversation=conversation, status=Ticket.Status.CLOSED, closed_at__gte=window_start
            )
            .order_by("-closed_at")
            .first()
        )
        if ticket is not None:
            ticket.status = Ticket.Status.WAITING
            ticket.assignee = None
            ticket.closed_at = None
            ticket.flagged = False
            ticket.flag_reason = ""
            ticket.handover_metadata = event.metadata
            ticket.handover_timestamp = event.timestamp
            ticket.save()
            _ticket_event(ticket, "reopened", detail=event.metadata)
            outcome = "ticket reopened"
        else:
            ticket = Ticket.objects.create(
                conversation=conversation,
                status=Ticket.Status.WAITING,
                handover_metadata=event.metadata,
                handover_timestamp=event.timestamp,
            )
            _ticket_event(ticket, "opened", detail=event.metadata)
            outcome = "ticket opened"
    # Deliveries are processed concurrently: what the user or the page sent after the
    # handover may have been stored before it, as context. It belongs to the ticket.
    Message.objects.filter(
        conversation=conversation, ticket__isnull=True, timestamp__gte=event.timestamp
    ).update(ticket=ticket)
    _system_message(
        conversation, "Control passed to the helpdesk.", timestamp=event.timestamp, ticket=ticket
    )
    return outcome


def _control_lost(
    conversation: Conversation, *, event: Event, new_owner: str, metadata: str, how: str
) -> str:
    """Another app has the thread now. Caller holds the conversation lock."""
    ticket = _unclosed_ticket(conversation)
    who = _app_label(conversation.page, new_owner)
    to_state = ControlState.TAKEN if ticket is not None else ControlState.BOT
    if new_owner == "" and ticket is None:
        to_state = ControlState.IDLE
    _transition(
        conversation,
        to_state=to_state,
        cause=ControlTransition.Cause.WEBHOOK,
        detail=f"{who} {how} the conversation",
        metadata=metadata,
        event_timestamp=event.timestamp,
        owner_app_id=new_owner,
    )
    if ticket is not None:
        ticket.flagged = True
        ticket.flag_reason = f"{_sentence(who)} {how} the conversation; replies are locked."
        ticket.save(update_fields=["flagged", "flag_reason", "updated_at"])
        _ticket_event(ticket, "control_lost", detail=ticket.flag_reason)
        _system_message(
            conversation,
            f"{_sentence(who)} {how} the conversation.",
            timestamp=event.timestamp,
            ticket=ticket,
        )
        return "control lost; ticket flagged"
    return "control lost"


def _handover_event_apply(page: Page, event: Event) -> str:
    our_app = settings.MESSENGER_APP_ID
    conversation = conversation_get_or_create(page=page, psid=event.psid)
    with transaction.atomic():
        conversation = conversation_lock(conversation.pk)
        if isinstance(event, RequestThreadControlEvent):
            # Someone asks us (the owner) for the thread: tell the agents, change nothing.
            ticket = _unclosed_ticket(conversation)
            who = _app_label(page, event.requested_owner_app_id)
            if ticket is not None:
                _ticket_event(ticket, "control_requested_by_other", detail=event.metadata)
                _system_message(
                    conversation,
                    f"{_sentence(who)} asks for the conversation.",
                    timestamp=event.timestamp,
                    ticket=ticket,
                )
            return f"{who} requested control"
        if event.timestamp < conversation.control_event_timestamp:
            return "stale handover event ignored (a newer one was applied)"
        assert isinstance(event, PassThreadControlEvent | TakeThreadControlEvent)
        if event.new_owner_app_id == our_app:
            if isinstance(event, PassThreadControlEvent):
                return _control_gained(conversation, event)
            _transition(
                conversation,
                to_state=ControlState.AGENT,
                cause=ControlTransition.Cause.WEBHOOK,
                detail="we took control",
                metadata=event.metadata,
                event_timestamp=event.timestamp,
                owner_app_id=our_app,
            )
            return "control taken by us"
        we_had_it = event.previous_owner_app_id == our_app or conversation.control_state in (
            ControlState.AGENT,
            ControlState.RETURNING,
        )
        if we_had_it:
            how = "took" if isinstance(event, TakeThreadControlEvent) else "was given"
            return _control_lost(
                conversation,
                event=event,
                new_owner=event.new_owner_app_id,
                metadata=event.metadata,
                how=how,
            )
        # Between other apps: remember the owner; a pending request stays pending.
        to_state = conversation.control_state
        if to_state not in (ControlState.REQUESTED,):
            to_state = ControlState.BOT if event.new_owner_app_id else ControlState.IDLE
        _transition(
            conversation,
            to_state=to_state,
            cause=ControlTransition.Cause.WEBHOOK,
            detail=f"control moved from {_app_label(page, event.previous_owner_app_id)} "
            f"to {_app_label(page, event.new_owner_app_id)}",
            metadata=event.metadata,
            event_timestamp=event.timestamp,
            owner_app_id=event.new_owner_app_id,
        )
        return "control moved between other apps"


def _trigger_matches(page: Page, event: MessageEvent | PostbackEvent) -> str | None:
    """The trigger that this event matches, described, or None."""
    for trigger in page.triggers.filter(active=True):
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


def handover_request_start(
    *,
    conversation_id: int,
    reason: str,
    cause: str = ControlTransition.Cause.WEBHOOK,
    event_timestamp: int | None = None,
) -> bool:
    """Ask the bot for the thread: state `requested`, the Graph call after commit.

    Returns False, changing nothing, while a request is pending or we own the thread.
    A request older than HANDOVER_REQUEST_TIMEOUT_SECONDS no longer counts as pending.
    """
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        state = conversation.control_state
        if state in (ControlState.AGENT, ControlState.RETURNING):
            return False
        if state == ControlState.REQUESTED:
            timeout = timedelta(seconds=settings.HANDOVER_REQUEST_TIMEOUT_SECONDS)
            if conversation.requested_at and timezone.now() - conversation.requested_at < timeout:
                return False
        _transition(
            conversation,
            to_state=ControlState.REQUESTED,
            cause=cause,
            detail=f"requesting control: {reason}",
            metadata=_metadata(reason=reason),
            event_timestamp=None,
        )
        from agents.tasks import handover_request

        transaction.on_commit(lambda: _enqueue(handover_request, conversation.pk))
    return True


class Outcome(Enum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    BUSY = "busy"


def handover_request_send(*, conversation_id: int) -> Outcome:
    """Call request_thread_control for a conversation in state `requested`.

    Idempotent: one Graph call per request (keyed on when it was requested); exits
    quietly when the state is no longer `requested`. Transient errors are raised for
    the task to retry; a terminal one returns the state to what it was before.
    """
    conversation = Conversation.objects.select_related("page", "contact").get(pk=conversation_id)
    if conversation.control_state != ControlState.REQUESTED or not conversation.requested_at:
        return Outcome.SKIPPED
    key = f"request:{conversation.pk}:{int(conversation.requested_at.timestamp() * 1000)}"
    try:
        graph.request_thread_control(
            conversation.page,
            key=key,
            psid=conversation.contact.psid,
            metadata=conversation.control_metadata,
        )
    except graph.GraphError as exc:
        if exc.retryable:
            raise
        handover_request_fail(conversation_id=conversation_id, reason=exc.describe())
        return Outcome.FAILED
    return Outcome.DONE


def handover_request_fail(*, conversation_id: int, reason: str) -> None:
    """The request could not be made: back to the state before it, with the reason."""
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        if conversation.control_state != ControlState.REQUESTED:
            return
        previous = (
            conversation.transitions.filter(to_state=ControlState.REQUESTED)
            .order_by("-created_at", "-id")
            .values_list("from_state", flat=True)
            .first()
        ) or ControlState.BOT
        _transition(
            conversation,
            to_state=previous,
            cause=ControlTransition.Cause.API,
            detail=f"request_thread_control failed: {reason}",
        )


# --- Inbound events -------------------------------------------------------------


def messenger_event_handle(page: Page, event: Event) -> str | None:
    """Apply one parsed Messenger event. Called once per event, inside a transaction.

    Registered as settings.MESSENGER_EVENT_HANDLER; returns a note for the event log.
    """
    if isinstance(event, MessageEvent | PostbackEvent):
        return _inbound_record(page, event)
    if isinstance(event, EchoEvent):
        return _echo_record(page, event)
    if isinstance(
        event, PassThreadControlEvent | TakeThreadControlEvent | RequestThreadControlEvent
    ):
        return _handover_event_apply(page, event)
    if isinstance(event, ReadEvent | DeliveryEvent):
        return _receipt_apply(page, event)
    return "not handled"


def _attach_ticket(conversation: Conversation, *, timestamp: int) -> Ticket | None:
    """The ticket a new message belongs to: the open one, while we own the thread, unless
    the message is older than the handover (a late delivery: it is context)."""
    if conversation.control_state not in (ControlState.AGENT, ControlState.RETURNING):
        return None
    ticket = (
        Ticket.objects.filter(conversation=conversation)
        .exclude(status=Ticket.Status.CLOSED)
        .first()
    )
    if ticket is None or timestamp < ticket.handover_timestamp:
        return None
    return ticket


def _touch(conversation: Conversation, *, timestamp: int, from_user: bool) -> None:
    """Move the conversation's clocks forward, never back (a late event is older)."""
    at = ms_to_datetime(timestamp)
    rows = Conversation.objects.filter(pk=conversation.pk)
    rows.filter(Q(last_message_at__isnull=True) | Q(last_message_at__lt=at)).update(
        last_message_at=at
    )
    if from_user:
        rows.filter(Q(last_user_message_at__isnull=True) | Q(last_user_message_at__lt=at)).update(
            last_user_message_at=at
        )


def _inbound_record(page: Page, event: MessageEvent | PostbackEvent) -> str:
    # Locked like the handover path: a message and the pass that opens a ticket,
    # processed concurrently, are applied one after the other.
    conversation = conversation_lock(conversation_get_or_create(page=page, psid=event.psid).pk)
    ticket = _attach_ticket(conversation, timestamp=event.timestamp)
    if isinstance(event, MessageEvent):
        fields = {
            "mid": event.mid,
            "text": event.text,
            "attachments": [a.as_dict() for a in event.attachments],
            "quick_reply_payload": event.quick_reply_payload,
        }
    else:
        fields = {"mid": event.mid or None, "text": event.title, "postback_title": event.title}
    if fields["mid"] and Message.objects.filter(mid=fields["mid"]).exists():
        return "duplicate mid"
    message = Message.objects.create(
        conversation=conversation,
        ticket=ticket,
        direction=Message.Direction.INBOUND,
        author_kind=Message.Author.CUSTOMER,
        channel=event.channel,
        timestamp=event.timestamp,
        status=Message.Status.RECEIVED,
        **fields,
    )
    _touch(conversation, timestamp=event.timestamp, from_user=True)
    realtime.broadcast_on_commit(
        "message.created", conversation_id=conversation.pk, message_id=message.pk
    )
    if ticket is not None:
        realtime.broadcast_on_commit(
            "ticket.updated", ticket_id=ticket.pk, conversation_id=conversation.pk
        )
    note = "context" if ticket is None else "ticket message"
    if event.channel == CHANNEL_STANDBY and conversation.control_state in (
        ControlState.BOT,
        ControlState.IDLE,
        ControlState.TAKEN,
        ControlState.REQUESTED,
    ):
        reason = _trigger_matches(page, event)
        if reason is not None:
            started = handover_request_start(
                conversation_id=conversation.pk, reason=reason, event_timestamp=event.timestamp
            )
            note += f"; trigger {reason}: " + (
                "control requested" if started else "a request is already pending"
            )
    return note


def _echo_record(page: Page, event: EchoEvent) -> str:
    conversation = conversation_lock(conversation_get_or_create(page=page, psid=event.psid).pk)
    if event.app_id == settings.MESSENGER_APP_ID:
        own = Message.objects.filter(mid=event.mid).first()
        match = OWN_METADATA.match(event.metadata)
        if own is None and match:
            own = Message.objects.filter(pk=int(match.group(1)), conversation=conversation).first()
        if own is not None:
            _outbound_confirm(own.pk, mid=event.mid)
            return "own echo matched"
    elif Message.objects.filter(mid=event.mid).exists():
        return "duplicate mid"
    if event.app_id == settings.MESSENGER_APP_ID:
        author = Message.Author.AGENT
    elif event.app_id == settings.PAGE_INBOX_APP_ID:
        author = Message.Author.PAGE_INBOX
    else:
        author = Message.Author.BOT
    message = Message.objects.create(
        conversation=conversation,
        ticket=_attach_ticket(conversation, timestamp=event.timestamp),
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
    _touch(conversation, timestamp=event.timestamp, from_user=False)
    realtime.broadcast_on_commit(
        "message.created", conversation_id=conversation.pk, message_id=message.pk
    )
    return f"echo from {_app_label(page, event.app_id)}"


def _outbound_confirm(message_id: int, *, mid: str) -> None:
    """Our send is confirmed (answer or echo): store the mid, mark it sent once."""
    with transaction.atomic():
        message = message_lock(message_id)
        fields = []
        if not message.mid:
            message.mid = mid
            fields.append("mid")
        if message.status in (
            Message.Status.PENDING,
            Message.Status.SENDING,
            Message.Status.FAILED,
        ):
            message.status = Message.Status.SENT
            message.error = ""
            fields += ["status", "error"]
        if fields:
            message.save(update_fields=fields)
            realtime.broadcast_on_commit(
                "message.updated", conversation_id=message.conversation_id, message_id=message.pk
            )


_RECEIPT_ORDER = [Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ]


def _receipt_apply(page: Page, event: ReadEvent | DeliveryEvent) -> str:
    conversation = Conversation.objects.filter(page=page, contact__psid=event.psid).first()
    if conversation is None:
        return "receipt for an unknown conversation"
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
        realtime.broadcast_on_commit("conversation.updated", conversation_id=conversation.pk)
    return f"{changed} message(s) marked {event.kind}"


# --- Agent actions ----------------------------------------------------------------


def _can_see(user: AbstractBaseUser, page_id: int) -> bool:
    from agents.selectors import visible_page_ids

    visible = visible_page_ids(user)
    return visible is None or page_id in visible


def _ticket_for_agent(ticket_id: int, user: AbstractBaseUser) -> Ticket:
    """Lock a ticket the agent may see (and its conversation, first)."""
    conversation_id = (
        Ticket.objects.filter(pk=ticket_id).values_list("conversation_id", flat=True).first()
    )
    if conversation_id is None:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    conversation = conversation_lock(conversation_id)
    if not _can_see(user, conversation.page_id):
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    ticket = ticket_lock(ticket_id)
    ticket.conversation = conversation
    return ticket


def ticket_claim(*, ticket_id: int, user: AbstractBaseUser) -> Ticket:
    """Assign a waiting ticket to the agent. Of two concurrent claims exactly one wins.

    The winner is decided by a conditional UPDATE, which is atomic on every database.
    """
    with transaction.atomic():
        ticket = _ticket_for_agent(ticket_id, user)
        won = Ticket.objects.filter(
            pk=ticket.pk, status=Ticket.Status.WAITING, assignee__isnull=True
        ).update(status=Ticket.Status.OPEN, assignee=user, updated_at=timezone.now())
        if not won:
            ticket.refresh_from_db()
            if ticket.status == Ticket.Status.OPEN and ticket.assignee_id == user.pk:
                return ticket
            if ticket.status == Ticket.Status.CLOSED:
                raise Conflict("This ticket is closed.")
            raise Conflict(f"This ticket was already claimed by {ticket.assignee}.")
        ticket.refresh_from_db()
        _ticket_event(ticket, "claimed", actor=user)
    return ticket


def ticket_transfer(*, ticket_id: int, user: AbstractBaseUser, to_user_id: int) -> Ticket:
    """Give an unclosed ticket to another agent (who can see its page)."""
    from django.contrib.auth import get_user_model

    target = get_user_model().objects.filter(pk=to_user_id, is_active=True).first()
    if target is None:
        raise InvalidInput(f"There is no active agent with id {to_user_id}.")
    with transaction.atomic():
        ticket = _ticket_for_agent(ticket_id, user)
        if ticket.status == Ticket.Status.CLOSED:
            raise Conflict("This ticket is closed.")
        if not _can_see(target, ticket.conversation.page_id):
            raise InvalidInput(f"{target} is not in a team that handles this page.")
        if ticket.assignee_id not in (None, user.pk) and not user.is_superuser:
            raise PermissionDenied(
                f"This ticket is assigned to {ticket.assignee}; only they "
                "or an admin can transfer it."
            )
        previous = ticket.assignee
        ticket.assignee = target
        ticket.status = Ticket.Status.OPEN
        ticket.save(update_fields=["assignee", "status", "updated_at"])
        _ticket_event(
            ticket, "transferred", actor=user, detail=f"from {previous or 'nobody'} to {target}"
        )
    return ticket


_LOCK_REASONS = {
    ControlState.BOT: "The bot owns this conversation; request control to reply.",
    ControlState.REQUESTED: "Control was requested and the bot has not passed it yet.",
    ControlState.RETURNING: "The conversation is being passed back to the bot.",
    ControlState.TAKEN: "Another app took this conversation back; request control to reply.",
    ControlState.IDLE: "Nobody owns this conversation; request control to reply.",
}


@dataclass(frozen=True)
class SendPolicy:
    messaging_type: str
    tag: str | None


def _send_policy(conversation: Conversation) -> SendPolicy:
    """RESPONSE inside 24 h of the user's last message, HUMAN_AGENT up to 7 days where the
    page has that feature; raises Conflict outside the windows."""
    last = conversation.last_user_message_at
    age = timezone.now() - last if last else None
    if age is not None and age <= STANDARD_WINDOW:
        return SendPolicy("RESPONSE", None)
    if age is not None and age <= HUMAN_AGENT_WINDOW and conversation.page.human_agent_enabled:
        return SendPolicy("MESSAGE_TAG", "HUMAN_AGENT")
    if age is not None and age <= HUMAN_AGENT_WINDOW:
        raise Conflict(
            "The 24-hour messaging window is closed and this page does not have "
            "the Human Agent feature."
        )
    raise Conflict(
        "The messaging window is closed: the user last wrote more than "
        + ("7 days" if conversation.page.human_agent_enabled else "24 hours")
        + " ago."
    )


def _reply_check(ticket: Ticket, user: AbstractBaseUser) -> None:
    if ticket.status == Ticket.Status.CLOSED:
        raise Conflict("This ticket is closed.")
    state = ticket.conversation.control_state
    if state != ControlState.AGENT:
        raise Conflict(_LOCK_REASONS.get(state, "The helpdesk does not own this conversation."))
    if ticket.assignee_id not in (None, user.pk):
        raise Conflict(f"This ticket is assigned to {ticket.assignee}.")


def reply_lock_reason(*, ticket: Ticket, user: AbstractBaseUser) -> str:
    """Why the agent cannot reply to this ticket now, in words; "" when they can.

    The checks of `ticket_reply`, without locking or raising, for the inbox to show on
    the composer. Reads `ticket.conversation.page` and `ticket.assignee`: select them
    with the ticket to keep lists at a constant number of queries.
    """
    conversation = ticket.conversation
    if (
        ticket.status != Ticket.Status.CLOSED
        and conversation.control_state == ControlState.TAKEN
        and ticket.flag_reason
    ):
        return ticket.flag_reason  # names who took it
    try:
        _reply_check(ticket, user)
        _send_policy(conversation)
    except Conflict as exc:
        return exc.message
    return ""


def control_request_allowed(*, ticket: Ticket) -> bool:
    """Whether an agent may ask the bot for this ticket's thread now.

    Mirrors `handover_request_start`, which decides for real under the row lock.
    """
    if ticket.status == Ticket.Status.CLOSED:
        return False
    conversation = ticket.conversation
    state = conversation.control_state
    if state in (ControlState.BOT, ControlState.TAKEN, ControlState.IDLE):
        return True
    if state == ControlState.REQUESTED:
        timeout = timedelta(seconds=settings.HANDOVER_REQUEST_TIMEOUT_SECONDS)
        return (
            conversation.requested_at is None
            or timezone.now() - conversation.requested_at >= timeout
        )
    return False


@dataclass(frozen=True)
class Windows:
    """When the messaging windows close (None: the user never wrote, or no such window)."""

    standard_closes_at: datetime | None
    human_agent_closes_at: datetime | None


def conversation_windows(*, conversation: Conversation) -> Windows:
    """The 24-hour window and, where the page has the Human Agent feature, the 7-day one,
    both counted from the user's last message (the rule `_send_policy` applies)."""
    last = conversation.last_user_message_at
    if last is None:
        return Windows(None, None)
    human = last + HUMAN_AGENT_WINDOW if conversation.page.human_agent_enabled else None
    return Windows(last + STANDARD_WINDOW, human)


def ticket_typing(*, ticket_id: int, user: AbstractBaseUser) -> bool:
    """An agent is typing: show the customer Messenger's typing indicator.

    Throttled per conversation to one `typing_on` per TYPING_THROTTLE, across processes:
    a conditional UPDATE of `typing_sent_at` picks the one caller that sends. Does
    nothing while the agent could not reply (see `reply_lock_reason`). No row lock: the
    indicator is ephemeral and the task checks the thread owner again. Returns whether
    a `typing_on` was queued (sent by a task after commit).
    """
    ticket = (
        Ticket.objects.select_related("conversation__page", "assignee").filter(pk=ticket_id).first()
    )
    if ticket is None or not _can_see(user, ticket.conversation.page_id):
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    if reply_lock_reason(ticket=ticket, user=user):
        return False
    now = timezone.now()
    with transaction.atomic():
        won = (
            Conversation.objects.filter(pk=ticket.conversation_id)
            .filter(Q(typing_sent_at__isnull=True) | Q(typing_sent_at__lte=now - TYPING_THROTTLE))
            .update(typing_sent_at=now)
        )
        if won:
            from agents.tasks import typing_send

            transaction.on_commit(lambda: _enqueue(typing_send, ticket.conversation_id))
    return bool(won)


def typing_send(*, conversation_id: int) -> Outcome:
    """Send `sender_action: typing_on` while the helpdesk owns the thread.

    One attempt, never retried: an indicator that arrives late is worse than none.
    """
    conversation = Conversation.objects.select_related("page", "contact").get(pk=conversation_id)
    if conversation.control_state != ControlState.AGENT:
        return Outcome.SKIPPED
    try:
        graph.sender_action(conversation.page, psid=conversation.contact.psid, action="typing_on")
    except graph.GraphError as exc:
        logger.info("typing indicator for conversation %s not sent: %s", conversation_id, exc)
        return Outcome.FAILED
    return Outcome.DONE


def _clean_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("The message is empty.")
    if len(text) > MESSAGE_TEXT_LIMIT:
        raise InvalidInput(f"The message is longer than {MESSAGE_TEXT_LIMIT} characters.")
    return text


def _outbound_create(ticket: Ticket, user: AbstractBaseUser, text: str) -> Message:
    message = Message.objects.create(
        conversation=ticket.conversation,
        ticket=ticket,
        direction=Message.Direction.OUTBOUND,
        author_kind=Message.Author.AGENT,
        author=user,
        app_id=settings.MESSENGER_APP_ID,
        text=text,
        timestamp=now_ms(),
        status=Message.Status.PENDING,
    )
    realtime.broadcast_on_commit(
        "message.created", conversation_id=ticket.conversation_id, message_id=message.pk
    )
    return message


def ticket_reply(*, ticket_id: int, user: AbstractBaseUser, text: str) -> Message:
    """Queue an agent's reply; Celery sends it after commit.

    A waiting ticket is claimed by the agent who replies. Refused (Conflict, nothing
    stored, no Graph call) when we do not own the thread, the ticket is closed or
    someone else's, or the messaging window is closed.
    """
    text = _clean_text(text)
    with transaction.atomic():
        ticket = _ticket_for_agent(ticket_id, user)
        _reply_check(ticket, user)
        _send_policy(ticket.conversation)
        if ticket.status == Ticket.Status.WAITING:
            ticket.status = Ticket.Status.OPEN
            ticket.assignee = user
            ticket.save(update_fields=["status", "assignee", "updated_at"])
            _ticket_event(ticket, "claimed", actor=user, detail="by replying")
        message = _outbound_create(ticket, user, text)
        from agents.tasks import message_send

        transaction.on_commit(lambda: _enqueue(message_send, message.pk))
    return message


def message_retry(*, message_id: int, user: AbstractBaseUser) -> Message:
    """Send a failed agent message again (a new attempt of the same message)."""
    with transaction.atomic():
        message = Message.objects.filter(pk=message_id).first()
        if message is None or message.ticket_id is None:
            raise NotFound(f"Message {message_id} does not exist.")
        ticket = _ticket_for_agent(message.ticket_id, user)
        message = message_lock(message_id)
        if message.status != Message.Status.FAILED or message.author_kind != Message.Author.AGENT:
            raise Conflict("Only a failed agent message can be retried.")
        _reply_check(ticket, user)
        _send_policy(ticket.conversation)
        message.status = Message.Status.PENDING
        message.error = ""
        message.save(update_fields=["status", "error"])
        from agents.tasks import message_send

        transaction.on_commit(lambda: _enqueue(message_send, message.pk))
        realtime.broadcast_on_commit(
            "message.updated", conversation_id=message.conversation_id, message_id=message.pk
        )
    return message


def message_send(*, message_id: int) -> Outcome:
    """Send one outbound message through the Send API, at most once.

    The message is claimed (pending -> sending) in a short transaction, the HTTP call is
    made outside it. Returns BUSY while another worker holds a recent claim. A transient
    error puts it back to pending and is raised for the task to retry; a terminal one
    marks it failed with the reason in words. A timed-out attempt is uncertain: before
    trying again, an echo carrying the message's id may have confirmed it (then it is
    not sent twice).
    """
    stale = timezone.now() - timedelta(seconds=settings.GRAPH_API_TIMEOUT_SECONDS * 3)
    with transaction.atomic():
        message = message_lock(message_id)
        if message.status in (
            Message.Status.SENT,
            Message.Status.DELIVERED,
            Message.Status.READ,
            Message.Status.FAILED,
        ):
            return Outcome.SKIPPED
        if (
            message.status == Message.Status.SENDING
            and message.sending_since
            and (message.sending_since > stale)
        ):
            return Outcome.BUSY
        conversation = conversation_lock(message.conversation_id)
        if conversation.control_state not in (ControlState.AGENT, ControlState.RETURNING):
            reason = _LOCK_REASONS.get(conversation.control_state, "not the thread owner")
            _outbound_fail(message, f"Not sent: {reason}")
            return Outcome.FAILED
        try:
            policy = _send_policy(conversation)
        except Conflict as exc:
            _outbound_fail(message, f"Not sent: {exc.message}")
            return Outcome.FAILED
        message.status = Message.Status.SENDING
        message.sending_since = timezone.now()
        message.attempts += 1
        message.save(update_fields=["status", "sending_since", "attempts"])
        psid = conversation.contact.psid
        page = conversation.page
    try:
        mid = graph.send_text(
            page,
            key=f"message:{message.pk}",
            psid=psid,
            text=message.text,
            metadata=f"helpdesk:message={message.pk}",
            messaging_type=policy.messaging_type,
            tag=policy.tag,
        )
    except graph.GraphError as exc:
        with transaction.atomic():
            message = message_lock(message_id)
            if message.status != Message.Status.SENDING:
                return Outcome.SKIPPED  # confirmed by its echo meanwhile
            if exc.retryable:
                message.status = Message.Status.PENDING
                message.error = f"Retrying: {exc.describe()}"[:1000]
                message.save(update_fields=["status", "error"])
            else:
                _outbound_fail(message, exc.describe())
                if exc.not_owner:
                    _ownership_drift(message.conversation_id, reason=exc.describe())
        if exc.retryable:
            raise
        return Outcome.FAILED
    _outbound_confirm(message.pk, mid=mid)
    return Outcome.DONE


def message_send_give_up(*, message_id: int, reason: str) -> None:
    """Retries are exhausted: the message is failed, with the last reason."""
    with transaction.atomic():
        message = message_lock(message_id)
        if message.status in (Message.Status.PENDING, Message.Status.SENDING):
            _outbound_fail(message, f"Gave up after {message.attempts} attempts: {reason}")


def _outbound_fail(message: Message, reason: str) -> None:
    """Caller holds the message lock."""
    message.status = Message.Status.FAILED
    message.error = reason[:1000]
    message.save(update_fields=["status", "error"])
    realtime.broadcast_on_commit(
        "message.updated", conversation_id=message.conversation_id, message_id=message.pk
    )


def _ownership_drift(conversation_id: int, *, reason: str) -> None:
    """The Send API says we are not the owner: our state was wrong. Lock the composer."""
    conversation = conversation_lock(conversation_id)
    if conversation.control_state not in (ControlState.AGENT, ControlState.RETURNING):
        return
    ticket = _unclosed_ticket(conversation)
    _transition(
        conversation,
        to_state=ControlState.TAKEN if ticket else ControlState.BOT,
        cause=ControlTransition.Cause.RECONCILE,
        detail=reason,
    )
    if ticket is not None:
        ticket.flagged = True
        ticket.flag_reason = "Meta says another app owns this conversation; replies are locked."
        ticket.save(update_fields=["flagged", "flag_reason", "updated_at"])
        _ticket_event(ticket, "control_lost", detail=reason)


def ticket_close(
    *, ticket_id: int, user: AbstractBaseUser, closing_message: str = "", outcome: str = "resolved"
) -> Ticket:
    """Close a ticket and, when we own the thread, hand it back to the bot.

    An optional closing message is queued first; the pass happens in a task after all of
    the ticket's pending messages went out (so nothing reaches the user after the bot
    is back). When we do not own the thread, the ticket just closes (and a closing
    message is refused: it could not be sent).
    """
    outcome = (outcome or "resolved").strip()[:100]
    closing_message = (closing_message or "").strip()
    if closing_message:
        closing_message = _clean_text(closing_message)
    with transaction.atomic():
        ticket = _ticket_for_agent(ticket_id, user)
        if ticket.status == Ticket.Status.CLOSED:
            raise Conflict("This ticket is already closed.")
        conversation = ticket.conversation
        owned = conversation.control_state == ControlState.AGENT
        if closing_message:
            if not owned:
                raise Conflict(
                    "The closing message cannot be sent: "
                    + _LOCK_REASONS.get(conversation.control_state, "")
                )
            _send_policy(conversation)
            _outbound_create(ticket, user, closing_message)
        previous_assignee = ticket.assignee
        ticket.status = Ticket.Status.CLOSED
        ticket.closed_at = timezone.now()
        ticket.closing_note = outcome
        ticket.save(update_fields=["status", "closed_at", "closing_note", "updated_at"])
        _ticket_event(ticket, "closed", actor=user, detail=outcome)
        if owned:
            _transition(
                conversation,
                to_state=ControlState.RETURNING,
                cause=ControlTransition.Cause.AGENT,
                detail=f"ticket {ticket.pk} closed by {user}; passing control to the bot",
                metadata=_metadata(
                    ticket=ticket.pk, outcome=outcome, agent=str(previous_assignee or user)
                ),
            )
            from agents.tasks import ticket_return

            transaction.on_commit(lambda: _enqueue(ticket_return, ticket.pk))
    return ticket


def ticket_return(*, ticket_id: int) -> Outcome:
    """Pass control of a closed ticket's conversation back to the bot.

    First sends what the ticket still has pending (returns BUSY when another worker is
    sending one; transient errors are raised for the task to retry), then calls
    pass_thread_control with target_app_id = the page's bot. Idempotent: keyed on the
    ticket and its close time, and a no-op unless the state is `returning`.
    """
    ticket = Ticket.objects.select_related("conversation__page", "conversation__contact").get(
        pk=ticket_id
    )
    conversation = ticket.conversation
    if conversation.control_state != ControlState.RETURNING or ticket.closed_at is None:
        return Outcome.SKIPPED
    pending = (
        Message.objects.filter(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            status__in=[Message.Status.PENDING, Message.Status.SENDING],
        )
        .order_by("timestamp", "id")
        .values_list("pk", flat=True)
    )
    for message_id in pending:
        if message_send(message_id=message_id) == Outcome.BUSY:
            return Outcome.BUSY
    key = f"return:{ticket.pk}:{int(ticket.closed_at.timestamp() * 1000)}"
    # Stamped before the call: the bot may greet the user before our call returns.
    passed_at = now_ms()
    try:
        graph.pass_thread_control(
            conversation.page,
            key=key,
            psid=conversation.contact.psid,
            target_app_id=conversation.page.bot_app_id,
            metadata=conversation.control_metadata,
        )
    except graph.GraphError as exc:
        if exc.retryable:
            raise
        ticket_return_fail(ticket_id=ticket_id, reason=exc.describe(), not_owner=exc.not_owner)
        return Outcome.FAILED
    with transaction.atomic():
        conversation = conversation_lock(conversation.pk)
        if conversation.control_state == ControlState.RETURNING:
            _transition(
                conversation,
                to_state=ControlState.BOT,
                cause=ControlTransition.Cause.API,
                detail="control passed back to the bot",
                metadata=conversation.control_metadata,
                owner_app_id=conversation.page.bot_app_id,
            )
            _system_message(
                conversation,
                "The conversation went back to the bot.",
                timestamp=passed_at,
                ticket=ticket,
            )
    return Outcome.DONE


def ticket_return_fail(*, ticket_id: int, reason: str, not_owner: bool = False) -> None:
    """The pass back failed for good.

    If Meta says we are not the owner, someone else has the thread: record it. Otherwise
    we still own a thread nobody is watching: reopen the ticket, flagged with the reason.
    """
    with transaction.atomic():
        ticket = Ticket.objects.get(pk=ticket_id)
        conversation = conversation_lock(ticket.conversation_id)
        if conversation.control_state != ControlState.RETURNING:
            return
        if not_owner:
            _transition(
                conversation,
                to_state=ControlState.BOT,
                cause=ControlTransition.Cause.RECONCILE,
                detail=f"pass back failed, we were no longer the owner: {reason}",
            )
            return
        _transition(
            conversation,
            to_state=ControlState.AGENT,
            cause=ControlTransition.Cause.API,
            detail=f"pass back to the bot failed: {reason}",
        )
        ticket = ticket_lock(ticket_id)
        if _unclosed_ticket(conversation) is None:
            ticket.status = Ticket.Status.WAITING
            ticket.assignee = None
            ticket.closed_at = None
        ticket.flagged = True
        ticket.flag_reason = f"Could not hand the conversation back to the bot: {reason}"[:500]
        ticket.save()
        _ticket_event(ticket, "return_failed", detail=reason)


def ticket_request_control(*, ticket_id: int, user: AbstractBaseUser) -> Ticket:
    """An agent asks the bot for the thread again (after it was taken)."""
    with transaction.atomic():
        ticket = _ticket_for_agent(ticket_id, user)
        if ticket.status == Ticket.Status.CLOSED:
            raise Conflict("This ticket is closed.")
    started = handover_request_start(
        conversation_id=ticket.conversation_id,
        reason=f"agent {user} asked for control",
        cause=ControlTransition.Cause.AGENT,
    )
    if not started:
        state = Conversation.objects.get(pk=ticket.conversation_id).control_state
        if state == ControlState.AGENT:
            raise Conflict("The helpdesk already owns this conversation.")
        raise Conflict("Control was already requested; waiting for the bot.")
    return ticket


# --- Reconciliation ---------------------------------------------------------------

CONTROL_LAPSE = timedelta(hours=24)


def control_lapse_reconcile() -> list[int]:
    """Under Conversation Routing, control lapses 24 h after the user's last message,
    and Meta sends no webhook for it. Conversations we still think we own past that go
    `idle` (composer locked, ticket flagged), so agents are not told they can reply.

    Returns the conversations changed. Legacy Handover Protocol pages are left alone.
    """
    cutoff = timezone.now() - CONTROL_LAPSE
    candidates = list(
        Conversation.objects.filter(
            control_state=ControlState.AGENT,
            page__conversation_routing=True,
            last_user_message_at__lt=cutoff,
        ).values_list("pk", flat=True)
    )
    changed = []
    for conversation_id in candidates:
        with transaction.atomic():
            conversation = conversation_lock(conversation_id)
            last = conversation.last_user_message_at
            if conversation.control_state != ControlState.AGENT or not last or last >= cutoff:
                continue
            _transition(
                conversation,
                to_state=ControlState.IDLE,
                cause=ControlTransition.Cause.RECONCILE,
                detail="control lapsed: no message from the user for 24 hours "
                "(Conversation Routing)",
                owner_app_id="",
            )
            ticket = _unclosed_ticket(conversation)
            if ticket is not None:
                ticket.flagged = True
                ticket.flag_reason = (
                    "Control lapsed after 24 hours without a message from the user; "
                    "request control to reply."
                )
                ticket.save(update_fields=["flagged", "flag_reason", "updated_at"])
                _ticket_event(ticket, "control_lost", detail=ticket.flag_reason)
            changed.append(conversation_id)
    return changed


# --- Re-drive -------------------------------------------------------------------


def outbound_redrive() -> dict[str, list[int]]:
    """Enqueue outbound work that lost its task (e.g. Redis was down at commit).

    All of it is idempotent, so enqueueing something still queued is harmless.
    """
    from agents.tasks import handover_request, message_send, ticket_return

    cutoff = timezone.now() - timedelta(seconds=settings.REDRIVE_GRACE_SECONDS)
    messages = list(
        Message.objects.filter(status=Message.Status.PENDING, created_at__lte=cutoff)
        .exclude(
            ticket__status=Ticket.Status.CLOSED, conversation__control_state=ControlState.RETURNING
        )
        .values_list("pk", flat=True)[:500]
    )
    returning = list(
        Ticket.objects.filter(
            status=Ticket.Status.CLOSED,
            closed_at__lte=cutoff,
            conversation__control_state=ControlState.RETURNING,
        ).values_list("pk", flat=True)[:500]
    )
    requested = list(
        Conversation.objects.filter(
            control_state=ControlState.REQUESTED, requested_at__lte=cutoff
        ).values_list("pk", flat=True)[:500]
    )
    for pk in messages:
        _enqueue(message_send, pk)
    for pk in returning:
        _enqueue(ticket_return, pk)
    for pk in requested:
        _enqueue(handover_request, pk)
    return {"messages": messages, "returning": returning, "requested": requested}


def _enqueue(task, *args: object) -> None:
    try:
        task.delay(*args)
    except Exception as exc:  # noqa: BLE001 -- broker down: the row is the truth, beat re-drives
        logger.warning(
            "could not enqueue %s%r (%s); it will be re-driven", task.name, args, type(exc).__name__
        )
