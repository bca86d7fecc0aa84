"""Celery tasks: take ids, call one service.

Tasks that call the Graph API share `webhooks.queue.GraphTask` (retries of transient
errors with backoff and jitter, then `give_up`). Services enqueue these tasks by
reference (`tasks.message_send`) and these tasks call services: the two modules import
each other, which is safe because neither uses the other at import time.
"""

from __future__ import annotations

from celery import shared_task

from agents.services import contacts, control, csat, doctor, outbound, reconcile, routing, tickets
from webhooks.queue import GraphTask


class MessageSendTask(GraphTask):
    def give_up(self, message_id: int, *, reason: str) -> None:
        outbound.message_send_give_up(message_id=message_id, reason=reason)


class HandoverRequestTask(GraphTask):
    def give_up(self, conversation_id: int, *, reason: str) -> None:
        control.handover_request_fail(conversation_id=conversation_id, reason=reason)


class TicketReturnTask(GraphTask):
    time_limit = 120  # sends what is pending first, then passes control

    def give_up(self, ticket_id: int, *, reason: str) -> None:
        tickets.ticket_return_fail(ticket_id=ticket_id, reason=reason)


@shared_task(base=MessageSendTask)
def message_send(message_id: int) -> None:
    outbound.message_send(message_id=message_id)


@shared_task(base=HandoverRequestTask)
def handover_request(conversation_id: int) -> None:
    control.handover_request_send(conversation_id=conversation_id)


@shared_task(base=TicketReturnTask)
def ticket_return(ticket_id: int) -> None:
    tickets.ticket_return(ticket_id=ticket_id)


@shared_task(base=GraphTask)
def contact_profile_refresh(contact_id: int) -> None:
    """Given up: the fallback name stays; the next event of the contact tries again later."""
    contacts.contact_profile_refresh(contact_id=contact_id)


@shared_task(time_limit=30)
def typing_send(conversation_id: int, agent_id: int | None = None) -> None:
    """No retries: a typing indicator that arrives late is worse than none."""
    outbound.typing_send(conversation_id=conversation_id, agent_id=agent_id)


@shared_task(time_limit=30)
def seen_send(conversation_id: int, agent_id: int) -> None:
    """`mark_seen` when an agent opens the conversation; no retries either."""
    outbound.typing_send(conversation_id=conversation_id, agent_id=agent_id, action="mark_seen")


@shared_task(base=GraphTask)
def control_owner_check(conversation_id: int) -> None:
    """Ask Meta who owns the thread (the 24-hour lapse); retried while it does not answer."""
    control.control_owner_check(
        conversation_id=conversation_id, why="Messenger's 24-hour lapse was due"
    )


@shared_task(base=GraphTask)
def control_owner_recheck(conversation_id: int) -> None:
    """Ask Meta who owns the thread: a handover webhook older than the helpdesk's own
    last change arrived (`control.handover_event_apply`)."""
    control.control_owner_check(
        conversation_id=conversation_id,
        why="a handover webhook older than the helpdesk's last change arrived",
    )


@shared_task(base=GraphTask)
def control_owner_standby_check(conversation_id: int) -> None:
    """Ask Meta who owns the thread: the customer wrote on standby while the helpdesk
    had the conversation (`control.owner_check_on_standby`)."""
    control.control_owner_check(
        conversation_id=conversation_id,
        why="the customer's message came on standby while the helpdesk had the conversation",
    )


@shared_task(base=GraphTask)
def control_extend(conversation_id: int) -> None:
    reconcile.control_extend(conversation_id=conversation_id)


@shared_task(time_limit=120)
def outbox_resume(page_id: int) -> None:
    """A new token: the page's waiting replies go out, oldest first."""
    outbound.outbox_resume(page_id=page_id)


@shared_task(time_limit=120)
def outbox_probe() -> None:
    """Beat: try the paused pages again (a waiting reply, or a token check)."""
    reconcile.outbox_probe_all()


@shared_task(time_limit=60)
def outbound_redrive() -> None:
    reconcile.messages_unconfirmed_settle()
    reconcile.outbound_redrive()


@shared_task(time_limit=60)
def control_lapse_reconcile() -> None:
    reconcile.control_lapse_reconcile()
    reconcile.control_extend_due()


@shared_task(time_limit=60)
def csat_expire_due() -> None:
    """Beat: ratings not answered in time; their conversations go back to the bot."""
    csat.csat_expire_due()


@shared_task(time_limit=60)
def routing_assign(team_id: int) -> None:
    """Assign the team's queue to its online members with room (idempotent)."""
    routing.team_assign(team_id=team_id)


@shared_task(time_limit=120)
def routing_sweep() -> None:
    """Beat: stale sockets, every auto-assigning team's queue, queue-position notices."""
    routing.routing_sweep()


@shared_task(time_limit=30, ignore_result=True)
def doctor_heartbeat() -> None:
    """Beat: the doctor page's sign that beat and a worker are alive."""
    doctor.heartbeat()
