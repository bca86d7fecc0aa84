"""Celery tasks: take ids, call one service. Retries for transient Graph errors only."""

import random

from celery import shared_task
from django.conf import settings

from agents import services
from webhooks.graph import GraphError


def _countdown(retries: int) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, settings.GRAPH_RETRY_BACKOFF_SECONDS * (2**retries))


@shared_task(bind=True, acks_late=True, time_limit=60, max_retries=None)
def message_send(self, message_id: int) -> None:
    try:
        outcome = services.message_send(message_id=message_id)
    except GraphError as exc:
        if self.request.retries >= settings.GRAPH_RETRY_MAX:
            services.message_send_give_up(message_id=message_id, reason=exc.describe())
            return
        countdown = _countdown(self.request.retries)
        if exc.uncertain:
            # The send may have gone through: give its echo time to confirm it first.
            countdown = max(countdown, settings.GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS)
        raise self.retry(countdown=countdown) from None
    if outcome == services.Outcome.BUSY:
        raise self.retry(countdown=1 + _countdown(0))


@shared_task(bind=True, acks_late=True, time_limit=60, max_retries=None)
def handover_request(self, conversation_id: int) -> None:
    try:
        services.handover_request_send(conversation_id=conversation_id)
    except GraphError as exc:
        if self.request.retries >= settings.GRAPH_RETRY_MAX:
            services.handover_request_fail(conversation_id=conversation_id, reason=exc.describe())
            return
        raise self.retry(countdown=_countdown(self.request.retries)) from None


@shared_task(bind=True, acks_late=True, time_limit=120, max_retries=None)
def ticket_return(self, ticket_id: int) -> None:
    try:
        outcome = services.ticket_return(ticket_id=ticket_id)
    except GraphError as exc:
        if self.request.retries >= settings.GRAPH_RETRY_MAX:
            services.ticket_return_fail(ticket_id=ticket_id, reason=exc.describe())
            return
        raise self.retry(countdown=_countdown(self.request.retries)) from None
    if outcome == services.Outcome.BUSY:
        raise self.retry(countdown=1 + _countdown(0))


@shared_task(bind=True, acks_late=True, time_limit=60, max_retries=None)
def contact_profile_refresh(self, contact_id: int) -> None:
    try:
        services.contact_profile_refresh(contact_id=contact_id)
    except GraphError:
        if self.request.retries >= settings.GRAPH_RETRY_MAX:
            return  # the fallback name stays; the next contact event tries again later
        raise self.retry(countdown=_countdown(self.request.retries)) from None


@shared_task(time_limit=30)
def typing_send(conversation_id: int) -> None:
    """No retries: a typing indicator that arrives late is worse than none."""
    services.typing_send(conversation_id=conversation_id)


@shared_task(time_limit=60)
def outbound_redrive() -> None:
    services.outbound_redrive()


@shared_task(time_limit=60)
def control_lapse_reconcile() -> None:
    services.control_lapse_reconcile()
