"""Periodic repairs (Celery beat): what Meta does not announce, and work whose task was
lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents import rules, send_errors, tasks
from agents.locks import conversation_lock, message_lock, ticket_lock_unclosed
from agents.models import (
    ControlState,
    ControlTransition,
    Conversation,
    Message,
    Ticket,
    TicketEvent,
)
from agents.services import control, outbound
from agents.services.outbound import WORKER_LOST, outbound_fail, outbound_unconfirmed
from agents.services.state import Outcome, control_transition, ticket_change, ticket_flag
from helpdesk import clock
from webhooks import graph
from webhooks.models import Page
from webhooks.queue import enqueue, lease_take

REDRIVE_BATCH = 500
MAX_EXTEND = timedelta(days=7)


def control_lapse_reconcile() -> list[int]:
    """Under Conversation Routing, control lapses 24 h after the user's last message (or
    when our extension ends), and Meta sends no webhook for it. Conversations we still
    think we own past that are checked with `thread_owner` and corrected (cause:
    reconciliation): "Nobody owns this conversation since 14:02 (…)". When Meta does not
    answer, the lapse is applied as computed, so that agents are not told they can reply.

    Returns the conversations checked. Legacy Handover Protocol pages are left alone.
    """
    now = clock.now()
    cutoff = now - rules.CONTROL_LAPSE
    candidates = list(
        Conversation.objects.filter(
            control_state=ControlState.AGENT,
            page__conversation_routing=True,
            last_user_message_at__lt=cutoff,
        )
        .filter(
            Q(control_expires_at__isnull=True)
            | Q(control_expires_at__lt=int(now.timestamp() * 1000))
        )
        .values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    for conversation_id in candidates:
        try:
            control.control_owner_check(
                conversation_id=conversation_id, why="Messenger's 24-hour lapse was due"
            )
        except graph.GraphError as exc:
            _lapse_blind(conversation_id, cutoff=cutoff, reason=exc.describe())
    return candidates


def _lapse_blind(conversation_id: int, *, cutoff: datetime, reason: str) -> None:
    """Meta did not say who owns it: apply the lapse Conversation Routing promises."""
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        last = conversation.last_user_message_at
        if conversation.control_state != ControlState.AGENT or not last or last >= cutoff:
            return
        control_transition(
            conversation,
            to_state=ControlState.IDLE,
            cause=ControlTransition.Cause.RECONCILE,
            detail="control lapsed: no message from the user for 24 hours (Conversation "
            f"Routing; thread_owner did not answer: {reason})",
            owner_app_id="",
            owner_note=rules.LAPSE_NOTE,
            owner_since=rules.control_lapse_ms(last, conversation.control_expires_at),
        )
        ticket = ticket_lock_unclosed(conversation)
        if ticket is not None:
            ticket_flag(
                ticket,
                reason=f"Nobody owns this conversation ({rules.LAPSE_NOTE}); replies are locked.",
            )


def control_extend_due() -> list[int]:
    """Conversations an agent is working on whose control lapses within
    CONTROL_EXTEND_MARGIN_SECONDS: queue `control_extend` (Conversation Routing pages that
    extend, open tickets not flagged). Returns the conversations queued."""
    now_ms = clock.now_ms()
    horizon = now_ms + settings.CONTROL_EXTEND_MARGIN_SECONDS * 1000
    rows = (
        Conversation.objects.filter(
            control_state=ControlState.AGENT,
            page__conversation_routing=True,
            page__control_extend_max_hours__gt=0,
            last_user_message_at__isnull=False,
            tickets__status=Ticket.Status.OPEN,
            tickets__flagged=False,
        )
        .values_list("pk", "last_user_message_at", "control_expires_at")
        .distinct()[:REDRIVE_BATCH]
    )
    queued = []
    for conversation_id, last, expires in rows:
        assert isinstance(last, datetime)
        lapse = rules.control_lapse_ms(last, expires)
        if now_ms < lapse <= horizon and lease_take(tasks.control_extend, conversation_id):
            enqueue(tasks.control_extend, conversation_id)
            queued.append(conversation_id)
    return queued


def control_extend(*, conversation_id: int) -> Outcome:
    """Keep control while an agent works (`extend_thread_control`), up to the page's
    maximum after the customer's last message (at most 7 days), with an audit row. A call
    whose outcome is unknown is checked with `thread_owner` before it is made again."""
    conversation = Conversation.objects.select_related("page", "contact").get(pk=conversation_id)
    last = conversation.last_user_message_at
    if conversation.control_state != ControlState.AGENT or last is None:
        return Outcome.SKIPPED
    now_ms = clock.now_ms()
    lapse = rules.control_lapse_ms(last, conversation.control_expires_at)
    cap = timedelta(hours=min(conversation.page.control_extend_max_hours, 168))
    target = min(
        int((last + cap).timestamp() * 1000), now_ms + int(MAX_EXTEND.total_seconds() * 1000)
    )
    if target <= lapse or lapse <= now_ms:
        return Outcome.SKIPPED  # the page's maximum is reached, or it lapsed already
    key = f"extend:{conversation_id}:{target}"
    duration = max(1, (target - now_ms + 999) // 1000)
    try:
        graph.extend_thread_control(
            conversation.page, key=key, psid=conversation.contact.psid, duration_seconds=duration
        )
    except graph.GraphError as exc:
        if not exc.unknown_outcome:
            if exc.retryable:
                raise
            if exc.not_owner:
                control.control_owner_check(
                    conversation_id=conversation_id, why=f"extending control failed: {exc}"
                )
            return Outcome.FAILED
        owner = graph.thread_owner(conversation.page, psid=conversation.contact.psid)
        if owner.app_id != settings.MESSENGER_APP_ID:
            with transaction.atomic():
                control.owner_apply(
                    conversation_lock(conversation_id), owner, why="extending control"
                )
            return Outcome.FAILED
        if (owner.expiration or 0) < target - 1000:
            graph.extend_thread_control(
                conversation.page,
                key=key,
                psid=conversation.contact.psid,
                duration_seconds=duration,
                checked=True,
            )
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        if conversation.control_state != ControlState.AGENT:
            return Outcome.SKIPPED
        conversation.control_expires_at = target
        conversation.save(update_fields=["control_expires_at"])
        until = datetime.fromtimestamp(target / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        control_transition(
            conversation,
            to_state=ControlState.AGENT,
            cause=ControlTransition.Cause.API,
            detail=f"control extended until {until} while an agent works on the ticket",
        )
        ticket = ticket_lock_unclosed(conversation)
        if ticket is not None:
            ticket_change(ticket, TicketEvent.Kind.CONTROL_EXTENDED, detail=f"until {until}")
    return Outcome.DONE


def outbox_probe_all() -> dict[int, str]:
    """Beat: probe each page whose outbox was paused at least OUTBOX_PROBE_SECONDS ago."""
    before = timezone.now() - timedelta(seconds=settings.OUTBOX_PROBE_SECONDS)
    pages = Page.objects.exclude(outbox_paused_reason="").filter(outbox_paused_at__lte=before)
    return {
        page_id: outbound.outbox_probe(page_id=page_id).value
        for page_id in pages.values_list("pk", flat=True)
    }


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
