"""Routing: which team a page's tickets go to, auto-assignment within the team, the
team's first-in first-out queue, and being honest with a customer nobody can answer yet.

Rules (README "Presence and routing"):
- A page routes to ONE team: its `PageRouting.team` where set (one of the teams that
  list the page), else the first team (lowest id) that lists it. A page on no team is
  not routed: its tickets wait for a claim, as before.
- With the team's auto-assignment on, a ticket that starts waiting (new or reopened)
  goes to the ONLINE member with the fewest open tickets, under their capacity (the
  agent's profile, else the team's default); ties go to who was given a ticket longest
  ago. Nobody has room: it waits in the team's queue, oldest first, and is assigned as
  capacity frees (a ticket closed or transferred, an agent coming online, a capacity
  raised) and by the beat's sweep.
- Claims and transfers stay manual and may take an agent past capacity: their choice.

`team_assign` is the one service that assigns automatically. It locks the team's
routing row, then its members' presence rows in user-id order, then each ticket's
conversation and the ticket (agents.locks): two tickets arriving together are assigned
one after the other, and an agent never goes past capacity. Nothing that holds a
conversation's lock calls it: the hooks below queue it after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents import realtime, rules, tasks
from agents.locks import (
    conversation_lock,
    presence_lock_many,
    team_routing_lock,
    ticket_lock,
    ticket_wait_lock,
)
from agents.models import (
    Agent,
    AgentPresence,
    AgentProfile,
    ControlState,
    ControlTransition,
    Conversation,
    Message,
    PageRouting,
    Presence,
    Team,
    TeamRouting,
    Ticket,
    TicketEvent,
    TicketWait,
    agent_name,
)
from agents.services import hours, presence
from agents.services.presence import presence_of
from agents.services.state import (
    control_transition,
    handover_metadata,
    ticket_change,
)
from helpdesk import clock
from webhooks.models import Handback
from webhooks.queue import enqueue_on_commit

logger = logging.getLogger(__name__)

AUTO_DETAIL = "auto-assigned: fewest open tickets"
REASON_WORDS = {"outside_hours": "outside office hours", "nobody_online": "nobody online"}
# In an `unavailable` event's detail, before why the customer was not told (the inbox's
# timeline reads it: static/agents/inbox/timeline.js).
UNTOLD = "; not told: "
_NEVER = datetime.min.replace(tzinfo=UTC)


# --- Which team ------------------------------------------------------------------------


def page_team_id(page_id: int) -> int | None:
    """The team a page routes to (module docstring), or None. One query."""
    chosen = PageRouting.objects.filter(page_id=page_id, team=OuterRef("pk"))
    return (
        Team.objects.filter(pages=page_id)
        .annotate(chosen=Exists(chosen))
        .order_by("-chosen", "pk")
        .values_list("pk", flat=True)
        .first()
    )


def team_page_ids(team_id: int) -> list[int]:
    """The pages whose tickets join this team's queue."""
    listed = Team.objects.filter(pk=team_id).values_list("pages", flat=True)
    return [pk for pk in listed if pk is not None and page_team_id(pk) == team_id]


def team_queue(team_id: int) -> list[Ticket]:
    """The team's waiting tickets, first in first out: by when each started waiting (a
    ticket from before routing existed: when it opened), then id."""
    return list(
        Ticket.objects.filter(
            status=Ticket.Status.WAITING, conversation__page_id__in=team_page_ids(team_id)
        )
        .annotate(waiting_since=Coalesce(F("wait__since"), F("opened_at")))
        .order_by("waiting_since", "id")
    )


def queue_position(ticket: Ticket) -> int | None:
    """The ticket's place in its team's queue (1: next), or None when it is not waiting in
    one."""
    team_id = page_team_id(ticket.conversation.page_id)
    if team_id is None or ticket.status != Ticket.Status.WAITING:
        return None
    ids = [row.pk for row in team_queue(team_id)]
    return ids.index(ticket.pk) + 1 if ticket.pk in ids else None


# --- Assigning ---------------------------------------------------------------------------


def _capacities(user_ids: list[int], default: int) -> dict[int, int]:
    overrides = {
        user_id: capacity
        for user_id, capacity in AgentProfile.objects.filter(
            user_id__in=user_ids, capacity__isnull=False
        ).values_list("user_id", "capacity")
        if capacity is not None
    }
    return {pk: overrides.get(pk, default) for pk in user_ids}


def _open_counts(user_ids: list[int]) -> dict[int, int]:
    rows = (
        Ticket.objects.filter(status=Ticket.Status.OPEN, assignee_id__in=user_ids)
        .values("assignee_id")
        .annotate(n=Count("id"))
        .values_list("assignee_id", "n")
    )
    counts = {pk: 0 for pk in user_ids}
    counts.update(dict(rows))
    return counts


def team_assign(*, team_id: int) -> list[tuple[int, int]]:
    """Assign the team's queue, oldest first, to its online members with room; returns
    the (ticket id, agent id) pairs assigned. Each writes a TicketEvent `assigned`
    ("auto-assigned: fewest open tickets"), tells the inboxes (`ticket.updated`) and the
    agent (`ticket.assigned` on their own group), after commit.

    Takes the team's routing lock, then the members' presence rows (user-id order), then
    each ticket's conversation and ticket: open tickets are counted under those locks,
    so concurrent runs (for this team or another sharing an agent) never put an agent
    past capacity. Idempotent: a run with nothing to do changes nothing.
    """
    assigned: list[tuple[int, int]] = []
    with transaction.atomic():
        routing = team_routing_lock(team_id)
        if routing is None or not routing.auto_assign:
            return []
        members = list(
            Agent.objects.filter(teams=team_id, is_active=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        AgentPresence.objects.bulk_create(
            [AgentPresence(user_id=pk) for pk in members], ignore_conflicts=True
        )
        rows = presence_lock_many(members)
        presence = presence_of(members)
        online = [row for row in rows if presence[row.user_id] == Presence.ONLINE]
        if not online:
            return []
        ids = [row.user_id for row in online]
        capacity = _capacities(ids, routing.capacity)
        load = _open_counts(ids)
        agents = {agent.pk: agent for agent in Agent.objects.filter(pk__in=ids)}
        for queued in team_queue(team_id):
            room = [row for row in online if load[row.user_id] < capacity[row.user_id]]
            if not room:
                break
            chosen = min(
                room, key=lambda row: (load[row.user_id], row.last_assigned_at or _NEVER, row.pk)
            )
            conversation_lock(queued.conversation_id)
            ticket = ticket_lock(queued.pk)
            if ticket.status != Ticket.Status.WAITING:
                continue  # claimed meanwhile
            ticket_change(
                ticket,
                TicketEvent.Kind.ASSIGNED,
                detail=f"{AUTO_DETAIL}, to {agent_name(agents[chosen.user_id])}",
                status=Ticket.Status.OPEN,
                assignee=agents[chosen.user_id],
            )
            chosen.last_assigned_at = timezone.now()
            chosen.save(update_fields=["last_assigned_at", "changed_at"])
            load[chosen.user_id] += 1
            assigned.append((ticket.pk, chosen.user_id))
            _tell_assigned(chosen.user_id, ticket)
    return assigned


def _tell_assigned(user_id: int, ticket: Ticket) -> None:
    """The agent's inboxes (their own group): a ticket is theirs now (for a notification;
    the list updates from `ticket.updated` like everyone's)."""
    conversation_id = ticket.conversation_id
    transaction.on_commit(
        lambda: realtime.user_event(
            user_id, "ticket.assigned", ticket_id=ticket.pk, conversation_id=conversation_id
        )
    )


def team_assign_later(team_id: int | None) -> None:
    """Queue `team_assign` for after commit, when the team assigns automatically."""
    if (
        team_id is not None
        and TeamRouting.objects.filter(team_id=team_id, auto_assign=True).exists()
    ):
        enqueue_on_commit(tasks.routing_assign, team_id)


def capacity_freed(*, page_id: int) -> None:
    """A ticket of the page was closed or moved to another agent: someone may have room.
    Call inside the transaction that did it (the run is queued after commit)."""
    team_assign_later(page_team_id(page_id))


def manual_assigned(ticket: Ticket, *, assignee_id: int, previous_id: int | None) -> None:
    """A claim or a transfer (`state.ticket_assign`): the assignee was just given a ticket;
    a transfer frees room for the agent it was taken from. Both after commit: the caller
    holds the ticket's locks, which auto-assignment takes after the presence rows."""
    transaction.on_commit(lambda: presence.agent_touch_assigned(assignee_id))
    if previous_id is not None and previous_id != assignee_id:
        capacity_freed(page_id=ticket.conversation.page_id)


def agent_available(*, user_id: int) -> None:
    """An agent came online or their capacity went up: route to them, in each of their
    teams that assigns automatically (after commit)."""
    teams = TeamRouting.objects.filter(auto_assign=True, team__members=user_id).values_list(
        "team_id", flat=True
    )
    for team_id in sorted(set(teams)):
        enqueue_on_commit(tasks.routing_assign, team_id)


def team_routing_changed(*, team_id: int) -> None:
    """An admin changed the team's routing (auto-assignment on, a capacity raised)."""
    team_assign_later(team_id)


def routing_sweep() -> None:
    """Beat's backstop: stale sockets go, every auto-assigning team's queue is assigned,
    waiting customers are told their place (`queue_notices_send`)."""
    presence.sockets_sweep()
    for team_id in TeamRouting.objects.filter(auto_assign=True).values_list("team_id", flat=True):
        team_assign(team_id=team_id)
    queue_notices_send()


# --- A ticket starts waiting ------------------------------------------------------------


def ticket_waiting(ticket: Ticket) -> bool:
    """Control came to us and `ticket` waits (it opened or reopened). On a routed page
    (one query finds out) its wait starts now;
    when nobody can answer (outside the team's office hours, or inside them with no
    member online) and the page says so, the customer is told, and either the ticket
    waits or the conversation goes back to the bot at once (`PageRouting`). Otherwise
    auto-assignment runs after commit.

    Returns True when the ticket was handed back. Caller holds the conversation's lock
    and the ticket's (`control._ticket_for_control`).
    """
    conversation = ticket.conversation
    team_id = page_team_id(conversation.page_id)
    if team_id is None:
        return False  # not routed: the ticket waits for a claim, as before
    TicketWait.objects.update_or_create(
        ticket=ticket, defaults={"since": clock.now(), "position_told_at": None}
    )
    settings_row = PageRouting.objects.filter(page_id=conversation.page_id).first()
    if settings_row is not None and _unavailable_apply(ticket, team_id, settings_row):
        return True
    team_assign_later(team_id)
    return False


def team_online(team_id: int) -> bool:
    members = list(Agent.objects.filter(teams=team_id, is_active=True).values_list("pk", flat=True))
    return any(state == Presence.ONLINE for state in presence_of(members).values())


@dataclass(frozen=True)
class _Unavailable:
    """Why nobody can answer now, and what the page tells the customer."""

    reason: str  # a key of REASON_WORDS
    text: str  # the page's message, {opens} filled in, stripped
    detail: str  # for the `unavailable` event: the reason in words, when the team opens
    opens_at: datetime | None


def _unavailable_now(team_id: int, page_routing: PageRouting) -> _Unavailable | None:
    """Nobody of the team can answer now (outside its office hours, or inside them with
    no member online), or None."""
    team = Team.objects.get(pk=team_id)
    schedule = hours.schedule_for(team)
    now = clock.now()
    if schedule.is_open(now):
        if team_online(team_id):
            return None
        reason = "nobody_online"
        return _Unavailable(reason, page_routing.nobody_message.strip(), REASON_WORDS[reason], None)
    opens_at = schedule.next_opening(now)
    opens = (
        hours.opens_text(opens_at, now=now, zone=schedule.zone)
        if opens_at is not None
        else "a later day"
    )
    reason = "outside_hours"
    return _Unavailable(
        reason,
        page_routing.closed_message.replace("{opens}", opens).strip(),
        f"{REASON_WORDS[reason]}; opens {opens}, {schedule.zone.key}",
        opens_at,
    )


def _unavailable_apply(ticket: Ticket, team_id: int, page_routing: PageRouting) -> bool:
    """Tell the customer that nobody can answer yet, if so; hand back where the page
    says. Returns True when handed back. A ticket that waits and whose customer could not
    be told because the 24-hour window is shut owes them the notice
    (`notice_owed_send`)."""
    now = _unavailable_now(team_id, page_routing)
    if now is None:
        return False
    conversation = ticket.conversation
    back = page_routing.when_unavailable == PageRouting.WhenUnavailable.BOT
    refused = False
    if not now.text:
        untold = "the page has no message for this"
    elif conversation.control_state != ControlState.AGENT:
        untold = "the helpdesk does not have the conversation"
    else:
        untold = rules.send_policy(conversation, automated=True).refusal
        refused = bool(untold)
    detail = now.detail
    if untold:
        # The timeline says the customer was not told, and why (`UNTOLD`).
        detail = f"{detail}{UNTOLD}{untold}"[:500]
    owed = refused and not back
    if owed != ticket.notice_owed:  # (a reopened ticket may still carry an old one)
        ticket_change(ticket, TicketEvent.Kind.UNAVAILABLE, detail=detail, notice_owed=owed)
    else:
        ticket_change(ticket, TicketEvent.Kind.UNAVAILABLE, detail=detail)
    message = None if untold else _notice_create(ticket, now.text)
    if not back:
        if message is not None:
            enqueue_on_commit(tasks.message_send, message.pk)
        return False
    _hand_back(ticket, conversation, reason=now.reason, opens_at=now.opens_at)
    return True


def _notice_create(ticket: Ticket, text: str) -> Message:
    # tickets imports control, which imports this module: imported when used.
    from agents.services.tickets import notice_create  # noqa: PLC0415

    return notice_create(ticket, text)


def notice_owed_send(ticket: Ticket) -> str:
    """The customer wrote while their ticket owes them the notice that nobody can answer
    (`Ticket.notice_owed`: when the ticket started waiting the 24-hour window was shut:
    they had not written yet, or their message, sent before the bot's pass, was applied
    after it by another worker). Their message opened the window: tell them now, as the
    pass would have, unless somebody can answer by now or an agent wrote in the ticket
    meanwhile. Once, whatever the outcome: the flag is cleared. Returns a note for the
    delivery's log.

    Caller holds the conversation's lock, in a transaction, with the conversation's
    clocks (and its group's messages) written."""
    conversation = ticket.conversation
    ticket = ticket_lock(ticket.pk)
    ticket.conversation = conversation
    if not ticket.notice_owed or ticket.status == Ticket.Status.CLOSED:
        return "no notice owed"
    settings_row = PageRouting.objects.filter(page_id=conversation.page_id).first()
    team_id = page_team_id(conversation.page_id)
    now = None
    if settings_row is not None and team_id is not None:
        now = _unavailable_now(team_id, settings_row)
    if (
        now is None
        or not now.text
        or conversation.control_state != ControlState.AGENT
        or rules.send_policy(conversation, automated=True).refusal
        or ticket.messages.filter(  # an agent (or the Page Inbox) wrote meanwhile
            direction=Message.Direction.OUTBOUND,
            author_kind__in=[Message.Author.AGENT, Message.Author.PAGE_INBOX],
        ).exists()
    ):
        ticket.notice_owed = False
        ticket.save(update_fields=["notice_owed", "updated_at"])
        return "notice owed: no longer needed"
    ticket_change(ticket, TicketEvent.Kind.UNAVAILABLE, detail=now.detail, notice_owed=False)
    enqueue_on_commit(tasks.message_send, _notice_create(ticket, now.text).pk)
    return "notice owed: sent"


def _hand_back(
    ticket: Ticket, conversation: Conversation, *, reason: str, opens_at: datetime | None
) -> None:
    """Nobody can answer and the page gives such conversations back to the bot: the
    ticket closes (its outcome says why), the state goes `returning` with metadata that
    says why (`{"reason": "outside_hours", "opens_at": ...}`), and `tickets.ticket_return`
    sends the honest message first, then passes (or releases) with that metadata, as a
    close does. The pass is its own call, never carried by the message (the Send API's
    thread_control has no metadata, and the bot should read why)."""
    from agents.services.tickets import _handback_way  # noqa: PLC0415 -- see notice_create

    how = _handback_way(conversation.page)
    metadata = handover_metadata(
        ticket=ticket.pk,
        reason=reason,
        **({"opens_at": opens_at.isoformat(timespec="minutes")} if opens_at else {}),
    )
    words = f"nobody available: {REASON_WORDS[reason]}"
    ticket_change(
        ticket,
        TicketEvent.Kind.CLOSED,
        detail=words,
        status=Ticket.Status.CLOSED,
        closed_at=clock.now(),
        closing_note=words,
    )
    control_transition(
        conversation,
        to_state=ControlState.RETURNING,
        cause=ControlTransition.Cause.API,
        detail=f"ticket {ticket.pk}: {words}; "
        + ("releasing control" if how == Handback.RELEASE else "passing control to the bot"),
        metadata=metadata,
    )
    enqueue_on_commit(tasks.ticket_return, ticket.pk)


# --- Telling waiting customers their place ---------------------------------------------


def queue_notices_send() -> list[int]:
    """Inside office hours, tell each customer who has waited longer than the team's
    `queue_notice_after_seconds` their place in the queue, at most once per
    `queue_notice_interval_seconds`. Returns the tickets told.

    Two runs at once tell nobody twice: each ticket's wait row is locked and its
    `position_told_at` read again under the lock before anything is sent.
    """
    told: list[int] = []
    now = clock.now()
    for routing in TeamRouting.objects.filter(queue_notice_after_seconds__gt=0).select_related(
        "team"
    ):
        schedule = hours.schedule_for(routing.team)
        if not schedule.is_open(now):
            continue
        queue = team_queue(routing.team_id)
        for position, queued in enumerate(queue, start=1):
            if _queue_notice(queued, routing, position=position, now=now):
                told.append(queued.pk)
    return told


def _queue_notice(ticket: Ticket, routing: TeamRouting, *, position: int, now: datetime) -> bool:
    from agents.services.tickets import notice_create  # noqa: PLC0415 -- see above

    with transaction.atomic():
        conversation = conversation_lock(ticket.conversation_id)
        locked = ticket_lock(ticket.pk)
        wait = ticket_wait_lock(ticket.pk)
        if locked.status != Ticket.Status.WAITING or wait is None:
            return False
        if (now - wait.since).total_seconds() < routing.queue_notice_after_seconds:
            return False
        last = wait.position_told_at
        if (
            last is not None
            and (now - last).total_seconds() < routing.queue_notice_interval_seconds
        ):
            return False
        text = (
            PageRouting.objects.filter(page_id=conversation.page_id)
            .values_list("queue_message", flat=True)
            .first()
        )
        if not text or conversation.control_state != ControlState.AGENT:
            return False
        if rules.send_policy(conversation, automated=True).refusal:
            return False
        wait.position_told_at = now
        wait.save(update_fields=["position_told_at"])
        locked.conversation = conversation
        message = notice_create(locked, text.replace("{position}", str(position)))
        enqueue_on_commit(tasks.message_send, message.pk)
    return True
