"""The helpdesk's read-only rules: when an agent may reply, how a message may go out,
when the messaging windows close, whether control may be requested, who may transfer.

Pure functions of rows already loaded: no query of their own, no lock, no write.
Services call them to refuse (raising `Conflict` with the reason they give); selectors
and the API call them to explain (a composer's lock reason, a window's countdown). A
reason is a sentence for agents; "" means allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from agents.models import Agent, ControlState, Conversation, Csat, OwnerRole, Ticket, agent_name
from helpdesk import clock
from webhooks.models import ControlMode, ControlWay, Page

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
# Under Conversation Routing, control lapses 24 h after the user's last message.
CONTROL_LAPSE = timedelta(hours=24)

# Why an agent cannot write while the thread is in a state the helpdesk does not own.
LOCK_REASONS: dict[str, str] = {
    ControlState.BOT: "The bot owns this conversation; request control to reply.",
    ControlState.REQUESTED: "Control was requested and the bot has not passed it yet.",
    ControlState.RETURNING: "The conversation is being passed back to the bot.",
    ControlState.TAKEN: "Another app took this conversation back; request control to reply.",
    ControlState.IDLE: "Nobody owns this conversation; request control to reply.",
}
NOT_OWNER = "The helpdesk does not own this conversation."


def lock_reason(state: str) -> str:
    """Why nobody may write in a conversation in `state`; "" when the helpdesk owns it."""
    if state == ControlState.AGENT:
        return ""
    return LOCK_REASONS.get(state, NOT_OWNER)


def owner_role(state: str, app_id: str | None, *, bot_app_id: str) -> OwnerRole:
    """Who owns a thread in `state` whose owner is `app_id` ("": nobody; None: not
    known, and the state says: the bot, or another app for one taken from us)."""
    if state in (ControlState.AGENT, ControlState.RETURNING):
        return OwnerRole.HELPDESK
    if state == ControlState.IDLE or app_id == "":
        return OwnerRole.NOBODY
    if app_id is None or app_id == settings.MESSENGER_APP_ID:
        return OwnerRole.OTHER_APP if state == ControlState.TAKEN else OwnerRole.BOT
    if app_id == bot_app_id:
        return OwnerRole.BOT
    if app_id == settings.PAGE_INBOX_APP_ID:
        return OwnerRole.PAGE_INBOX
    return OwnerRole.OTHER_APP


OWNER_TEXTS: dict[str, str] = {
    OwnerRole.HELPDESK: "The helpdesk has this conversation",
    OwnerRole.BOT: "The bot has this conversation",
    OwnerRole.PAGE_INBOX: "The Page Inbox has this conversation",
    OwnerRole.NOBODY: "Nobody owns this conversation",
    OwnerRole.UNKNOWN: "Another app has this conversation (Messenger does not say which)",
}
# Owners an agent never takes from (`take_over_refusal`): a person answering in the Page
# Inbox, or another app the page named. Unknown may be the bot (Meta would not say).
TAKEN_FROM_NOBODY_BUT_THE_BOT = (OwnerRole.PAGE_INBOX, OwnerRole.OTHER_APP)
LAPSE_NOTE = "Messenger gives control back after 24 h without a customer message"
WINDOW_CLOSED_FOR_CONTROL = (
    "The customer last wrote more than 24 hours ago: Messenger would give control back at "
    "once. Control can be asked for again after the customer writes."
)


def owner_text(conversation: Conversation) -> str:
    """Who owns the thread, in words, without the time (`owner_since`) or the reason
    (`owner_note`) that the inbox adds."""
    return owner_text_for(conversation.owner_role, conversation.owner_app_id)


def owner_text_for(role: str, app_id: str | None) -> str:
    if role == OwnerRole.OTHER_APP and app_id:
        return f"Another app ({app_id}) has this conversation"
    return OWNER_TEXTS.get(role, OWNER_TEXTS[OwnerRole.UNKNOWN])


def control_way(page: Page) -> str:
    """How a trigger gets control on this page: `request` or `take` (auto: what worked
    last, request until something did), or `none` (auto: Meta refused both; a trigger
    tries again in case the Page's settings changed)."""
    if page.control_mode == ControlMode.REQUEST:
        return ControlWay.REQUEST
    if page.control_mode == ControlMode.TAKE:
        return ControlWay.TAKE
    if page.control_way == ControlWay.TAKE:
        return ControlWay.TAKE
    return ControlWay.REQUEST


def handover_mode_text(page: Page) -> str:
    """The page's way in, for the conversation header."""
    if page.control_mode == ControlMode.REQUEST:
        return "Gets control by asking the bot"
    if page.control_mode == ControlMode.TAKE:
        return "Gets control by taking it (Conversation Routing)"
    if page.control_way == ControlWay.TAKE:
        return "Takes control (Meta refuses requests on this page)"
    if page.control_way == ControlWay.NONE:
        return "Waits for the bot to pass conversations (Meta refuses requests and takes)"
    return "Asks the bot first, takes control if refused"


def take_allowed(page: Page, conversation: Conversation) -> bool:
    """Whether taking is a way in for this conversation now: the page takes, or the
    thread is idle on a Conversation Routing page (any app may take an idle thread)."""
    if not page.conversation_routing:
        return False
    if control_way(page) == ControlWay.TAKE:
        return True
    return conversation.control_state == ControlState.IDLE


def outbox_paused_text(page: Page) -> str:
    """Why nothing can be sent from this page right now, for a banner; "" when sending works."""
    if not page.outbox_paused_reason:
        return ""
    return (
        f"Sending is paused for {page.name}: {page.outbox_paused_reason}. Replies wait and go "
        "out by themselves when it is fixed."
    )


def control_lapse_ms(last_user_message_at: datetime, control_expires_at: int | None) -> int:
    """When our Conversation Routing control lapses (epoch ms): 24 h after the customer's
    last message, or later where we extended it."""
    lapse = int((last_user_message_at + CONTROL_LAPSE).timestamp() * 1000)
    return max(lapse, control_expires_at or 0)


def sending_allowed(state: str) -> bool:
    """Whether a queued message may still go out: we own the thread, or we are about to
    pass it back (the closing message goes first)."""
    return state in (ControlState.AGENT, ControlState.RETURNING)


@dataclass(frozen=True)
class SendPolicy:
    """How a message may go out now (`messaging_type`, `tag`), or why not (`refusal`)."""

    messaging_type: str = ""
    tag: str | None = None
    refusal: str = ""


def send_policy(
    conversation: Conversation, *, now: datetime | None = None, automated: bool = False
) -> SendPolicy:
    """`RESPONSE` inside 24 h of the user's last message, `MESSAGE_TAG`/`HUMAN_AGENT` up to
    7 days where the page has that feature (only for what a person wrote: never for an
    `automated` message such as the hand-back notice), refused otherwise. Reads
    `conversation.page`."""
    last = conversation.last_user_message_at
    age = (now or clock.now()) - last if last else None
    human_agent = conversation.page.human_agent_enabled
    if age is not None and age <= STANDARD_WINDOW:
        return SendPolicy("RESPONSE")
    if automated:
        return SendPolicy(
            refusal="The 24-hour messaging window is closed: Messenger allows only messages "
            "a person wrote after it (with the Human Agent tag)."
        )
    if age is not None and age <= HUMAN_AGENT_WINDOW and human_agent:
        return SendPolicy("MESSAGE_TAG", "HUMAN_AGENT")
    if age is not None and age <= HUMAN_AGENT_WINDOW:
        return SendPolicy(
            refusal="The 24-hour messaging window is closed and this page does not have "
            "the Human Agent feature."
        )
    if age is None:
        return SendPolicy(
            refusal="Messenger allows no reply until the customer writes: no message of "
            "theirs has reached the helpdesk yet."
        )
    return SendPolicy(
        refusal="Messenger allows no reply until the customer writes again: they last wrote "
        "more than " + ("7 days" if human_agent else "24 hours") + " ago."
    )


@dataclass(frozen=True)
class Windows:
    """When the messaging windows close (None: the user never wrote, or no such window)."""

    standard_closes_at: datetime | None
    human_agent_closes_at: datetime | None


def conversation_windows(conversation: Conversation, *, now: datetime | None = None) -> Windows:
    """The 24-hour window and, where the page has the Human Agent feature, the 7-day one,
    both counted from the user's last message (the rule `send_policy` applies).

    A last message stamped after `now` (Meta's clock ahead of ours, up to what the
    parser accepts) counts as sent now: a window never closes later than its length
    from now, so no countdown shows more than 24 hours (or 7 days).
    """
    last = conversation.last_user_message_at
    if last is None:
        return Windows(None, None)
    last = min(last, now or clock.now())
    human = last + HUMAN_AGENT_WINDOW if conversation.page.human_agent_enabled else None
    return Windows(last + STANDARD_WINDOW, human)


def reply_refusal(ticket: Ticket, user: Agent) -> str:
    """Why `user` may not write in this ticket, windows aside; "" when they may.

    Reads `ticket.conversation` and `ticket.assignee`.
    """
    if ticket.status == Ticket.Status.CLOSED:
        return "This ticket is closed."
    reason = lock_reason(ticket.conversation.control_state)
    if reason:
        return reason
    if ticket.assignee_id not in (None, user.pk) and ticket.assignee is not None:
        return f"This ticket is assigned to {agent_name(ticket.assignee)}."
    return ""


def reply_lock_reason(ticket: Ticket, user: Agent) -> str:
    """Why the agent cannot reply to this ticket now, in words; "" when they can.

    What `ticket_reply` would refuse, for the composer to show. Reads
    `ticket.conversation.page` and `ticket.assignee`: select them with the ticket to
    keep lists at a constant number of queries.
    """
    conversation = ticket.conversation
    if (
        ticket.status != Ticket.Status.CLOSED
        and conversation.control_state in (ControlState.TAKEN, ControlState.IDLE, ControlState.BOT)
        and ticket.flagged
        and ticket.flag_reason
    ):
        return ticket.flag_reason  # names who has it, and why
    return reply_refusal(ticket, user) or send_policy(conversation).refusal


def control_request_refusal(conversation: Conversation, *, now: datetime | None = None) -> str:
    """Why the helpdesk may not ask for this thread now; "" when it may.

    A request unanswered for HANDOVER_REQUEST_TIMEOUT_SECONDS no longer counts as
    pending: a bot that ignores requests must not lock the user out of humans.
    """
    state = conversation.control_state
    if state == ControlState.AGENT:
        return "The helpdesk already owns this conversation."
    if state == ControlState.RETURNING:
        return LOCK_REASONS[ControlState.RETURNING]
    if state == ControlState.REQUESTED and conversation.requested_at is not None:
        timeout = timedelta(seconds=settings.HANDOVER_REQUEST_TIMEOUT_SECONDS)
        if (now or clock.now()) - conversation.requested_at < timeout:
            return "Control was already requested; waiting for the bot."
    return ""


def ticket_control_request_refusal(
    ticket: Ticket, *, open_ticket: bool, now: datetime | None = None
) -> str:
    """Why an agent may not ask the bot for this ticket's thread now; "" when they may.

    An unclosed ticket asks while the bot (or another app, or nobody) has the thread. A
    closed one asks for the conversation again: only while the 24-hour window is open
    (control would come with nothing to say otherwise) and while the customer has no
    unclosed ticket (`open_ticket`: that one is where to ask). When control comes, the
    closed ticket reopens or a new one opens (`control.control_gained`).
    """
    conversation = ticket.conversation
    closes_at = conversation_windows(conversation).standard_closes_at
    window_closed = closes_at is None or closes_at <= (now or clock.now())
    if ticket.status == Ticket.Status.CLOSED:
        if open_ticket:
            return "This customer has an open ticket: ask for the conversation there."
        if window_closed:
            return (
                "The 24-hour window is closed: the conversation can only be asked for "
                "again after the customer writes."
            )
    refusal = control_request_refusal(conversation, now=now)
    if not refusal and window_closed and conversation.page.conversation_routing:
        return WINDOW_CLOSED_FOR_CONTROL
    return refusal


def take_over_refusal(ticket: Ticket, *, open_ticket: bool, now: datetime | None = None) -> str:
    """Why an agent may not take this ticket's conversation now; "" when they may: the
    rules of asking for it (`ticket_control_request_refusal`), taking must be a way in
    (`take_allowed`), and the thread is the bot's, nobody's or of an app Meta would not
    name, never the Page Inbox's or another known app's."""
    refusal = ticket_control_request_refusal(ticket, open_ticket=open_ticket, now=now)
    if refusal:
        return refusal
    conversation = ticket.conversation
    if not conversation.page.conversation_routing:
        return (
            "Taking control needs Conversation Routing; this page uses the legacy "
            "Handover Protocol."
        )
    if not take_allowed(conversation.page, conversation):
        return (
            "This page does not let the helpdesk take conversations from the bot; ask "
            "the bot for it instead."
        )
    if conversation.owner_role in TAKEN_FROM_NOBODY_BUT_THE_BOT:
        return (
            f"{owner_text_for(conversation.owner_role, conversation.owner_app_id)}: the "
            "helpdesk takes a conversation only from the bot, never from a person at the "
            "page or another known app. Ask for it instead."
        )
    return ""


def transfer_refusal(ticket: Ticket, user: Agent) -> str:
    """Why `user` may not transfer this unclosed ticket; "" when they may: its assignee,
    anyone while it waits, and admins. Reads `ticket.assignee`."""
    if ticket.assignee is None or ticket.assignee_id == user.pk or user.is_superuser:
        return ""
    return (
        f"This ticket is assigned to {agent_name(ticket.assignee)}; only they or an admin "
        "can transfer it."
    )


# --- CSAT before hand-back (issue 11, point 9; agents.services.csat) ------------------

CSAT_WINDOW_CLOSED = "No rating question: the 24-hour messaging window is closed."


def csat_refusal(conversation: Conversation, *, now: datetime | None = None) -> str:
    """Why no rating question can go out now ("" when it can): the page does not ask,
    or Messenger's 24-hour window is closed (the question is an automated message)."""
    if not conversation.page.csat_enabled:
        return "This page does not ask for a rating."
    if send_policy(conversation, now=now, automated=True).refusal:
        return CSAT_WINDOW_CLOSED
    return ""


def ticket_csat(ticket: Ticket) -> Csat | None:
    """The ticket's rating row, if any (`selectors.ticket_list` joins it)."""
    try:
        return ticket.csat
    except Csat.DoesNotExist:
        return None


def csat_close_note(ticket: Ticket, *, now: datetime | None = None) -> str:
    """What closing this ticket does about a rating, for the close dialog ("" when the
    page asks for none, or when closing hands nothing back)."""
    conversation = ticket.conversation
    if (
        ticket.status == Ticket.Status.CLOSED
        or not conversation.page.csat_enabled
        or conversation.control_state != ControlState.AGENT
    ):
        return ""
    if ticket_csat(ticket) is not None:
        return "This ticket was asked for a rating before: it is not asked again."
    refusal = csat_refusal(conversation, now=now)
    if refusal:
        return refusal
    minutes = conversation.page.csat_wait_minutes
    return (
        "The customer is asked for a rating (1 to 5) after your closing message. The bot "
        f"gets the conversation back after their answer, or after {minutes_text(minutes)}."
    )


def minutes_text(minutes: int) -> str:
    """ "10 minutes", "1 minute", "2 hours": a wait in words."""
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def csat_text(rating: Csat | None) -> str:
    """The rating as agents see it: "Rated 4/5", "Waiting for the customer's rating"
    (the inbox adds until when), "No rating"."""
    if rating is None:
        return ""
    if rating.score is not None:
        late = " (after the hand-back)" if rating.answered_late else ""
        return f"Rated {rating.score}/5{late}"
    if rating.status == Csat.Status.WAITING:
        return "Waiting for the customer's rating"
    return "No rating (no answer in time)"
