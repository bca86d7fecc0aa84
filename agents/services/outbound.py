"""What agents send: replies, retries, the Send API call itself, typing indicators.

A reply is stored `pending` and sent by a task after commit; the task claims it
(`sending`) before the HTTP call, and the answer or the echo confirms it (`sent`). It
is sent once, or shown `failed` with the reason in words. When Meta's answer is lost
(a timeout, a worker that died mid-call) the send may have gone through: the message
waits `confirming` for its echo and is never sent again on its own; without an echo
it fails after GRAPH_CONFIRM_SECONDS as "may not have been delivered", and the agent
decides whether to retry.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents import realtime, rules, send_errors, tasks
from agents.errors import Conflict, InvalidInput, NotFound
from agents.locks import conversation_lock, message_lock
from agents.models import Agent, ControlState, Conversation, Message, Ticket
from agents.selectors import page_visible
from agents.send_errors import SendFailure
from agents.services.control import ownership_drift
from agents.services.state import Outcome, now_ms, require, ticket_assign, ticket_for_agent
from webhooks import graph
from webhooks.queue import Busy, enqueue_on_commit

logger = logging.getLogger(__name__)

MESSAGE_TEXT_LIMIT = 2000  # Messenger's limit for a text message
# Messenger shows a typing indicator for about 20 s or until the next message; one
# typing_on per conversation every 10 s keeps it up while an agent types.
TYPING_THROTTLE = timedelta(seconds=10)


def text_clean(text: str) -> str:
    """The text of a message an agent wrote, trimmed; InvalidInput if empty or too long."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("The message is empty.")
    if len(text) > MESSAGE_TEXT_LIMIT:
        raise InvalidInput(f"The message is longer than {MESSAGE_TEXT_LIMIT} characters.")
    return text


def outbound_create(ticket: Ticket, user: Agent, text: str) -> Message:
    """A pending agent message in the ticket; whoever calls this enqueues its sending."""
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


def ticket_reply(*, ticket_id: int, user: Agent, text: str) -> Message:
    """Queue an agent's reply; Celery sends it after commit.

    A waiting ticket is claimed by the agent who replies. Refused (Conflict, nothing
    stored, no Graph call) when we do not own the thread, the ticket is closed or
    someone else's, or the messaging window is closed.
    """
    text = text_clean(text)
    with transaction.atomic():
        ticket = ticket_for_agent(ticket_id, user)
        require(rules.reply_refusal(ticket, user))
        require(rules.send_policy(ticket.conversation).refusal)
        if ticket.status == Ticket.Status.WAITING:
            ticket_assign(ticket, assignee=user, actor=user, detail="by replying")
        message = outbound_create(ticket, user, text)
        enqueue_on_commit(tasks.message_send, message.pk)
    return message


def message_retry(*, message_id: int, user: Agent) -> Message:
    """Send a failed agent message again (a new attempt of the same message)."""
    with transaction.atomic():
        message = Message.objects.filter(pk=message_id).first()
        if message is None or message.ticket_id is None:
            raise NotFound(f"Message {message_id} does not exist.")
        ticket = ticket_for_agent(message.ticket_id, user)
        message = message_lock(message_id)
        if message.status != Message.Status.FAILED or message.author_kind != Message.Author.AGENT:
            raise Conflict("Only a failed agent message can be retried.")
        require(rules.reply_refusal(ticket, user))
        require(rules.send_policy(ticket.conversation).refusal)
        message.status = Message.Status.PENDING
        fields = _error_set(message, None)
        message.save(update_fields=["status", *fields])
        enqueue_on_commit(tasks.message_send, message.pk)
        realtime.broadcast_on_commit(
            "message.updated", conversation_id=message.conversation_id, message_id=message.pk
        )
    return message


_DONE_STATUSES = (
    Message.Status.SENT,
    Message.Status.DELIVERED,
    Message.Status.READ,
    Message.Status.FAILED,
    Message.Status.CONFIRMING,  # its echo, or the confirmation deadline, decides
)
# The texts live with the others in agents.send_errors.
UNCONFIRMED = send_errors.UNCONFIRMED
WORKER_LOST = send_errors.WORKER_LOST
NEVER_CONFIRMED = send_errors.NEVER_CONFIRMED


def _send_key(message_id: int) -> str:
    return f"message:{message_id}"


def message_send(*, message_id: int) -> Outcome:
    """Send one outbound message through the Send API, at most once.

    The message is claimed (pending -> sending) in a short transaction, the HTTP call is
    made outside it. Raises `Busy` while another worker holds a recent claim; a claim
    older than that means its worker died mid-call: the message waits `confirming`.
    A transient error puts it back to pending and is raised for the task to retry; a
    terminal one marks it failed with the reason in words; a timeout after the request
    left (the send may have gone through) makes it `confirming`, never retried.
    """
    stale = timezone.now() - timedelta(seconds=settings.GRAPH_API_TIMEOUT_SECONDS * 3)
    conversation_id = (
        Message.objects.filter(pk=message_id).values_list("conversation_id", flat=True).get()
    )
    with transaction.atomic():
        # Conversation, then message: the lock order of every service (agents.locks).
        conversation = conversation_lock(conversation_id)
        message = message_lock(message_id)
        if message.status in _DONE_STATUSES:
            return Outcome.SKIPPED
        if message.status == Message.Status.SENDING:
            if message.sending_since and message.sending_since > stale:
                raise Busy(f"message {message_id} is being sent by another worker")
            outbound_unconfirmed(message, WORKER_LOST)
            return Outcome.SKIPPED
        if not rules.sending_allowed(conversation.control_state):
            outbound_fail(
                message, send_errors.refused(rules.lock_reason(conversation.control_state))
            )
            return Outcome.FAILED
        policy = rules.send_policy(conversation)
        if policy.refusal:
            outbound_fail(message, send_errors.refused(policy.refusal))
            return Outcome.FAILED
        message.status = Message.Status.SENDING
        message.sending_since = timezone.now()
        message.attempts += 1
        message.save(update_fields=["status", "sending_since", "attempts"])
    try:
        mid = graph.send_text(
            conversation.page,
            key=_send_key(message.pk),
            psid=conversation.contact.psid,
            text=message.text,
            metadata=f"helpdesk:message={message.pk}",
            messaging_type=policy.messaging_type,
            tag=policy.tag,
        )
    except graph.GraphError as exc:
        with transaction.atomic():
            conversation_lock(conversation_id)
            message = message_lock(message_id)
            if message.status != Message.Status.SENDING:
                return Outcome.SKIPPED  # confirmed by its echo meanwhile
            if exc.uncertain:
                outbound_unconfirmed(message, UNCONFIRMED)
                return Outcome.SKIPPED
            failure = send_errors.graph_failure(exc, tag=policy.tag)
            if exc.retryable:
                message.status = Message.Status.PENDING
                fields = _error_set(message, send_errors.retrying(failure))
                message.save(update_fields=["status", *fields])
            else:
                outbound_fail(message, failure)
                if exc.not_owner:
                    ownership_drift(conversation_id, reason=exc.describe())
        if exc.retryable:
            raise
        return Outcome.FAILED
    outbound_confirm(message.pk, mid=mid)
    return Outcome.DONE


def message_send_give_up(*, message_id: int, reason: str) -> None:
    """Retries are exhausted: the message is failed, with the last reason (as the last
    retry stored it in words; `reason` when it stored none)."""
    with transaction.atomic():
        message = message_lock(message_id)
        if message.status in (Message.Status.PENDING, Message.Status.SENDING):
            last = SendFailure(
                text=message.error or reason,
                detail=message.error_detail,
                code=message.error_code,
                subcode=message.error_subcode,
            )
            outbound_fail(message, send_errors.gave_up(attempts=message.attempts, last=last))


def outbound_confirm(message_id: int, *, mid: str, by_echo: bool = False) -> None:
    """Our send is confirmed (answer or echo): store the mid, mark it sent once. An
    echo also settles the Graph call's record, so that no retry sends it again."""
    with transaction.atomic():
        message = message_lock(message_id)
        if by_echo:
            graph.call_confirm(_send_key(message.pk), {"message_id": mid, "confirmed_by": "echo"})
        fields = []
        if not message.mid:
            message.mid = mid
            fields.append("mid")
        if message.status in (
            Message.Status.PENDING,
            Message.Status.SENDING,
            Message.Status.CONFIRMING,
            Message.Status.FAILED,
        ):
            message.status = Message.Status.SENT
            fields += ["status", *_error_set(message, None)]
        if fields:
            message.save(update_fields=fields)
            realtime.broadcast_on_commit(
                "message.updated", conversation_id=message.conversation_id, message_id=message.pk
            )


def _error_set(message: Message, failure: SendFailure | None) -> list[str]:
    """Set (or, with None, clear) the message's error fields; returns their names."""
    failure = failure or SendFailure(text="")
    message.error = failure.text[:1000]
    message.error_detail = failure.detail[:1000]
    message.error_code = failure.code
    message.error_subcode = failure.subcode
    return ["error", "error_detail", "error_code", "error_subcode"]


def outbound_unconfirmed(message: Message, reason: str) -> None:
    """The send may have gone through: wait for its echo (`confirming`), from when it
    was sent. Caller holds the message lock."""
    message.status = Message.Status.CONFIRMING
    fields = _error_set(message, SendFailure(text=reason))
    message.save(update_fields=["status", *fields])
    realtime.broadcast_on_commit(
        "message.updated", conversation_id=message.conversation_id, message_id=message.pk
    )


def outbound_fail(message: Message, failure: SendFailure) -> None:
    """The message is failed, with the reason in words (`agents.send_errors`) and Meta's
    side of it. Caller holds the message lock."""
    message.status = Message.Status.FAILED
    fields = _error_set(message, failure)
    message.save(update_fields=["status", *fields])
    realtime.broadcast_on_commit(
        "message.updated", conversation_id=message.conversation_id, message_id=message.pk
    )


# --- Typing -------------------------------------------------------------------------


def ticket_typing(*, ticket_id: int, user: Agent) -> bool:
    """An agent is typing: show the customer Messenger's typing indicator.

    Throttled per conversation to one `typing_on` per TYPING_THROTTLE, across processes:
    a conditional UPDATE of `typing_sent_at` picks the one caller that sends. Does
    nothing while the agent could not reply (see `rules.reply_lock_reason`). No row
    lock: the indicator is ephemeral and the task checks the thread owner again. Returns
    whether a `typing_on` was queued (sent by a task after commit).
    """
    ticket = (
        Ticket.objects.select_related("conversation__page", "assignee").filter(pk=ticket_id).first()
    )
    if ticket is None or not page_visible(user, ticket.conversation.page_id):
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    if rules.reply_lock_reason(ticket, user):
        return False
    now = timezone.now()
    with transaction.atomic():
        won = (
            Conversation.objects.filter(pk=ticket.conversation_id)
            .filter(Q(typing_sent_at__isnull=True) | Q(typing_sent_at__lte=now - TYPING_THROTTLE))
            .update(typing_sent_at=now)
        )
        if won:
            enqueue_on_commit(tasks.typing_send, ticket.conversation_id)
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
