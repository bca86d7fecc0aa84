"""CSAT before hand-back (issue 11, point 9): the rating question a page may send when a
ticket closes, the answer, the thank-you, and the deferred hand-back.

The flow, on a page with `Page.csat_enabled`, inside the 24-hour window:

1. `ticket_close` queues the closing message (if any), then the question (`csat_ask`:
   quick replies 1 to 5, payload `CSAT:<ticket id>:<n>`). The conversation is `returning`
   but the hand-back waits: `tickets.ticket_return` sends what is pending and stops while
   the rating is `waiting`.
2. The customer taps a number (or types one): `csat_answer_inbound` records it, queues
   the thank-you, then the page's hand-back notice (which carries the hand-back on
   Conversation Routing pages; without a notice the thank-you carries it), and the
   return task hands back as on any close.
3. No answer by `expires_at`: `csat_expire_due` (beat) ends the wait and hands back
   without a thank-you (the notice still goes first where the page has one).

Every change here is made under the conversation's lock (`agents.locks`), which the
answer (the inbound path holds it) and the sweep both take: of an answer and the
timeout arriving together exactly one wins, and the thank-you, the notice and the
hand-back are queued once.

Other things the customer writes while the rating is awaited join the closed ticket (the
agent sees them) and the wait goes on; a typed "1" to "5" counts as the answer. An
answer that arrives after the hand-back (a tap on the old question, on standby) is still
recorded on the ticket the payload names, without a thank-you (the bot has the
conversation). The first answer stands: later taps change nothing.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.db import transaction

from agents import realtime, rules
from agents.locks import conversation_lock
from agents.models import ControlState, Conversation, Csat, Message, Ticket
from agents.services import tickets
from agents.services.state import now_ms, system_message_add
from helpdesk import clock

PAYLOAD_PREFIX = "CSAT:"
PAYLOAD = re.compile(r"^CSAT:(\d{1,18}):([1-5])$")
# A typed answer: "4", "4/5", "4 ." — only while the rating is awaited.
TYPED = re.compile(r"^\s*([1-5])\s*(?:/\s*5)?\s*[.!]?\s*$")
SCORES = range(1, 6)
EXPIRE_BATCH = 500


def csat_payload(ticket_id: int, score: int) -> str:
    return f"{PAYLOAD_PREFIX}{ticket_id}:{score}"


def csat_ask(ticket: Ticket, conversation: Conversation, *, now: datetime) -> bool:
    """Queue the rating question after the closing message, if the page asks for one;
    returns whether it did (then the hand-back waits for the answer or the timeout).

    A ticket is asked once: one closed again after a reopening is not asked again. Outside
    the 24-hour window (at `now`) nothing is asked, and the timeline says so. Caller
    holds the conversation's lock, the conversation `returning`, the ticket just closed.
    """
    page = conversation.page
    if not page.csat_enabled or Csat.objects.filter(ticket=ticket).exists():
        return False
    refusal = rules.csat_refusal(conversation, now=now)
    if refusal:
        system_message_add(conversation, refusal, timestamp=now_ms(), ticket=ticket)
        return False
    return _question_queue(ticket, conversation)


def csat_will_ask(ticket: Ticket, conversation: Conversation, *, now: datetime) -> bool:
    """Whether closing this ticket at `now` asks for a rating (`csat_ask` would)."""
    return (
        conversation.page.csat_enabled
        and not rules.csat_refusal(conversation, now=now)
        and not Csat.objects.filter(ticket=ticket).exists()
    )


def _question_queue(ticket: Ticket, conversation: Conversation) -> bool:
    page = conversation.page
    question = tickets.notice_create(
        ticket,
        page.csat_question.strip() or "How did we do?",
        quick_replies=[
            {"title": str(score), "payload": csat_payload(ticket.pk, score)} for score in SCORES
        ],
    )
    asked_at = clock.now()
    Csat.objects.create(
        ticket=ticket,
        question=question,
        asked_at=asked_at,
        expires_at=asked_at + timedelta(minutes=page.csat_wait_minutes),
    )
    return True


def csat_waiting(*, ticket_id: int) -> bool:
    """Whether the ticket's rating is still awaited (the hand-back waits)."""
    return Csat.objects.filter(ticket_id=ticket_id, status=Csat.Status.WAITING).exists()


def csat_may_answer(conversation: Conversation, message: Message) -> bool:
    """Whether the message may answer a rating question (`csat_answer_inbound` looks
    further): a rating tap, or any message while the conversation is being handed
    back. Reads nothing from the database."""
    return (
        message.quick_reply_payload.startswith(PAYLOAD_PREFIX)
        or conversation.control_state == ControlState.RETURNING
    )


def csat_answer_inbound(conversation: Conversation, message: Message) -> str | None:
    """A customer's message may answer a rating question: a tap (its payload names the
    ticket) at any time, or a typed 1 to 5 while a rating is awaited. Returns a note for
    the event log, or None when the message is no answer.

    A payload that is not ours to understand, or names a ticket of another conversation,
    changes nothing. Caller holds the conversation's lock (`inbound.message_record_inbound`)."""
    payload = message.quick_reply_payload
    if payload.startswith(PAYLOAD_PREFIX):
        match = PAYLOAD.match(payload)
        if match is None:
            return "rating payload not understood: ignored"
        rating = Csat.objects.filter(
            ticket_id=int(match.group(1)), ticket__conversation=conversation
        ).first()
        if rating is None:
            return "rating for no ticket of this conversation: ignored"
        score = int(match.group(2))
    else:
        if conversation.control_state != ControlState.RETURNING:
            return None
        match = TYPED.match(message.text)
        if match is None:
            return None
        rating = (
            Csat.objects.filter(ticket__conversation=conversation, status=Csat.Status.WAITING)
            .order_by("-asked_at")
            .first()
        )
        if rating is None or message.timestamp < int(rating.asked_at.timestamp() * 1000):
            return None
        score = int(match.group(1))
    return _answer(conversation, rating, score=score, timestamp=message.timestamp)


def _answer(conversation: Conversation, rating: Csat, *, score: int, timestamp: int) -> str:
    """Record the first answer; in time, queue the thank-you and the hand-back."""
    if rating.score is not None:
        return f"already rated {rating.score}/5: this answer changes nothing"
    ticket = Ticket.objects.get(pk=rating.ticket_id)
    in_time = rating.status == Csat.Status.WAITING
    rating.score = score
    rating.answered_at = clock.now()
    rating.answered_late = not in_time
    if in_time:
        rating.status = Csat.Status.ANSWERED
    rating.save(update_fields=["score", "answered_at", "answered_late", "status"])
    late = "" if in_time else " (after the conversation went back to the bot)"
    system_message_add(
        conversation, f"The customer rated {score}/5{late}.", timestamp=timestamp, ticket=ticket
    )
    realtime.broadcast_on_commit(
        "ticket.updated", ticket_id=ticket.pk, conversation_id=conversation.pk
    )
    if not in_time:
        return f"late rating {score}/5 recorded"
    if conversation.control_state != ControlState.RETURNING:
        return f"rating {score}/5 recorded; the conversation is no longer ours to hand back"
    last = None
    thanks = conversation.page.csat_thanks.strip()
    if thanks and not rules.send_policy(conversation, automated=True).refusal:
        last = tickets.notice_create(ticket, thanks)
    tickets.handback_queue(ticket, conversation, last=last)
    return f"rating {score}/5 recorded; thank-you and hand-back queued"


def csat_expire_due() -> list[int]:
    """Beat: ratings not answered in time end their wait; the conversation goes back to
    the bot without a thank-you. Returns the tickets whose wait ended here (an answer
    that won the race under the conversation's lock is left alone)."""
    due = list(
        Csat.objects.filter(status=Csat.Status.WAITING, expires_at__lte=clock.now())
        .order_by("expires_at")
        .values_list("ticket_id", "ticket__conversation_id")[:EXPIRE_BATCH]
    )
    expired = []
    for ticket_id, conversation_id in due:
        if csat_expire(ticket_id=ticket_id, conversation_id=conversation_id):
            expired.append(ticket_id)
    return expired


def csat_expire(*, ticket_id: int, conversation_id: int) -> bool:
    """End one rating's wait if it is still waiting and due; returns whether it did."""
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        rating = Csat.objects.select_related("ticket").get(ticket_id=ticket_id)
        if rating.status != Csat.Status.WAITING or rating.expires_at > clock.now():
            return False
        rating.status = Csat.Status.EXPIRED
        rating.save(update_fields=["status"])
        ticket = rating.ticket
        waited = rules.minutes_text(conversation.page.csat_wait_minutes)
        back = (
            ": the conversation goes back to the bot"
            if conversation.control_state == ControlState.RETURNING
            else ""
        )
        system_message_add(
            conversation, f"No rating within {waited}{back}.", timestamp=now_ms(), ticket=ticket
        )
        realtime.broadcast_on_commit(
            "ticket.updated", ticket_id=ticket.pk, conversation_id=conversation.pk
        )
        if conversation.control_state == ControlState.RETURNING:
            tickets.handback_queue(ticket, conversation, last=None)
    return True
