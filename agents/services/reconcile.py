"""Periodic repairs (Celery beat): what Meta does not announce, and work whose task was
lost."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents import rules, tasks
from agents.locks import conversation_lock, ticket_lock_unclosed
from agents.models import ControlState, ControlTransition, Conversation, Message, Ticket
from agents.services.state import control_transition, ticket_flag
from webhooks.queue import enqueue

REDRIVE_BATCH = 500


def control_lapse_reconcile() -> list[int]:
    """Under Conversation Routing, control lapses 24 h after the user's last message,
    and Meta sends no webhook for it. Conversations we still think we own past that go
    `idle` (composer locked, ticket flagged), so agents are not told they can reply.

    Returns the conversations changed. Legacy Handover Protocol pages are left alone.
    """
    cutoff = timezone.now() - rules.CONTROL_LAPSE
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
            control_transition(
                conversation,
                to_state=ControlState.IDLE,
                cause=ControlTransition.Cause.RECONCILE,
                detail="control lapsed: no message from the user for 24 hours "
                "(Conversation Routing)",
                owner_app_id="",
            )
            ticket = ticket_lock_unclosed(conversation)
            if ticket is not None:
                ticket_flag(
                    ticket,
                    reason="Control lapsed after 24 hours without a message from the user; "
                    "request control to reply.",
                )
            changed.append(conversation_id)
    return changed


def outbound_redrive() -> dict[str, list[int]]:
    """Enqueue outbound work that lost its task (e.g. Redis was down at commit).

    All of it is idempotent, so enqueueing something still queued is harmless.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.REDRIVE_GRACE_SECONDS)
    messages = list(
        Message.objects.filter(status=Message.Status.PENDING, created_at__lte=cutoff)
        .exclude(
            ticket__status=Ticket.Status.CLOSED, conversation__control_state=ControlState.RETURNING
        )
        .values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    returning = list(
        Ticket.objects.filter(
            status=Ticket.Status.CLOSED,
            closed_at__lte=cutoff,
            conversation__control_state=ControlState.RETURNING,
        ).values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    requested = list(
        Conversation.objects.filter(
            control_state=ControlState.REQUESTED, requested_at__lte=cutoff
        ).values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    for pk in messages:
        enqueue(tasks.message_send, pk)
    for pk in returning:
        enqueue(tasks.ticket_return, pk)
    for pk in requested:
        enqueue(tasks.handover_request, pk)
    return {"messages": messages, "returning": returning, "requested": requested}
