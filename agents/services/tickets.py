"""What agents do to tickets: claim, transfer, close (and the hand-back to the bot that
closing starts), ask for control again.

Every change goes through `state.ticket_change` (one `TicketEvent` each), under the
conversation's and the ticket's locks.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from agents import realtime, rules, tasks
from agents.errors import Conflict, InvalidInput, PermissionDenied
from agents.locks import conversation_lock, ticket_lock, ticket_lock_unclosed
from agents.models import (
    Agent,
    ControlState,
    ControlTransition,
    Conversation,
    Message,
    Ticket,
    TicketEvent,
    agent_name,
)
from agents.selectors import page_agents
from agents.services import csat
from agents.services.control import handover_request_start, owner_apply
from agents.services.outbound import message_send, outbound_create, text_clean
from agents.services.state import (
    Outcome,
    control_transition,
    handover_metadata,
    now_ms,
    require,
    system_message_add,
    ticket_assign,
    ticket_change,
    ticket_for_agent,
    ticket_mark_closed,
)
from helpdesk import clock
from webhooks import graph
from webhooks.models import ControlWay, Handback, Page
from webhooks.queue import Busy, enqueue_on_commit


def ticket_claim(*, ticket_id: int, user: Agent) -> Ticket:
    """Assign a waiting ticket to the agent. Of two concurrent claims exactly one wins:
    the second finds the ticket open under the lock and gets a Conflict. Claiming your
    own open ticket again is a no-op."""
    with transaction.atomic():
        ticket = ticket_for_agent(ticket_id, user)
        if ticket.status == Ticket.Status.OPEN and ticket.assignee_id == user.pk:
            return ticket
        if ticket.status == Ticket.Status.CLOSED:
            raise Conflict("This ticket is closed.")
        if ticket.status != Ticket.Status.WAITING:
            who = agent_name(ticket.assignee) if ticket.assignee else "another agent"
            raise Conflict(f"This ticket was already claimed by {who}.")
        ticket_assign(ticket, assignee=user, actor=user)
    return ticket


def ticket_transfer(*, ticket_id: int, user: Agent, to_user_id: int) -> Ticket:
    """Give an unclosed ticket to another agent who may see its page
    (`selectors.page_agents`; `selectors.ticket_transfer_targets` lists them).

    The ticket is checked first (404, 409, 403), then the target: an id that names no
    active agent and one that names an agent who may not see the page are refused with
    the same words, so that the answer does not tell whether an agent of another team
    exists.
    """
    with transaction.atomic():
        ticket = ticket_for_agent(ticket_id, user)
        if ticket.status == Ticket.Status.CLOSED:
            raise Conflict("This ticket is closed.")
        refusal = rules.transfer_refusal(ticket, user)
        if refusal:
            raise PermissionDenied(refusal)
        target = page_agents(ticket.conversation.page_id).filter(pk=to_user_id).first()
        if target is None:
            raise InvalidInput(f"No active agent with id {to_user_id} works on this ticket's page.")
        if target.pk == ticket.assignee_id:
            raise Conflict(f"This ticket is already assigned to {agent_name(target)}.")
        previous = agent_name(ticket.assignee) if ticket.assignee else "nobody"
        ticket_assign(
            ticket,
            assignee=target,
            actor=user,
            kind=TicketEvent.Kind.TRANSFERRED,
            detail=f"from {previous} to {agent_name(target)}",
        )
    return ticket


def ticket_request_control(*, ticket_id: int, user: Agent) -> Ticket:
    """An agent asks the bot for the thread again: after it was taken from an unclosed
    ticket, or, from a closed ticket, for the conversation again (while the 24-hour
    window is open and the customer has no unclosed ticket:
    `rules.ticket_control_request_refusal`).

    The same request a trigger makes (`control.handover_request_start`: state
    `requested`, one request_thread_control after commit, or a take where the page
    takes). When the bot passes the thread, a recently closed ticket reopens, else a new
    one opens.
    """
    return _ticket_control_ask(ticket_id=ticket_id, user=user, way="")


def ticket_take_control(*, ticket_id: int, user: Agent) -> Ticket:
    """An agent takes the conversation ("Take over"): where the page lets the helpdesk
    take it, or the thread is idle on a Conversation Routing page
    (`rules.take_over_refusal`). State `requested` (taking), one take_thread_control
    after commit; the ticket opens or reopens when Meta confirms."""
    return _ticket_control_ask(ticket_id=ticket_id, user=user, way=ControlWay.TAKE)


def _ticket_control_ask(*, ticket_id: int, user: Agent, way: str) -> Ticket:
    """What asking again and taking over share: the rule that refuses, then the same
    start a trigger makes (`way`: the page's, or take)."""
    with transaction.atomic():
        ticket = ticket_for_agent(ticket_id, user)
        closed = ticket.status == Ticket.Status.CLOSED
        open_ticket = closed and ticket_lock_unclosed(ticket.conversation) is not None
        if way == ControlWay.TAKE:
            require(rules.take_over_refusal(ticket, open_ticket=open_ticket))
            reason = f"agent {user} took over"
        else:
            require(rules.ticket_control_request_refusal(ticket, open_ticket=open_ticket))
            asked = "the conversation again" if closed else "control"
            reason = f"agent {user} asked for {asked}"
        require(
            handover_request_start(
                conversation_id=ticket.conversation_id,
                reason=reason,
                cause=ControlTransition.Cause.AGENT,
                way=way,
            )
        )
    return ticket


# --- Closing, and handing the thread back ---------------------------------------------


def ticket_close(
    *, ticket_id: int, user: Agent, closing_message: str = "", outcome: str = "resolved"
) -> Ticket:
    """Close a ticket and, when we own the thread, hand it back to the bot.

    An optional closing message is queued first; the pass happens in a task after all of
    the ticket's pending messages went out (so nothing reaches the user after the bot
    is back). Where the page asks for a rating, the question follows the closing message
    and the hand-back waits for the answer or the timeout (`csat`). When we do not own
    the thread, the ticket just closes (and a closing message is refused: it could not
    be sent).
    """
    outcome = (outcome or "resolved").strip()[:100]
    closing_message = (closing_message or "").strip()
    if closing_message:
        closing_message = text_clean(closing_message)
    with transaction.atomic():
        ticket = ticket_for_agent(ticket_id, user)
        if ticket.status == Ticket.Status.CLOSED:
            raise Conflict("This ticket is already closed.")
        conversation = ticket.conversation
        owned = conversation.control_state == ControlState.AGENT
        last: Message | None = None
        if closing_message:
            if not owned:
                raise Conflict(
                    "The closing message cannot be sent: "
                    + rules.lock_reason(conversation.control_state)
                )
            require(rules.send_policy(conversation).refusal)
            last = outbound_create(ticket, user, closing_message)
        previous_assignee = ticket.assignee
        ticket_mark_closed(ticket, actor=user, outcome=outcome)
        if owned:
            how = _handback_way(conversation.page)
            # CSAT (issue 11, point 9): where the page asks for a rating, the question
            # follows the closing message and the hand-back waits for the answer or the
            # timeout (`csat.csat_answer_inbound`, `csat.csat_expire_due`).
            now = clock.now()
            rating = csat.csat_will_ask(ticket, conversation, now=now)
            control_transition(
                conversation,
                to_state=ControlState.RETURNING,
                cause=ControlTransition.Cause.AGENT,
                detail=f"ticket {ticket.pk} closed by {user}; "
                + ("releasing control" if how == Handback.RELEASE else "passing control to the bot")
                + (" after the customer's rating" if rating else ""),
                metadata=handover_metadata(
                    ticket=ticket.pk, outcome=outcome, agent=str(previous_assignee or user)
                ),
            )
            if csat.csat_ask(ticket, conversation, now=now):
                enqueue_on_commit(tasks.ticket_return, ticket.pk)
            else:
                handback_queue(ticket, conversation, last=last)
    return ticket


def handback_queue(ticket: Ticket, conversation: Conversation, *, last: Message | None) -> None:
    """After the agent's (or the rating's) last words: the automated notice, the
    hand-back riding on the last message where the page allows it, and the task that
    sends them and hands back. Caller holds the conversation's lock, in `returning`."""
    page = conversation.page
    notice = page.handback_notice.strip()
    if notice and not rules.send_policy(conversation, automated=True).refusal:
        last = notice_create(ticket, notice)
    if last is not None and page.conversation_routing and page.send_api_thread_control:
        last.thread_control = _handback_way(page)
        last.save(update_fields=["thread_control"])
    enqueue_on_commit(tasks.ticket_return, ticket.pk)


def _handback_way(page: Page) -> str:
    """Release only where Conversation Routing has an idle state; legacy pages pass."""
    if page.handback == Handback.RELEASE and page.conversation_routing:
        return Handback.RELEASE
    return Handback.PASS


def notice_create(
    ticket: Ticket, text: str, *, quick_replies: list[dict[str, str]] | None = None
) -> Message:
    """An automated message of the page, queued after the agent's last words: the
    hand-back notice (Meta requires automation to say so when a person hands a chat back
    to it), the rating question and its thank-you (`csat`)."""
    message = Message.objects.create(
        quick_replies=quick_replies or [],
        conversation=ticket.conversation,
        ticket=ticket,
        direction=Message.Direction.OUTBOUND,
        author_kind=Message.Author.SYSTEM,
        app_id=settings.MESSENGER_APP_ID,
        text=text,
        timestamp=now_ms(),
        status=Message.Status.PENDING,
    )
    realtime.broadcast_on_commit(
        "message.created", conversation_id=ticket.conversation_id, message_id=message.pk
    )
    return message


def ticket_return(*, ticket_id: int) -> Outcome:
    """Pass control of a closed ticket's conversation back to the bot.

    First sends what the conversation still has pending (raises `Busy` when another
    worker is sending one, or one waits `confirming` for its echo; transient errors are
    raised for the task to retry), then
    calls pass_thread_control with target_app_id = the page's bot. Idempotent: keyed on
    the ticket and its close time, and a no-op unless the state is `returning`.
    """
    ticket = Ticket.objects.select_related("conversation__page", "conversation__contact").get(
        pk=ticket_id
    )
    conversation = ticket.conversation
    if conversation.control_state != ControlState.RETURNING or ticket.closed_at is None:
        return Outcome.SKIPPED
    # Read before sending: an answer that arrives meanwhile queues a return of its own.
    rating_awaited = csat.csat_waiting(ticket_id=ticket.pk)
    outbound = Message.objects.filter(
        conversation=conversation, direction=Message.Direction.OUTBOUND
    )
    pending = (
        outbound.filter(status__in=[Message.Status.PENDING, Message.Status.SENDING])
        .order_by("timestamp", "id")
        .values_list("pk", flat=True)
    )
    for message_id in pending:
        message_send(message_id=message_id)
    if outbound.filter(status=Message.Status.CONFIRMING).exists():
        # Its echo (or the confirmation deadline) decides first: the bot must not be
        # back before what the agent said has reached the user.
        raise Busy("a message of the conversation is still confirming", retry_in=5)
    if conversation.page.outbox_paused_reason and pending.exists():
        # What the agent said goes first: the hand-back waits for the page to resume
        # (`outbound.outbox_resume` queues it again; the re-drive would too).
        return Outcome.SKIPPED
    if rating_awaited:
        # The closing message and the rating question are out; the answer or the
        # timeout hands back (`csat`).
        return Outcome.SKIPPED
    how = _handback_way(conversation.page)
    # This close's carrier: a reopened ticket keeps the one of its earlier close, made
    # before the reopening.
    carriers = outbound.filter(ticket=ticket, thread_control__gt="")
    reopened = (
        ticket.events.filter(kind=TicketEvent.Kind.REOPENED)
        .order_by("-id")
        .values_list("created_at", flat=True)
        .first()
    )
    if reopened is not None:
        carriers = carriers.filter(created_at__gt=reopened)
    carrier = (
        carriers.order_by("-timestamp", "-id")
        .values_list("status", "timestamp", "sending_since")
        .first()
    )
    if carrier is not None and carrier[0] in _SENT:
        # The hand-back went with the last message (Send API `thread_control`), when its
        # send was made (on Messenger's clock): after the close, before the bot answers.
        _, created, sending_since = carrier
        at = created
        if sending_since is not None:
            at = max(created, int((sending_since + clock.offset()).timestamp() * 1000))
        return _returned(ticket, how=how, at=at, detail="in the last message")
    key = f"return:{ticket.pk}:{int(ticket.closed_at.timestamp() * 1000)}"
    # Stamped before the call: the bot may greet the user before our call returns.
    passed_at = now_ms()
    if carrier is not None:
        # The last message was to carry the hand-back and failed, perhaps after Meta
        # applied it (its answer lost, never confirmed): Meta says first who owns the
        # thread; a second hand-back only if it is still ours.
        return _return_settle(ticket, how, key=key, at=passed_at)
    try:
        _handback_call(conversation, how, key=key, checked=False)
    except graph.GraphError as exc:
        if exc.unknown_outcome:
            return _return_settle(ticket, how, key=key, at=passed_at)
        if exc.retryable:
            raise
        ticket_return_fail(ticket_id=ticket_id, reason=exc.describe(), not_owner=exc.not_owner)
        return Outcome.FAILED
    return _returned(ticket, how=how, at=passed_at)


_SENT = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ)


def _handback_call(conversation: Conversation, how: str, *, key: str, checked: bool) -> None:
    if how == Handback.RELEASE:
        graph.release_thread_control(
            conversation.page,
            key=key,
            psid=conversation.contact.psid,
            metadata=conversation.control_metadata,
            checked=checked,
        )
    else:
        graph.pass_thread_control(
            conversation.page,
            key=key,
            psid=conversation.contact.psid,
            target_app_id=conversation.page.bot_app_id,
            metadata=conversation.control_metadata,
            checked=checked,
        )


def _return_settle(ticket: Ticket, how: str, *, key: str, at: int) -> Outcome:
    """A pass or release whose outcome is unknown: ask `thread_owner` before anything.
    Still ours: make the call again (once Meta said it had no effect). Not ours: it took
    effect (or someone else has the thread): the hand-back is done, as Meta says."""
    conversation = ticket.conversation
    owner = graph.thread_owner(conversation.page, psid=conversation.contact.psid)
    if owner.app_id == settings.MESSENGER_APP_ID:
        try:
            _handback_call(conversation, how, key=key, checked=True)
        except graph.GraphError as exc:
            if exc.retryable or exc.unknown_outcome:
                raise
            ticket_return_fail(ticket_id=ticket.pk, reason=exc.describe(), not_owner=exc.not_owner)
            return Outcome.FAILED
        return _returned(ticket, how=how, at=at)
    expected = (
        owner.idle if how == Handback.RELEASE else owner.app_id == conversation.page.bot_app_id
    )
    if expected:
        return _returned(ticket, how=how, at=at, cause=ControlTransition.Cause.RECONCILE)
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        if locked.control_state == ControlState.RETURNING:
            owner_apply(locked, owner, why="the hand-back call's answer was lost")
    return Outcome.DONE


def _owner_or_none(conversation_id: int) -> graph.ThreadOwner | None:
    """Who owns the thread, as `thread_owner` says; None when Meta does not answer."""
    conversation = Conversation.objects.select_related("page", "contact").get(pk=conversation_id)
    try:
        return graph.thread_owner(conversation.page, psid=conversation.contact.psid)
    except graph.GraphError:
        return None


def _returned(
    ticket: Ticket,
    *,
    how: str,
    at: int,
    detail: str = "",
    cause: ControlTransition.Cause = ControlTransition.Cause.API,
) -> Outcome:
    """The thread is back with the bot (pass) or idle (release): record it once."""
    with transaction.atomic():
        conversation = conversation_lock(ticket.conversation_id)
        if conversation.control_state != ControlState.RETURNING:
            return Outcome.SKIPPED
        suffix = f" ({detail})" if detail else ""
        if how == Handback.RELEASE:
            control_transition(
                conversation,
                to_state=ControlState.IDLE,
                cause=cause,
                detail=f"control released{suffix}: the bot answers the customer's next message",
                metadata=conversation.control_metadata,
                owner_app_id="",
                at=at,
                owner_note="released by the helpdesk; the bot answers the customer's next message",
            )
            line = "The conversation was released: the bot answers the customer's next message."
        else:
            control_transition(
                conversation,
                to_state=ControlState.BOT,
                cause=cause,
                detail=f"control passed back to the bot{suffix}",
                metadata=conversation.control_metadata,
                owner_app_id=conversation.page.bot_app_id,
                at=at,  # the bot may answer before our call returns
            )
            line = "The conversation went back to the bot."
        system_message_add(conversation, line, timestamp=at, ticket=ticket)
    return Outcome.DONE


def ticket_return_fail(*, ticket_id: int, reason: str, not_owner: bool = False) -> None:
    """The pass back failed for good.

    If Meta says we are not the owner, someone else has the thread: `thread_owner` says
    who, and the state follows it (the bot when Meta would not say). Otherwise, or when
    Meta says the thread is ours after all, we still own a thread nobody is watching:
    reopen the ticket, flagged with the reason.
    """
    conversation_id = Ticket.objects.values_list("conversation_id", flat=True).get(pk=ticket_id)
    owner = _owner_or_none(conversation_id) if not_owner else None
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        if conversation.control_state != ControlState.RETURNING:
            return
        if not_owner and owner is not None and owner.app_id != settings.MESSENGER_APP_ID:
            owner_apply(conversation, owner, why=f"the hand-back was refused: {reason}")
            return
        if not_owner and owner is None:
            control_transition(
                conversation,
                to_state=ControlState.BOT,
                cause=ControlTransition.Cause.RECONCILE,
                detail=f"pass back failed, we were no longer the owner: {reason}",
            )
            return
        control_transition(
            conversation,
            to_state=ControlState.AGENT,
            cause=ControlTransition.Cause.API,
            detail=f"pass back to the bot failed: {reason}",
        )
        reopen = ticket_lock_unclosed(conversation) is None
        ticket = ticket_lock(ticket_id)
        reopened: dict[str, Any] = (
            {"status": Ticket.Status.WAITING, "assignee": None, "closed_at": None} if reopen else {}
        )
        ticket_change(
            ticket,
            TicketEvent.Kind.RETURN_FAILED,
            detail=reason,
            flagged=True,
            flag_reason=f"Could not hand the conversation back to the bot: {reason}"[:500],
            **reopened,
        )
