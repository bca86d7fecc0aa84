"""Periodic repairs (Celery beat): what Meta does not announce, and work whose task was
lost."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents import rules, send_errors, tasks
from agents.locks import conversation_lock, message_lock, ticket_lock_unclosed
from agents.models import ControlState, ControlTransition, Conversation, Message, Ticket
from agents.services.outbound import WORKER_LOST, outbound_fail, outbound_unconfirmed
from agents.services.state import control_transition, ticket_flag
from helpdesk import clock
from webhooks.queue import enqueue, lease_take

REDRIVE_BATCH = 500


def control_lapse_reconcile() -> list[int]:
    """Under Conversation Routing, control lapses 24 h after the user's last message,
    and Meta sends no webhook for it. Conversations we still think we own past that go
    `idle` (composer locked, ticket flagged), so agents are not told they can reply.

    Returns the conversations changed. Legacy Handover Protocol pages are left alone.
    """
    cutoff = clock.now() - rules.CONTROL_LAPSE
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


def messages_unconfirmed_settle() -> dict[str, list[int]]:
    """Messages whose send has no known outcome. `sending` longer than three Graph
    timeouts: the worker died mid-call, so the message waits `confirming` for its echo
    (it used to stay `sending` forever). `confirming` longer than GRAPH_CONFIRM_SECONDS:
    no echo came, it fails as "may not have been delivered", for the agent to retry."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.GRAPH_API_TIMEOUT_SECONDS * 3)
    unconfirmed = now - timedelta(seconds=settings.GRAPH_CONFIRM_SECONDS)
    settled: dict[str, list[int]] = {"confirming": [], "failed": []}
    for status, before in (
        (Message.Status.SENDING, stale),
        (Message.Status.CONFIRMING, unconfirmed),
    ):
        ids = Message.objects.filter(status=status, sending_since__lt=before).values_list(
            "pk", flat=True
        )[:REDRIVE_BATCH]
        for message_id in ids:
            with transaction.atomic():
                message = message_lock(message_id)
                if message.status != status or not message.sending_since:
                    continue
                if message.sending_since >= before:
                    continue
                if status == Message.Status.SENDING:
                    outbound_unconfirmed(message, WORKER_LOST)
                    settled["confirming"].append(message_id)
                else:
                    outbound_fail(message, send_errors.never_confirmed())
                    settled["failed"].append(message_id)
    return settled


def outbound_redrive() -> dict[str, list[int]]:
    """Enqueue outbound work that lost its task (e.g. Redis was down at commit).

    Work queued within REDRIVE_LEASE_SECONDS is left alone (`webhooks.queue.lease_take`):
    a backlog is not multiplied. All of it is idempotent besides.
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
    queued: dict[str, list[int]] = {}
    for name, task, ids in (
        ("messages", tasks.message_send, messages),
        ("returning", tasks.ticket_return, returning),
        ("requested", tasks.handover_request, requested),
    ):
        queued[name] = [pk for pk in ids if lease_take(task, pk)]
        for pk in queued[name]:
            enqueue(task, pk)
    return queued
