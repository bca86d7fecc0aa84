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
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents import realtime, rules, send_errors, tasks
from agents.errors import Conflict, InvalidInput, NotFound
from agents.locks import conversation_lock, message_lock
from agents.models import Agent, ControlState, Conversation, Message, Ticket
from agents.selectors import page_visible
from agents.send_errors import SendFailure
from agents.services import attachments, personas, replies
from agents.services.control import control_owner_check, ownership_drift
from agents.services.state import Outcome, now_ms, require, ticket_assign, ticket_for_agent
from webhooks import graph
from webhooks.models import Page
from webhooks.queue import Busy, enqueue, enqueue_on_commit

logger = logging.getLogger(__name__)

MESSAGE_TEXT_LIMIT = 2000  # Messenger's limit for a text message
# Messenger shows a typing indicator for about 20 s or until the next message; one
# typing_on per conversation every 10 s keeps it up while an agent types.
TYPING_THROTTLE = timedelta(seconds=10)


def text_clean(text: str) -> str:
    """The text of a message an agent wrote, trimmed; InvalidInput if empty, too long,
    or still holding a saved reply's placeholder."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("The message is empty.")
    if len(text) > MESSAGE_TEXT_LIMIT:
        raise InvalidInput(f"The message is longer than {MESSAGE_TEXT_LIMIT} characters.")
    # A saved reply's placeholder the agent did not fill ({first_name}…) never reaches
    # the customer.
    unfilled = replies.placeholder_refusal(text)
    if unfilled:
        raise InvalidInput(unfilled)
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


def reply_ticket_lock(ticket_id: int, user: Agent) -> Ticket:
    """Lock the ticket an agent replies on, refused (Conflict) as `ticket_reply` says;
    a waiting ticket is claimed by the agent who replies. Call inside
    `transaction.atomic()`."""
    ticket = ticket_for_agent(ticket_id, user)
    require(rules.reply_refusal(ticket, user))
    require(rules.send_policy(ticket.conversation).refusal)
    if ticket.status == Ticket.Status.WAITING:
        ticket_assign(ticket, assignee=user, actor=user, detail="by replying")
    return ticket


def ticket_reply(*, ticket_id: int, user: Agent, text: str) -> Message:
    """Queue an agent's reply; Celery sends it after commit.

    A waiting ticket is claimed by the agent who replies. Refused (Conflict, nothing
    stored, no Graph call) when we do not own the thread, the ticket is closed or
    someone else's, or the messaging window is closed.
    """
    text = text_clean(text)
    with transaction.atomic():
        ticket = reply_ticket_lock(ticket_id, user)
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


def message_send(*, message_id: int, probe: bool = False) -> Outcome:
    """Send one outbound message through the Send API, at most once.

    The message is claimed (pending -> sending) in a short transaction, the HTTP call is
    made outside it. Raises `Busy` while another worker holds a recent claim; a claim
    older than that means its worker died mid-call: the message waits `confirming`.
    A transient error puts it back to pending and is raised for the task to retry; a
    terminal one marks it failed with the reason in words; a timeout after the request
    left (the send may have gone through) makes it `confirming`, never retried.
    """
    stale = timezone.now() - timedelta(seconds=settings.GRAPH_API_TIMEOUT_SECONDS * 3)
    conversation_id, status = (
        Message.objects.filter(pk=message_id).values_list("conversation_id", "status").get()
    )
    if status == Message.Status.PENDING:
        # A file is uploaded before the message is claimed: however long a large upload
        # takes, no other worker takes the claim for a dead one's. Nothing reaches the
        # customer yet; an upload made twice is harmless (agents.services.attachments).
        try:
            attachments.attachment_upload(message_id)
        except graph.GraphError as exc:
            return _upload_failed(message_id, conversation_id, exc)
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
        page = Page.objects.get(pk=conversation.page_id)
        if page.outbox_paused_reason and not probe:
            # The whole page cannot send: the message waits (`outbox_resume` sends it).
            waiting = send_errors.paused(page.outbox_paused_reason)
            if message.error != waiting.text:
                fields = _error_set(message, waiting)
                message.save(update_fields=fields)
                realtime.broadcast_on_commit(
                    "message.updated", conversation_id=conversation_id, message_id=message.pk
                )
            return Outcome.SKIPPED
        policy = rules.send_policy(conversation, automated=message.author_id is None)
        if policy.refusal:
            outbound_fail(message, send_errors.refused(policy.refusal))
            return Outcome.FAILED
        # The parts of a reply with files go in order (agents.services.attachments).
        order = attachments.order_check(message)
        if isinstance(order, SendFailure):
            outbound_fail(message, order)
            return Outcome.FAILED
        if order == "wait":
            return Outcome.SKIPPED  # sent once the part before it is (followers_enqueue)
        message.status = Message.Status.SENDING
        message.sending_since = timezone.now()
        message.attempts += 1
        message.save(update_fields=["status", "sending_since", "attempts"])
    persona_id = ""
    if message.author is not None:
        persona_id = personas.persona_for(page, message.author)
    control = _thread_control(conversation, message, page)
    try:
        # A file is sent by the id of its upload (made above, or again if it expired).
        attachment = attachments.attachment_for_send(page, message)
    except graph.GraphError as exc:
        return _upload_failed(message_id, conversation_id, exc)
    try:
        mid = graph.send_text(
            page,
            key=_send_key(message.pk),
            psid=conversation.contact.psid,
            text=message.text,
            metadata=f"helpdesk:message={message.pk}",
            messaging_type=policy.messaging_type,
            tag=policy.tag,
            persona_id=persona_id,
            thread_control=control,
            quick_replies=message.quick_replies or None,
            attachment=attachment,
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
            if control is not None and exc.thread_control_refused:
                # Meta refuses the hand-back in the message (nothing was sent): send it
                # alone, the hand-back follows as its own call; the page remembers.
                message.status = Message.Status.PENDING
                message.thread_control = ""
                message.save(update_fields=["status", "thread_control"])
                Page.objects.filter(pk=page.pk).update(send_api_thread_control=False)
            elif exc.page_level:
                _keep_pending(message, send_errors.paused(exc.describe()))
                outbox_pause(page.pk, code=exc.page_level, reason=exc.describe())
                return Outcome.SKIPPED
            elif exc.retryable:
                _keep_pending(message, send_errors.retrying(failure))
            else:
                outbound_fail(message, failure)
        if control is not None and exc.thread_control_refused:
            return message_send(message_id=message_id, probe=probe)
        if exc.not_owner:
            _owner_recheck(conversation_id, reason=exc.describe())
        if exc.retryable:
            raise
        return Outcome.FAILED
    outbound_confirm(message.pk, mid=mid)
    return Outcome.DONE


def _keep_pending(message: Message, error: SendFailure) -> None:
    """Back in the outbox with the reason in words: retried, or waiting for its page."""
    message.status = Message.Status.PENDING
    fields = _error_set(message, error)
    message.save(update_fields=["status", *fields])


def _upload_failed(message_id: int, conversation_id: int, exc: graph.GraphError) -> Outcome:
    """A file's upload failed (before or after the message was claimed): nothing reached
    the customer, so a lost answer is retried like any transient error; a refusal fails
    the message in words; a page that cannot send pauses its outbox."""
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        message = message_lock(message_id)
        if message.status not in (Message.Status.PENDING, Message.Status.SENDING):
            return Outcome.SKIPPED
        failure = send_errors.graph_failure(exc)
        if exc.page_level:
            _keep_pending(message, send_errors.paused(exc.describe()))
            outbox_pause(conversation.page_id, code=exc.page_level, reason=exc.describe())
            return Outcome.SKIPPED
        if exc.retryable or exc.uncertain:
            _keep_pending(message, send_errors.retrying(failure))
        else:
            outbound_fail(message, failure)
    if exc.retryable or exc.uncertain:
        raise exc
    return Outcome.FAILED


def _thread_control(
    conversation: Conversation, message: Message, page: Page
) -> dict[str, str] | None:
    """The Send API's `thread_control` for the message the hand-back rides on (set by
    `ticket_close` on Conversation Routing pages), while we are handing back."""
    if not message.thread_control or conversation.control_state != ControlState.RETURNING:
        return None
    if message.thread_control == "release":
        return {"control_type": "release"}
    return {"control_type": "pass", "app_id": page.bot_app_id}


def _owner_recheck(conversation_id: int, *, reason: str) -> None:
    """Meta says we are not the owner: ask it who is and correct the state; when it does
    not answer, lock the composer with the owner unknown."""
    try:
        control_owner_check(conversation_id=conversation_id, why=f"a send was refused: {reason}")
    except graph.GraphError as exc:
        logger.info("thread_owner for conversation %s failed: %s", conversation_id, exc)
        with transaction.atomic():
            ownership_drift(conversation_id, reason=reason)


# --- A page that cannot send at all -------------------------------------------------


def outbox_pause(page_id: int, *, code: str, reason: str) -> None:
    """Stop the page's outbox: its replies wait, agents see why (`rules.outbox_paused_text`).
    Idempotent; `outbox_probe` (beat) or a new token resumes it."""
    changed = (
        Page.objects.filter(pk=page_id)
        .exclude(outbox_paused_reason=reason[:500])
        .update(
            outbox_paused_reason=reason[:500],
            outbox_paused_code=code,
            outbox_paused_at=timezone.now(),
        )
    )
    if changed:
        logger.warning("sending paused for page %s: %s", page_id, reason)
        realtime.broadcast_on_commit("page.updated", page_id=page_id)


def outbox_probe(*, page_id: int) -> Outcome:
    """Is a paused page able to send again? The oldest waiting reply is the probe (sent
    once, as any message); with none waiting, a call that needs the token. Success
    resumes the page and sends what waits, in order."""
    page = Page.objects.get(pk=page_id)
    if not page.outbox_paused_reason:
        return Outcome.SKIPPED
    oldest = (
        Message.objects.filter(
            conversation__page_id=page_id,
            direction=Message.Direction.OUTBOUND,
            status=Message.Status.PENDING,
        )
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
        .first()
    )
    if oldest is not None:
        try:
            outcome = message_send(message_id=oldest, probe=True)
        except (graph.GraphError, Busy):
            return Outcome.FAILED
        if (
            outcome == Outcome.SKIPPED
            and Message.objects.filter(pk=oldest, status=Message.Status.PENDING).exists()
        ):
            return Outcome.FAILED  # still refused for the whole page
    else:
        try:
            graph.page_probe(page)
        except graph.GraphError as exc:
            if exc.page_level:
                return Outcome.FAILED
    outbox_resume(page_id=page_id)
    return Outcome.DONE


def outbox_resume(*, page_id: int) -> list[int]:
    """The page can send again: clear the pause and queue what waits, oldest first.
    Returns the messages queued."""
    resumed = (
        Page.objects.filter(pk=page_id)
        .exclude(outbox_paused_reason="")
        .update(outbox_paused_reason="", outbox_paused_code="", outbox_paused_at=None)
    )
    if resumed:
        logger.info("sending resumed for page %s", page_id)
        realtime.broadcast_on_commit("page.updated", page_id=page_id)
    waiting = list(
        Message.objects.filter(
            conversation__page_id=page_id,
            direction=Message.Direction.OUTBOUND,
            status=Message.Status.PENDING,
        )
        .exclude(ticket__status=Ticket.Status.CLOSED)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
    )
    for message_id in waiting:
        enqueue(tasks.message_send, message_id)
    returning = Ticket.objects.filter(
        conversation__page_id=page_id,
        status=Ticket.Status.CLOSED,
        conversation__control_state=ControlState.RETURNING,
    ).values_list("pk", flat=True)
    for ticket_id in returning:
        enqueue(tasks.ticket_return, ticket_id)  # their messages, then the hand-back
    return waiting


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
    echo also settles the Graph call's record, so that no retry sends it again.

    The conversation is locked first (the services' lock order): a read or delivery
    receipt applied at the same moment (`inbound.receipt_apply`, which locks it too) is
    either seen in its watermarks or sees this message sent, never neither."""
    conversation_id = (
        Message.objects.filter(pk=message_id).values_list("conversation_id", flat=True).get()
    )
    with transaction.atomic():
        conversation_lock(conversation_id)
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
            message.status = _receipted(message)
            fields += ["status", *_error_set(message, None)]
            # Now sent: the next part of its reply, if any (once: not again on the echo).
            attachments.followers_enqueue(message)
        if fields:
            message.save(update_fields=fields)
            realtime.broadcast_on_commit(
                "message.updated", conversation_id=message.conversation_id, message_id=message.pk
            )


def _receipted(message: Message) -> str:
    """Sent, or delivered or read already: receipts that came in while the message was
    still being sent or confirmed are on its conversation as watermarks."""
    delivered, read = (
        Conversation.objects.filter(pk=message.conversation_id)
        .values_list("delivered_watermark", "read_watermark")
        .get()
    )
    if message.timestamp <= read:
        return Message.Status.READ
    if message.timestamp <= delivered:
        return Message.Status.DELIVERED
    return Message.Status.SENT


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
    attachments.followers_enqueue(message)  # the rest of its reply fails in words


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
            enqueue_on_commit(tasks.typing_send, ticket.conversation_id, user.pk)
    return bool(won)


def typing_send(
    *, conversation_id: int, agent_id: int | None = None, action: str = "typing_on"
) -> Outcome:
    """Send a sender action (`typing_on`, `mark_seen`) with the agent's persona while the
    helpdesk owns the thread and the page can send.

    One attempt, never retried: an indicator that arrives late is worse than none.
    """
    conversation = Conversation.objects.select_related("page", "contact").get(pk=conversation_id)
    if conversation.control_state != ControlState.AGENT or conversation.page.outbox_paused_reason:
        return Outcome.SKIPPED
    agent = Agent.objects.filter(pk=agent_id).first() if agent_id else None
    try:
        persona_id = personas.persona_for(conversation.page, agent) if agent else ""
        graph.sender_action(
            conversation.page,
            psid=conversation.contact.psid,
            action=action,
            persona_id=persona_id,
        )
    except graph.GraphError as exc:
        logger.info("%s for conversation %s not sent: %s", action, conversation_id, exc)
        return Outcome.FAILED
    return Outcome.DONE


SEEN_THROTTLE_SECONDS = 60


def ticket_seen(*, ticket_id: int, user: Agent) -> bool:
    """An agent opened the conversation: `mark_seen` (with their persona) while the
    helpdesk owns the thread, once a minute per conversation at most (shared cache).
    Returns whether one was queued."""
    ticket = Ticket.objects.select_related("conversation").filter(pk=ticket_id).first()
    if ticket is None or not page_visible(user, ticket.conversation.page_id):
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    if ticket.conversation.control_state != ControlState.AGENT:
        return False
    if not cache.add(f"seen-sent:{ticket.conversation_id}", 1, timeout=SEEN_THROTTLE_SECONDS):
        return False
    enqueue_on_commit(tasks.seen_send, ticket.conversation_id, user.pk)
    return True
