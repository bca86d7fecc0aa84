"""Thread control: the conversation's state machine, driven by handover webhooks, by
our own requests, and by what Meta's answers reveal.

States and their meaning are in the README ("Thread control"). Every change goes
through `state.control_transition`, under the conversation's lock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from agents import realtime, rules, tasks
from agents.locks import conversation_lock, ticket_lock_closed_since, ticket_lock_unclosed
from agents.models import (
    ControlState,
    ControlTransition,
    Conversation,
    HandoverTrigger,
    HandoverWay,
    Message,
    OwnerRole,
    Ticket,
    TicketEvent,
)
from agents.services import routing
from agents.services.contacts import conversation_lock_or_create
from agents.services.state import (
    Outcome,
    app_label,
    control_transition,
    handover_metadata,
    handover_trigger,
    now_ms,
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
from webhooks.models import ControlMode, ControlWay, GraphCall, Page
from webhooks.queue import enqueue_on_commit

# "The caller did not look the unclosed ticket up" (None: it did, and there is none).
_UNKNOWN = object()

HandoverEvent = PassThreadControlEvent | TakeThreadControlEvent | RequestThreadControlEvent


def handover_event_apply(page: Page, event: HandoverEvent) -> str:
    """Apply a pass, take or request webhook; returns a note for the event log.

    A pass or take older than the last one applied is ignored (deliveries arrive out of
    order). One older than the last change the helpdesk made or checked itself (a
    delivery retried after our pass back) is not applied either: Meta is asked who owns
    the thread (`thread_owner`), which also covers a Meta clock behind ours. A request
    from another app changes nothing: the agents are told. Caller is in a transaction
    (the event's, which records its dedupe key).
    """
    conversation = conversation_lock_or_create(page=page, psid=event.psid)
    if isinstance(event, RequestThreadControlEvent):
        return _control_requested_by_other(conversation, event)
    if event.timestamp < conversation.control_event_timestamp:
        return "stale handover event ignored (a newer one was applied)"
    our_app = settings.MESSENGER_APP_ID
    open_ticket: Ticket | None = None
    if event.new_owner_app_id == our_app:
        open_ticket = ticket_lock_unclosed(conversation)
        if (
            conversation.control_state == ControlState.AGENT
            and open_ticket is not None
            and not open_ticket.flagged
        ):
            # Our own take (or a reconciliation) already applied it: once only.
            conversation.control_event_timestamp = max(
                conversation.control_event_timestamp, event.timestamp
            )
            conversation.save(update_fields=["control_event_timestamp"])
            return "control already ours"
    if event.timestamp < conversation.control_known_at:
        # Older than what our own calls or a check with Meta established since (a
        # delivery retried late): what it says may be over. Meta says who owns it now.
        enqueue_on_commit(tasks.control_owner_recheck, conversation.pk)
        return "handover event older than the helpdesk's last change; asking Meta who owns it"
    if event.new_owner_app_id == our_app:
        if isinstance(event, PassThreadControlEvent):
            return control_gained(conversation, event, unclosed=open_ticket)
        return control_taken(
            conversation,
            timestamp=event.timestamp,
            cause=ControlTransition.Cause.WEBHOOK,
            event_timestamp=event.timestamp,
            unclosed=open_ticket,
        )
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


def control_gained(
    conversation: Conversation,
    event: PassThreadControlEvent,
    *,
    unclosed: Ticket | object | None = _UNKNOWN,
) -> str:
    """Control passed to us: the state becomes `agent`; a ticket opens or reopens.

    Caller holds the conversation lock.
    """
    asked = conversation.control_state == ControlState.REQUESTED
    handover = (
        handover_trigger(
            conversation.page,
            metadata=conversation.control_metadata,
            ours=asked,
            from_app_id=event.previous_owner_app_id,
        ),
        HandoverWay.REQUEST if asked else HandoverWay.PASS,
    )
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
    return _ticket_for_control(
        conversation,
        metadata=event.metadata,
        timestamp=event.timestamp,
        line="Control passed to the helpdesk.",
        unclosed=unclosed,
        handover=handover,
    )


def control_taken(
    conversation: Conversation,
    *,
    timestamp: int,
    cause: ControlTransition.Cause,
    detail: str = "the helpdesk took control",
    event_timestamp: int | None = None,
    unclosed: Ticket | object | None = _UNKNOWN,
) -> str:
    """We own the thread by our own take (its answer, a reconciliation, or its webhook,
    whichever comes first): the state becomes `agent`, a ticket opens or reopens with
    the trigger as its metadata. Caller holds the conversation lock and has checked that
    it is not applied already."""
    metadata = conversation.control_metadata
    # Asked for, this is our request or take coming true. Else its trigger is unknown: a
    # take webhook naming us that we had not recorded asking for, or a check with Meta
    # finding the thread ours (how it came, unknown too).
    asked = conversation.control_state == ControlState.REQUESTED
    if asked:
        way = conversation.requested_way or HandoverWay.REQUEST
    elif cause == ControlTransition.Cause.RECONCILE:
        way = HandoverWay.UNKNOWN
    else:
        way = HandoverWay.TAKE
    handover = (
        handover_trigger(conversation.page, metadata=metadata, ours=True)
        if asked
        else HandoverTrigger.UNKNOWN,
        way,
    )
    control_transition(
        conversation,
        to_state=ControlState.AGENT,
        cause=cause,
        detail=detail,
        event_timestamp=event_timestamp,
        owner_app_id=settings.MESSENGER_APP_ID,
        at=timestamp,
    )
    return _ticket_for_control(
        conversation,
        metadata=metadata,
        timestamp=timestamp,
        line="The helpdesk took control.",
        unclosed=unclosed,
        handover=handover,
    )


def _ticket_for_control(
    conversation: Conversation,
    *,
    metadata: str,
    timestamp: int,
    line: str,
    unclosed: Ticket | object | None = _UNKNOWN,
    handover: tuple[str, str] = (HandoverTrigger.UNKNOWN, HandoverWay.UNKNOWN),
) -> str:
    """Control came to us at `timestamp`: the open ticket gets replies back, else a recently
    closed one reopens, else a new one opens (what came before is context). `unclosed`:
    the unclosed ticket, when the caller has locked it already."""
    ticket = (
        ticket_lock_unclosed(conversation)
        if unclosed is _UNKNOWN
        else cast("Ticket | None", unclosed)
    )
    if ticket is not None:
        ticket_unflag(ticket, metadata=metadata)
        outcome = "control regained for the open ticket"
    else:
        since = clock.now() - timedelta(seconds=settings.TICKET_REOPEN_WINDOW_SECONDS)
        ticket = ticket_lock_closed_since(conversation, since)
        if ticket is not None:
            ticket_reopen(ticket, metadata=metadata, timestamp=timestamp, handover=handover)
            outcome = "ticket reopened"
        else:
            ticket = ticket_open(
                conversation, metadata=metadata, timestamp=timestamp, handover=handover
            )
            outcome = "ticket opened"
        # Issue 11: the ticket joins its team's queue (auto-assigned after commit), or the
        # customer is told nobody can answer yet (and, per page, the bot gets it back).
        ticket.conversation = conversation
        if routing.ticket_waiting(ticket):
            outcome += "; nobody available, handed back to the bot"
    # Deliveries are processed concurrently: what the user or the page sent after the
    # handover may have been stored before it, as context. It belongs to the ticket.
    Message.objects.filter(
        conversation=conversation, ticket__isnull=True, timestamp__gte=timestamp
    ).update(ticket=ticket)
    system_message_add(conversation, line, timestamp=timestamp, ticket=ticket)
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
    """The Send API says we are not the owner and Meta would not say who is (the
    `thread_owner` check failed): lock the composer, owner unknown.

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
        owner_app_id="",
        role=OwnerRole.UNKNOWN,
    )
    if ticket is not None:
        ticket_flag(
            ticket,
            reason="Meta says another app owns this conversation; replies are locked.",
            detail=reason,
        )


def control_owner_check(*, conversation_id: int, why: str) -> OwnerRole:
    """Ask Meta who owns the thread (`GET /me/thread_owner`) and correct the state to it,
    with an audit row (cause: reconciliation) when it differs. `why` says what prompted
    the check (a not-owner error, an uncertain call, the 24-hour lapse). Raises
    GraphError when Meta does not answer (the caller retries the check, never a
    handover call). Returns the owner's role as found."""
    conversation = Conversation.objects.select_related("page", "contact").get(pk=conversation_id)
    owner = graph.thread_owner(conversation.page, psid=conversation.contact.psid)
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        return owner_apply(conversation, owner, why=why)


def _owner_role_of(page: Page, owner: graph.ThreadOwner) -> OwnerRole:
    if owner.idle:
        return OwnerRole.NOBODY
    if owner.app_id is None:
        return OwnerRole.UNKNOWN
    return rules.owner_role(ControlState.BOT, owner.app_id, bot_app_id=page.bot_app_id)


STANDBY_CHECK_SECONDS = 60


def owner_check_on_standby(conversation: Conversation, *, timestamp: int) -> str:
    """The customer wrote on standby while the helpdesk has the conversation: Meta sends
    standby to the apps that do not own the thread, so the state may be wrong (a hand-back
    that took effect though we recorded it failed, a take we never heard of). Unless the
    message is older than what the helpdesk last learned about control (written before
    it came, delivered late), Meta is asked who owns the thread and the state follows
    (`control_owner_check`): at most once a minute per conversation. Returns a note for
    the delivery's log. Caller holds the conversation's lock."""
    if timestamp <= max(conversation.control_event_timestamp, conversation.control_known_at):
        return "on standby, written before the helpdesk had control"
    try:
        first = cache.add(f"standby-owner-check:{conversation.pk}", 1, STANDBY_CHECK_SECONDS)
    except Exception:  # noqa: BLE001 -- without the shared cache, check every time
        first = True
    if not first:
        return "on standby while ours: Meta is being asked who owns the thread"
    enqueue_on_commit(tasks.control_owner_standby_check, conversation.pk)
    return "on standby while ours: asking Meta who owns the thread"


def owner_apply(conversation: Conversation, owner: graph.ThreadOwner, *, why: str) -> OwnerRole:
    """Make the conversation's state say what `thread_owner` answered. Caller holds the
    conversation lock."""
    page = conversation.page
    role = _owner_role_of(page, owner)
    if owner.app_id == settings.MESSENGER_APP_ID:
        if owner.expiration:
            conversation.control_expires_at = owner.expiration
            conversation.save(update_fields=["control_expires_at"])
        if conversation.control_state in (ControlState.AGENT, ControlState.RETURNING):
            return OwnerRole.HELPDESK
        # We own it and did not know (a call whose answer was lost took effect).
        control_taken(
            conversation,
            timestamp=now_ms(),
            cause=ControlTransition.Cause.RECONCILE,
            detail=f"Meta says the helpdesk owns the conversation ({why})",
        )
        return OwnerRole.HELPDESK
    state = ControlState(conversation.control_state)
    same_owner = role == conversation.owner_role and (
        role != OwnerRole.OTHER_APP or owner.app_id == conversation.owner_app_id
    )
    if same_owner and state not in (ControlState.AGENT, ControlState.RETURNING):
        return role  # nothing to correct
    ticket = ticket_lock_unclosed(conversation)
    note, since = "", None
    if state == ControlState.REQUESTED:
        to_state = ControlState.REQUESTED  # still asking; only the owner is corrected
    elif role == OwnerRole.NOBODY:
        to_state = ControlState.IDLE
        lapse = _lapse_ms(conversation)
        if lapse is not None and lapse <= now_ms():
            note, since = rules.LAPSE_NOTE, lapse
    elif ticket is not None and state in (ControlState.AGENT, ControlState.TAKEN):
        to_state = ControlState.TAKEN
    else:
        to_state = ControlState.BOT
    control_transition(
        conversation,
        to_state=to_state,
        cause=ControlTransition.Cause.RECONCILE,
        detail=f"Meta says: {rules.owner_text_for(role, owner.app_id)} ({why})",
        owner_app_id=owner.app_id or "",
        role=role,
        owner_note=note,
        owner_since=since,
    )
    if ticket is not None and state in (ControlState.AGENT, ControlState.TAKEN, ControlState.IDLE):
        words = rules.owner_text_for(role, owner.app_id)
        reason = f"{words}; replies are locked."
        if note:
            reason = f"{words} ({note}); replies are locked."
        if ticket.flag_reason != reason:
            ticket_flag(ticket, reason=reason, detail=why)
    return role


def _lapse_ms(conversation: Conversation) -> int | None:
    """When our control lapses or lapsed (CR): 24 h after the customer's last message,
    or later where we extended it."""
    if not conversation.page.conversation_routing or conversation.last_user_message_at is None:
        return None
    return rules.control_lapse_ms(
        conversation.last_user_message_at, conversation.control_expires_at
    )


# --- Getting the thread: request or take -------------------------------------------


def handover_request_start(
    *,
    conversation_id: int,
    reason: str,
    cause: ControlTransition.Cause = ControlTransition.Cause.WEBHOOK,
    way: str = "",
) -> str:
    """Get the thread the way the page allows (`rules.control_way`; `way` forces one, e.g.
    an agent's "Take over"): state `requested`, the Graph call after commit. An idle
    thread on a Conversation Routing page is taken (any app may take it).

    Returns "" when it started; otherwise why not (`rules.control_request_refusal`:
    a request is pending, or we own the thread), having changed nothing.
    """
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        refusal = rules.control_request_refusal(conversation)
        if refusal:
            return refusal
        page = conversation.page
        if not way:
            way = rules.control_way(page)
            if rules.take_allowed(page, conversation):
                way = ControlWay.TAKE
        conversation.requested_way = way
        conversation.save(update_fields=["requested_way"])
        control_transition(
            conversation,
            to_state=ControlState.REQUESTED,
            cause=cause,
            detail=f"{'taking' if way == ControlWay.TAKE else 'requesting'} control: {reason}",
            metadata=handover_metadata(reason=reason),
        )
        enqueue_on_commit(tasks.handover_request, conversation.pk)
    return ""


def _acquire_key(conversation: Conversation, way: str) -> str:
    assert conversation.requested_at is not None
    return f"{way}:{conversation.pk}:{int(conversation.requested_at.timestamp() * 1000)}"


def _acquire_call(conversation: Conversation, way: str, *, checked: bool = False) -> None:
    call = graph.take_thread_control if way == ControlWay.TAKE else graph.request_thread_control
    call(
        conversation.page,
        key=_acquire_key(conversation, way),
        psid=conversation.contact.psid,
        metadata=conversation.control_metadata,
        checked=checked,
    )


def handover_request_send(*, conversation_id: int) -> Outcome:
    """Make the call for a conversation in state `requested`: request or take.

    Idempotent: one Graph call per intent (keyed on when it was asked for and how);
    exits quietly when the state is no longer `requested`. A take that succeeds opens
    the ticket at once (its webhook, if any, goes to the previous owner). A call whose
    outcome is unknown (timeout, 5xx) is never made again before `thread_owner` says
    it did not take effect. In auto mode a refusal of one way tries the other and the
    page remembers what works. Transient errors are raised for the task to retry; a
    terminal one returns the state to what it was before, with the reason.
    """
    conversation = Conversation.objects.select_related("page", "contact").get(pk=conversation_id)
    if conversation.control_state != ControlState.REQUESTED or not conversation.requested_at:
        return Outcome.SKIPPED
    return _acquire_attempt(conversation, conversation.requested_way or ControlWay.REQUEST)


def _acquire_attempt(conversation: Conversation, way: str) -> Outcome:
    """One request or take, and what its answer means."""
    try:
        _acquire_call(conversation, way)
    except graph.GraphError as exc:
        if exc.unknown_outcome:
            return _acquire_settle(conversation, way)
        if exc.retryable:
            raise
        return _acquire_refused(conversation, way, exc)
    return _acquire_done(conversation, way)


def _acquire_done(conversation: Conversation, way: str) -> Outcome:
    """The call succeeded. A take: we own the thread now. A request: the bot decides."""
    _page_way_learn(conversation.page, way, note="")
    if way != ControlWay.TAKE:
        return Outcome.DONE
    with transaction.atomic():
        conversation = conversation_lock(conversation.pk)
        if conversation.control_state == ControlState.REQUESTED:
            control_taken(
                conversation,
                timestamp=now_ms(),
                cause=ControlTransition.Cause.API,
                detail="the helpdesk took control",
            )
    return Outcome.DONE


def _acquire_settle(conversation: Conversation, way: str) -> Outcome:
    """A request or take whose outcome is unknown: ask `thread_owner` first. Ours: done
    (the ticket opens). Not ours: make the call again, once Meta said it had no
    effect. Meta not answering: raised, and the task's next try asks again."""
    owner = graph.thread_owner(conversation.page, psid=conversation.contact.psid)
    ours = owner.app_id == settings.MESSENGER_APP_ID
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        if not ours and locked.control_state != ControlState.REQUESTED:
            return Outcome.SKIPPED  # settled meanwhile (a pass came): nothing to ask again
        # Ours: the state becomes `agent`. Another's: still asking, its owner corrected.
        owner_apply(locked, owner, why=f"the {way} call's answer was lost")
    if ours:
        _page_way_learn(conversation.page, way, note="")
        return Outcome.DONE
    try:
        _acquire_call(conversation, way, checked=True)
    except graph.GraphError as exc:
        if exc.retryable or exc.unknown_outcome:
            raise
        return _acquire_refused(conversation, way, exc)
    return _acquire_done(conversation, way)


def _acquire_refused(conversation: Conversation, way: str, exc: graph.GraphError) -> Outcome:
    """Meta refused this way in for good. Auto mode tries the other way once; when none
    works, the customer waits for the bot to pass, and the page says what to change."""
    page = conversation.page
    other = ControlWay.REQUEST if way == ControlWay.TAKE else ControlWay.TAKE
    auto = page.control_mode == ControlMode.AUTO
    if exc.handover_refused and auto and not _tried(conversation, other):
        with transaction.atomic():
            locked = conversation_lock(conversation.pk)
            if locked.control_state != ControlState.REQUESTED:
                return Outcome.SKIPPED
            locked.requested_way = other
            locked.save(update_fields=["requested_way"])
        conversation.requested_way = other
        # Refused too, it comes back here with `way` tried: neither works.
        return _acquire_attempt(conversation, other)
    if exc.handover_refused and auto:
        return _acquire_fail_both(conversation, way=way, exc=exc)
    if exc.handover_refused:
        return _acquire_fail_mode(conversation, way=way, exc=exc)
    handover_request_fail(conversation_id=conversation.pk, reason=exc.describe(), way=way)
    return Outcome.FAILED


def _tried(conversation: Conversation, way: str) -> bool:
    """Whether Meta already refused `way` for this intent (its call's record says so)."""
    return GraphCall.objects.filter(
        key=_acquire_key(conversation, way), status=GraphCall.Status.FAILED
    ).exists()


def _acquire_fail_both(conversation: Conversation, *, way: str, exc: graph.GraphError) -> Outcome:
    """Neither request nor take works on this page (`exc`: Meta's refusal of `way`, the
    second tried): wait for the bot to pass."""
    page = conversation.page
    if way == ControlWay.TAKE and exc.code == graph.CODE_TAKE_UNSUPPORTED:
        fix = (
            "This Page has no Conversation Routing default app, so the helpdesk cannot take "
            "conversations, and Meta refuses its requests. Set the bot as the default app in "
            "the Page's Conversation Routing settings, or let the bot pass conversations."
        )
    else:
        fix = (
            "Meta refuses the helpdesk's requests on this Page and does not let it take "
            "conversations. In the Page's settings (Advanced messaging, Conversation Routing) "
            "turn on \u201cAllow this app to take control of conversations\u201d for the "
            "helpdesk's app."
        )
    meta = exc.describe()
    _page_way_learn(page, ControlWay.NONE, note=f"{fix} (Meta: {meta})")
    reason = f"request and take were both refused: {meta}"
    handover_request_fail(conversation_id=conversation.pk, reason=reason, way=way)
    _waiting_set(
        conversation,
        "Waiting for the bot to pass the conversation: Meta lets the helpdesk neither ask for "
        f"it nor take it on this page ({meta}).",
    )
    return Outcome.FAILED


def _acquire_fail_mode(conversation: Conversation, *, way: str, exc: graph.GraphError) -> Outcome:
    """The page's mode says `way` (request or take, not auto) and Meta refuses it for
    good: wait for the bot to pass; the page's health says what to change."""
    if way == ControlWay.TAKE and exc.code == graph.CODE_TAKE_UNSUPPORTED:
        fix = (
            "This page is set to take conversations, but it has no Conversation Routing "
            "default app, so Meta refuses takes. Set the page's control mode to request or "
            "auto, or set the bot as the default app in the Page's Conversation Routing "
            "settings."
        )
    elif way == ControlWay.TAKE:
        fix = (
            "This page is set to take conversations, and Meta refuses: in the Page's "
            "settings (Advanced messaging, Conversation Routing) turn on \u201cAllow this app "
            "to take control of conversations\u201d for the helpdesk's app, or set the page's "
            "control mode to auto."
        )
    else:
        fix = (
            "This page is set to ask the bot for conversations, and Meta refuses requests "
            "on it. Set the page's control mode to auto or take, and in the Page's settings "
            "turn on \u201cAllow this app to take control of conversations\u201d for the "
            "helpdesk's app."
        )
    meta = exc.describe()
    _page_way_learn(conversation.page, ControlWay.NONE, note=f"{fix} (Meta: {meta})")
    handover_request_fail(conversation_id=conversation.pk, reason=meta, way=way)
    refused = "take it" if way == ControlWay.TAKE else "ask for it"
    _waiting_set(
        conversation,
        f"Waiting for the bot to pass the conversation: Meta does not let the helpdesk "
        f"{refused} on this page ({meta}).",
    )
    return Outcome.FAILED


def _waiting_set(conversation: Conversation, reason: str) -> None:
    """The customer waits for the bot to pass: say why, where the conversation shows."""
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        locked.waiting_reason = reason[:500]
        locked.save(update_fields=["waiting_reason"])
        realtime.broadcast_on_commit("conversation.updated", conversation_id=locked.pk)


def _page_way_learn(page: Page, way: str, *, note: str) -> None:
    """Remember what worked (or that nothing did) for the page, for auto mode."""
    if page.control_way == way and page.control_way_note == note:
        return
    Page.objects.filter(pk=page.pk).update(
        control_way=way, control_way_note=note[:500], control_way_at=clock.now()
    )
    page.control_way, page.control_way_note = way, note[:500]


def handover_request_fail(*, conversation_id: int, reason: str, way: str = "") -> None:
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
        call = f"{way or conversation.requested_way or 'request'}_thread_control"
        control_transition(
            conversation,
            to_state=ControlState(previous),
            cause=ControlTransition.Cause.API,
            detail=f"{call} failed: {reason}",
        )
