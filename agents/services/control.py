"""Thread control: the conversation's state machine, driven by handover webhooks, by
our own requests, and by what Meta's answers reveal.

States and their meaning are in the README ("Thread control"). Every change goes
through `state.control_transition`, under the conversation's lock.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction

from agents import rules, tasks
from agents.locks import conversation_lock, ticket_lock_closed_since, ticket_lock_unclosed
from agents.models import ControlState, ControlTransition, Conversation, Message, TicketEvent
from agents.services.contacts import conversation_get_or_create
from agents.services.state import (
    Outcome,
    app_label,
    control_transition,
    handover_metadata,
    sentence,
    system_message_add,
    ticket_change,
    ticket_flag,
    ticket_open,
    ticket_reopen,
    ticket_unflag,
)
from helpdesk import clock
from webhooks import graph
from webhooks.events import (
    PassThreadControlEvent,
    RequestThreadControlEvent,
    TakeThreadControlEvent,
)
from webhooks.models import Page
from webhooks.queue import enqueue_on_commit

HandoverEvent = PassThreadControlEvent | TakeThreadControlEvent | RequestThreadControlEvent


def handover_event_apply(page: Page, event: HandoverEvent) -> str:
    """Apply a pass, take or request webhook; returns a note for the event log.

    A pass or take older than the last one applied is ignored (deliveries arrive out of
    order). A request from another app changes nothing: the agents are told.
    """
    conversation = conversation_get_or_create(page=page, psid=event.psid)
    with transaction.atomic():
        conversation = conversation_lock(conversation.pk)
        if isinstance(event, RequestThreadControlEvent):
            return _control_requested_by_other(conversation, event)
        if event.timestamp < conversation.control_event_timestamp:
            return "stale handover event ignored (a newer one was applied)"
        our_app = settings.MESSENGER_APP_ID
        if event.new_owner_app_id == our_app:
            if isinstance(event, PassThreadControlEvent):
                return control_gained(conversation, event)
            control_transition(
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
            return control_lost(
                conversation,
                event=event,
                how="took" if isinstance(event, TakeThreadControlEvent) else "was given",
            )
        # Between other apps: remember the owner; a pending request stays pending.
        to_state = ControlState(conversation.control_state)
        if to_state != ControlState.REQUESTED:
            to_state = ControlState.BOT if event.new_owner_app_id else ControlState.IDLE
        control_transition(
            conversation,
            to_state=to_state,
            cause=ControlTransition.Cause.WEBHOOK,
            detail=f"control moved from {app_label(page, event.previous_owner_app_id)} "
            f"to {app_label(page, event.new_owner_app_id)}",
            metadata=event.metadata,
            event_timestamp=event.timestamp,
            owner_app_id=event.new_owner_app_id,
        )
        return "control moved between other apps"


def _control_requested_by_other(
    conversation: Conversation, event: RequestThreadControlEvent
) -> str:
    """Someone asks us, the owner, for the thread: tell the agents, change nothing."""
    ticket = ticket_lock_unclosed(conversation)
    who = app_label(conversation.page, event.requested_owner_app_id)
    if ticket is not None:
        ticket_change(ticket, TicketEvent.Kind.CONTROL_REQUESTED_BY_OTHER, detail=event.metadata)
        system_message_add(
            conversation,
            f"{sentence(who)} asks for the conversation.",
            timestamp=event.timestamp,
            ticket=ticket,
        )
    return f"{who} requested control"


def control_gained(conversation: Conversation, event: PassThreadControlEvent) -> str:
    """Control passed to us: the state becomes `agent`; a ticket opens or reopens.

    Caller holds the conversation lock.
    """
    control_transition(
        conversation,
        to_state=ControlState.AGENT,
        cause=ControlTransition.Cause.WEBHOOK,
        detail=f"{app_label(conversation.page, event.previous_owner_app_id)} passed control "
        "to the helpdesk",
        metadata=event.metadata,
        event_timestamp=event.timestamp,
        owner_app_id=event.new_owner_app_id,
    )
    ticket = ticket_lock_unclosed(conversation)
    if ticket is not None:
        ticket_unflag(ticket, metadata=event.metadata)
        outcome = "control regained for the open ticket"
    else:
        since = clock.now() - timedelta(seconds=settings.TICKET_REOPEN_WINDOW_SECONDS)
        ticket = ticket_lock_closed_since(conversation, since)
        if ticket is not None:
            ticket_reopen(ticket, metadata=event.metadata, timestamp=event.timestamp)
            outcome = "ticket reopened"
        else:
            ticket = ticket_open(conversation, metadata=event.metadata, timestamp=event.timestamp)
            outcome = "ticket opened"
    # Deliveries are processed concurrently: what the user or the page sent after the
    # handover may have been stored before it, as context. It belongs to the ticket.
    Message.objects.filter(
        conversation=conversation, ticket__isnull=True, timestamp__gte=event.timestamp
    ).update(ticket=ticket)
    system_message_add(
        conversation, "Control passed to the helpdesk.", timestamp=event.timestamp, ticket=ticket
    )
    return outcome


def control_lost(
    conversation: Conversation,
    *,
    event: PassThreadControlEvent | TakeThreadControlEvent,
    how: str,
) -> str:
    """Another app (or nobody) has the thread now. Caller holds the conversation lock."""
    new_owner = event.new_owner_app_id
    ticket = ticket_lock_unclosed(conversation)
    who = app_label(conversation.page, new_owner)
    to_state = ControlState.TAKEN if ticket is not None else ControlState.BOT
    if new_owner == "" and ticket is None:
        to_state = ControlState.IDLE
    control_transition(
        conversation,
        to_state=to_state,
        cause=ControlTransition.Cause.WEBHOOK,
        detail=f"{who} {how} the conversation",
        metadata=event.metadata,
        event_timestamp=event.timestamp,
        owner_app_id=new_owner,
    )
    if ticket is None:
        return "control lost"
    ticket_flag(ticket, reason=f"{sentence(who)} {how} the conversation; replies are locked.")
    system_message_add(
        conversation,
        f"{sentence(who)} {how} the conversation.",
        timestamp=event.timestamp,
        ticket=ticket,
    )
    return "control lost; ticket flagged"


def ownership_drift(conversation_id: int, *, reason: str) -> None:
    """The Send API says we are not the owner: our state was wrong. Lock the composer.

    Call inside `transaction.atomic()`.
    """
    conversation = conversation_lock(conversation_id)
    if not rules.sending_allowed(conversation.control_state):
        return
    ticket = ticket_lock_unclosed(conversation)
    control_transition(
        conversation,
        to_state=ControlState.TAKEN if ticket else ControlState.BOT,
        cause=ControlTransition.Cause.RECONCILE,
        detail=reason,
    )
    if ticket is not None:
        ticket_flag(
            ticket,
            reason="Meta says another app owns this conversation; replies are locked.",
            detail=reason,
        )


# --- Asking for the thread ----------------------------------------------------------


def handover_request_start(
    *,
    conversation_id: int,
    reason: str,
    cause: ControlTransition.Cause = ControlTransition.Cause.WEBHOOK,
) -> str:
    """Ask the bot for the thread: state `requested`, the Graph call after commit.

    Returns "" when the request started; otherwise why not (`rules.control_request_refusal`:
    a request is pending, or we own the thread), having changed nothing.
    """
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        refusal = rules.control_request_refusal(conversation)
        if refusal:
            return refusal
        control_transition(
            conversation,
            to_state=ControlState.REQUESTED,
            cause=cause,
            detail=f"requesting control: {reason}",
            metadata=handover_metadata(reason=reason),
        )
        enqueue_on_commit(tasks.handover_request, conversation.pk)
    return ""


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
        control_transition(
            conversation,
            to_state=ControlState(previous),
            cause=ControlTransition.Cause.API,
            detail=f"request_thread_control failed: {reason}",
        )
