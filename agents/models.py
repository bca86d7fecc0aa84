"""The helpdesk side: contacts, conversations and their thread-control state, tickets, messages."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from webhooks.models import Page

# Support agents are Django's users (AUTH_USER_MODEL is not swapped): the type services,
# rules and selectors take for "the agent acting".
Agent = User


def agent_name(agent: Agent) -> str:
    """An agent as other agents see them: their full name where one is set, else their
    username (audit rows and metadata for the bot keep the username)."""
    return agent.get_full_name() or agent.get_username()


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    pages = models.ManyToManyField(
        Page,
        blank=True,
        related_name="teams",
        help_text="The team's agents see these pages' conversations. A page on no team "
        "is seen by every agent.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="teams",
        help_text="An agent on no team sees only the pages that are on no team.",
    )

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(
        max_length=8, help_text="The token's first characters, to tell tokens apart."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.user} {self.prefix}…"


class Trigger(models.Model):
    """What, arriving on standby, makes the helpdesk ask the bot for the conversation."""

    class Kind(models.TextChoices):
        POSTBACK_TITLE = "postback_title", "postback title"
        QUICK_REPLY_PAYLOAD = "quick_reply_payload", "quick-reply payload"
        KEYWORD = "keyword", "text keyword"

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="triggers")
    kind = models.CharField(
        max_length=32,
        choices=Kind,
        help_text="What the customer does: taps a button (its title), a quick reply "
        "(its payload), or writes a message containing the keyword.",
    )
    value = models.CharField(
        max_length=1000,
        help_text="Compared without regard to case. Counts only while the bot has the "
        "conversation: it makes the helpdesk ask the bot for it.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["page", "kind", "value"], name="trigger_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class Contact(models.Model):
    """A Messenger user, as one Page knows them (PSIDs are per Page)."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="contacts")
    psid = models.CharField(
        max_length=64,
        verbose_name="PSID",
        help_text="The person's page-scoped id: the same person has another one on each page.",
    )
    first_name = models.CharField(max_length=200, blank=True)
    last_name = models.CharField(max_length=200, blank=True)
    profile_pic = models.URLField(max_length=2000, blank=True)
    profile_fetched_at = models.DateTimeField(null=True, blank=True)
    profile_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The context panel's note on the customer (issue 11): what agents want the next
    # agent to know. Changed only by agents.services.context.contact_note_update.
    note = models.TextField(
        blank=True,
        max_length=2000,
        help_text="Agents' note on this customer, shown beside every conversation with them.",
    )
    note_updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who last changed the note.",
    )
    note_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the note was last changed."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["page", "psid"], name="contact_unique_psid"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or f"Messenger user …{self.psid[-4:]}"


class ControlState(models.TextChoices):
    BOT = "bot", "bot owns the thread"
    REQUESTED = "requested", "control requested"
    AGENT = "agent", "helpdesk owns the thread"
    RETURNING = "returning", "passing back to the bot"
    TAKEN = "taken", "taken by another app"
    IDLE = "idle", "idle (nobody owns it)"


class OwnerRole(models.TextChoices):
    """Who owns a thread, as agents are told (an app id alone says little)."""

    HELPDESK = "helpdesk", "the helpdesk"
    BOT = "bot", "the bot"
    PAGE_INBOX = "page_inbox", "the Page Inbox"
    OTHER_APP = "other_app", "another app"
    NOBODY = "nobody", "nobody (idle)"
    UNKNOWN = "unknown", "unknown"


class Conversation(models.Model):
    """One thread (page + PSID) and its thread-control state, which only services change."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="conversation")
    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="conversations")
    control_state = models.CharField(
        max_length=16,
        choices=ControlState,
        default=ControlState.BOT,
        verbose_name="thread control",
        help_text="Who has the conversation in Messenger: the bot, the helpdesk, "
        "another app or nobody.",
    )
    owner_app_id = models.CharField(
        max_length=64, blank=True, help_text="The owning app as last seen, if known."
    )
    control_event_timestamp = models.BigIntegerField(
        default=0,
        help_text="Timestamp (ms) of the last applied handover event: an older "
        "event arriving late does not undo a newer one.",
    )
    control_known_at = models.BigIntegerField(
        default=0,
        help_text="When (epoch ms) the helpdesk last learned who owns the thread other "
        "than from a handover webhook (its own pass, take, release or request, a check "
        "with Meta): a handover webhook older than that is checked with Meta first.",
    )
    control_metadata = models.TextField(blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    requested_way = models.CharField(
        max_length=8,
        blank=True,
        help_text="How control is being asked for while `requested`: request or take.",
    )
    owner_role = models.CharField(
        max_length=16,
        choices=OwnerRole,
        default=OwnerRole.BOT,
        help_text="Who owns the thread, as last known.",
    )
    owner_since = models.BigIntegerField(
        default=0, help_text="Since when (epoch ms) that owner has the thread, if known."
    )
    owner_note = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why, where it helps the agent (e.g. Messenger's 24-hour lapse).",
    )
    control_expires_at = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="When our control lapses (Conversation Routing, epoch ms), as extended.",
    )
    waiting_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="The customer asked for a person and Meta lets us neither request nor "
        "take the conversation: why, until the bot passes it.",
    )
    last_user_message_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    typing_sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a typing indicator was last sent: they are throttled per conversation.",
    )
    delivered_watermark = models.BigIntegerField(
        default=0,
        help_text="Messenger's last delivery watermark (ms): our messages up to it reached "
        "the customer, including one whose send was still being confirmed.",
    )
    read_watermark = models.BigIntegerField(
        default=0,
        help_text="Messenger's last read watermark (ms): the customer saw our messages up to it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.contact} on {self.page.name}"


class ControlTransition(models.Model):
    """Audit log: every change of a conversation's thread-control state."""

    class Cause(models.TextChoices):
        WEBHOOK = "webhook"
        API = "api", "Graph API call"
        AGENT = "agent", "agent action"
        RECONCILE = "reconcile", "reconciliation"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="transitions"
    )
    from_state = models.CharField(max_length=16, choices=ControlState)
    to_state = models.CharField(max_length=16, choices=ControlState)
    cause = models.CharField(max_length=16, choices=Cause)
    detail = models.CharField(max_length=500, blank=True)
    metadata = models.TextField(blank=True)
    event_timestamp = models.BigIntegerField(null=True, blank=True)
    owner_role = models.CharField(
        max_length=16,
        choices=OwnerRole,
        blank=True,
        help_text="Who owns the thread after this change (empty on rows older than the field).",
    )
    owner_app_id = models.CharField(
        max_length=64, blank=True, help_text="The owning app after this change, if known."
    )
    at = models.BigIntegerField(
        default=0,
        help_text="When the change happened, epoch ms: the handover event's timestamp, "
        "else when it was recorded. The timeline reads who owned the thread by it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "handover history entry"
        verbose_name_plural = "handover history"
        indexes = [
            models.Index(fields=["conversation", "at"], name="transition_conversation_at"),
            # The reports read take-backs and lapses over a range of days.
            models.Index(fields=["created_at"], name="transition_created"),
        ]

    def __str__(self) -> str:
        return f"{self.from_state} → {self.to_state} ({self.cause})"


class Ticket(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting"
        OPEN = "open"
        CLOSED = "closed"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="tickets")
    status = models.CharField(max_length=16, choices=Status, default=Status.WAITING)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
    )
    handover_metadata = models.TextField(blank=True)
    handover_timestamp = models.BigIntegerField(
        default=0, help_text="When control came to us (ms): messages before it are context."
    )
    flagged = models.BooleanField(default=False, verbose_name="needs attention")
    flag_reason = models.CharField(
        max_length=500, blank=True, help_text="What needs an agent's eye, shown on the ticket."
    )
    closing_note = models.TextField(
        blank=True, verbose_name="outcome", help_text="The outcome given when it was closed."
    )
    notice_owed = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Nobody could answer and the 24-hour window was shut: the customer is "
        "told at their next message (agents.services.routing.notice_owed_send).",
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Given in admin to support leads (a group "Support leads", say): the reports page.
        permissions = [("view_reports", "Can see the support reports")]
        constraints = [
            # One ticket at a time per conversation.
            models.UniqueConstraint(
                fields=["conversation"],
                condition=~Q(status="closed"),
                name="ticket_one_unclosed_per_conversation",
            ),
            models.CheckConstraint(
                condition=Q(status="waiting", assignee__isnull=True)
                | Q(status="open", assignee__isnull=False)
                | Q(status="closed"),
                name="ticket_assignee_matches_status",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "opened_at"]),
            # The reports: tickets opened in a range of days, whatever their status.
            models.Index(fields=["opened_at"], name="ticket_opened"),
            # The closed queue, newest first, a page at a time (selectors.ticket_page).
            models.Index(fields=["status", "closed_at", "id"], name="ticket_closed_order"),
            # The unclosed queues (all_open, mine) in their order, read from the start of
            # these partial indexes (a few % of the rows). `status IN (waiting, open)` is
            # two ranges of (status, opened_at), which neither database merges in order:
            # every unclosed ticket was read and sorted, with the list's per-ticket
            # subqueries, to show the first page. The lists ask `NOT status = closed`, the
            # very condition of these indexes (ticket_assignee_matches_status makes it mean
            # unclosed):
            # SQLite matches a partial index only on the same expression.
            models.Index(
                fields=["opened_at", "id"],
                condition=~Q(status="closed"),
                name="ticket_unclosed_order",
            ),
            models.Index(
                fields=["assignee", "opened_at", "id"],
                condition=~Q(status="closed"),
                name="ticket_unclosed_by_assignee",
            ),
        ]

    def __str__(self) -> str:
        return f"ticket {self.pk} ({self.status})"


class HandoverTrigger(models.TextChoices):
    """What started a handover (a ticket opened or reopened), for the reports."""

    BOT = "bot", "the bot handed over"
    KEYWORD = "keyword", "keyword trigger"
    POSTBACK = "postback", "postback trigger"
    QUICK_REPLY = "quick_reply", "quick-reply trigger"
    AGENT = "agent", "an agent asked"
    PAGE_INBOX = "page_inbox", "the Page Inbox handed over"
    OTHER_APP = "other_app", "another app handed over"
    UNKNOWN = "", "not recorded"


class HandoverWay(models.TextChoices):
    """How control came to the helpdesk in a handover, for the reports."""

    PASS = "pass", "passed to us"
    REQUEST = "request", "our request, granted"
    TAKE = "take", "taken by us"
    UNKNOWN = "", "not recorded"


class TicketEvent(models.Model):
    """Every change to a ticket leaves a row: opened, claimed, closed, reopened, flagged…"""

    class Kind(models.TextChoices):
        OPENED = "opened"
        REOPENED = "reopened"
        CLAIMED = "claimed"
        TRANSFERRED = "transferred"
        CLOSED = "closed"
        CONTROL_REGAINED = "control_regained", "control regained"
        CONTROL_LOST = "control_lost", "control lost"
        CONTROL_REQUESTED_BY_OTHER = "control_requested_by_other", "another app asked for control"
        RETURN_FAILED = "return_failed", "hand-back to the bot failed"
        CONTROL_EXTENDED = "control_extended", "control extended"
        TAGGED = "tagged"
        UNTAGGED = "untagged"
        ASSIGNED = "assigned", "assigned automatically"
        UNAVAILABLE = "unavailable", "nobody available"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.CharField(max_length=500, blank=True)
    event_timestamp = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The platform's time (epoch ms) of the handover that caused it (opened, "
        "reopened); the timeline places the event there rather than when it was processed.",
    )
    trigger = models.CharField(
        max_length=16,
        choices=HandoverTrigger,
        blank=True,
        default="",
        db_default="",
        help_text="Opened or reopened: what started the handover (empty on older rows).",
    )
    way = models.CharField(
        max_length=16,
        choices=HandoverWay,
        blank=True,
        default="",
        db_default="",
        help_text="Opened or reopened: how control came to us (empty on older rows).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "ticket history entry"
        verbose_name_plural = "ticket history"
        # The reports read a range of one kind (handovers) by day (agents.reports).
        indexes = [models.Index(fields=["kind", "created_at"], name="ticketevent_kind_created")]

    def __str__(self) -> str:
        return f"ticket {self.ticket_id}: {self.get_kind_display()}"


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "in"
        OUTBOUND = "out"

    class Author(models.TextChoices):
        CUSTOMER = "customer"
        BOT = "bot"
        PAGE_INBOX = "page_inbox", "Page Inbox"
        AGENT = "agent"
        SYSTEM = "system"

    class Status(models.TextChoices):
        RECEIVED = "received"
        PENDING = "pending"
        SENDING = "sending"
        # Meta did not answer in time: the send may have gone through. Its echo confirms
        # it; without one, it fails after GRAPH_CONFIRM_SECONDS ("may not have been
        # delivered"), for the agent to retry. Never sent again on its own.
        CONFIRMING = "confirming", "confirming (waiting for Meta's echo)"
        SENT = "sent"
        DELIVERED = "delivered"
        READ = "read"
        FAILED = "failed"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction)
    author_kind = models.CharField(max_length=16, choices=Author)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    app_id = models.CharField(max_length=64, blank=True)
    mid = models.CharField(max_length=255, null=True, blank=True, unique=True)
    text = models.TextField(blank=True)
    attachments = models.JSONField(default=list, blank=True)
    quick_reply_payload = models.CharField(max_length=1000, blank=True)
    postback_title = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=16, blank=True)
    timestamp = models.BigIntegerField(help_text="Event time, epoch ms (ours for outbound).")
    status = models.CharField(max_length=16, choices=Status, default=Status.RECEIVED)
    error = models.CharField(
        max_length=1000, blank=True, help_text="Why it failed (or is retried), for agents."
    )
    error_detail = models.CharField(
        max_length=1000,
        blank=True,
        help_text='Meta\'s side of the error: its code and message ("Meta error 551: …").',
    )
    error_code = models.IntegerField(null=True, blank=True, help_text="Meta's error code.")
    error_subcode = models.IntegerField(null=True, blank=True, help_text="Meta's error subcode.")
    attempts = models.PositiveIntegerField(default=0)
    sending_since = models.DateTimeField(null=True, blank=True)
    thread_control = models.CharField(
        max_length=8,
        blank=True,
        help_text="pass or release: the hand-back rides on this message (Send API "
        "thread_control, Conversation Routing); empty for an ordinary message.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    quick_replies = models.JSONField(
        default=list,
        blank=True,
        help_text="Quick replies sent under an outbound message ([{title, payload}]), e.g. "
        "the rating question's 1 to 5.",
    )

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(fields=["conversation", "timestamp"]),
            models.Index(fields=["status", "created_at"]),
            # The reports' first response (agents.reports): a ticket's first agent reply
            # that did not fail is the first entry here, read from the index alone.
            models.Index(
                fields=["ticket", "created_at"],
                name="message_first_reply",
                condition=Q(direction="out", author_kind="agent") & ~Q(status="failed"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.author_kind}: {self.text[:40]}"


class AgentProfile(models.Model):
    """How the customer sees an agent: the name (and picture) of their Messenger persona."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile"
    )
    public_name = models.CharField(
        max_length=100,
        blank=True,
        help_text="The name customers see on this agent's replies (empty: their first name, "
        "else their username).",
    )
    picture_url = models.URLField(
        max_length=2000, blank=True, help_text="A public https picture for the persona."
    )
    capacity = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="How many open tickets auto-assignment gives this agent at most (empty: "
        "their team's default). An agent may still claim more by hand.",
    )

    class Meta:
        verbose_name = "agent profile"

    def __str__(self) -> str:
        return self.public_name or str(self.user)


class Persona(models.Model):
    """An agent's Messenger persona on one page (the Personas API), created on first use
    and reused while the agent's public name and picture are the same."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="personas")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personas"
    )
    persona_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=100)
    picture_url = models.URLField(max_length=2000, blank=True)
    error = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why Meta refused to create it (recorded once; replies go without it).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["page", "agent"], name="persona_unique_page_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.page_id}"


class AuthFailures(models.Model):
    """Failed authentications counted per account or per client address, for
    `agents.services.throttle`. Kept in the database so that every Daphne process
    counts against the same limit.

    `key` is a SHA-256 digest: the names people try (sometimes a password typed in
    the wrong field) and their addresses are not stored as such.
    """

    class Scope(models.TextChoices):
        LOGIN_ACCOUNT = "login_account", "login, per account"
        LOGIN_ADDRESS = "login_address", "login, per client address"

    scope = models.CharField(max_length=16, choices=Scope)
    key = models.CharField(max_length=64)
    failures = models.PositiveIntegerField(default=0)
    window_ends_at = models.DateTimeField(help_text="Failures count until then.")
    blocked_until = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        db_index=True, help_text="After this the row means nothing and may be deleted."
    )

    class Meta:
        verbose_name = "sign-in failure count"
        verbose_name_plural = "sign-in failures"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="auth_failures_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()}: {self.failures}"


class Tag(models.Model):
    """A label agents put on tickets (refund, vip…), from a set admins manage. A tag made
    inactive stays on the tickets that carry it, and can be removed from them, but is
    applied no more."""

    class Colour(models.TextChoices):
        GREY = "grey"
        RED = "red"
        ORANGE = "orange"
        YELLOW = "yellow"
        GREEN = "green"
        TEAL = "teal"
        BLUE = "blue"
        PURPLE = "purple"
        PINK = "pink"

    name = models.CharField(
        max_length=40,
        help_text="What agents see on the ticket and filter by; unique, whatever the case.",
    )
    colour = models.CharField(
        max_length=8,
        choices=Colour,
        default=Colour.GREY,
        help_text="The chip's colour in the inbox.",
    )
    description = models.CharField(
        max_length=200, blank=True, help_text="When to use it, shown to agents in the picker."
    )
    active = models.BooleanField(
        default=True,
        help_text="Untick to stop agents applying it: tickets that carry it keep it.",
    )
    tickets: "models.ManyToManyField[Ticket, TicketTag]" = models.ManyToManyField(
        Ticket, through="TicketTag", related_name="tags", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="tag_name_unique_ignoring_case",
                violation_error_message="A tag with this name already exists (names are "
                "compared without regard to case).",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TicketTag(models.Model):
    """A tag on a ticket: who put it there and when (the ticket's history also says so)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="tag_links")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="ticket_links")
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "ticket tag"
        constraints = [
            models.UniqueConstraint(fields=["ticket", "tag"], name="ticket_tag_unique"),
        ]
        indexes = [models.Index(fields=["tag", "ticket"], name="ticket_tag_by_tag")]

    def __str__(self) -> str:
        return f"{self.tag_id} on ticket {self.ticket_id}"


class Csat(models.Model):
    """The rating question sent when a ticket closed (`agents.services.csat`): one per
    ticket. While it is `waiting` the helpdesk keeps the conversation (the hand-back is
    deferred) until the customer answers or `expires_at` passes."""

    class Status(models.TextChoices):
        WAITING = "waiting", "waiting for the answer"
        ANSWERED = "answered", "answered in time"
        EXPIRED = "expired", "no answer in time"

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="csat")
    question = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status, default=Status.WAITING)
    asked_at = models.DateTimeField(help_text="When the question was queued (Messenger's clock).")
    expires_at = models.DateTimeField(
        db_index=True,
        help_text="Without an answer by then, the conversation goes back to the bot.",
    )
    score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The customer's rating, 1 (poor) to 5 (great)."
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_late = models.BooleanField(
        default=False,
        help_text="The answer came after the conversation went back to the bot (on standby).",
    )

    class Meta:
        verbose_name = "rating (CSAT)"
        verbose_name_plural = "ratings (CSAT)"
        indexes = [models.Index(fields=["asked_at"], name="csat_asked")]  # the reports
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5),
                name="csat_score_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return f"ticket {self.ticket_id}: {self.score or '-'}/5 ({self.status})"


class Attachment(models.Model):
    """A file an agent sent: one Messenger message of its own (`message`, which has no
    text). Stored by the helpdesk (MEDIA_ROOT), uploaded to Meta when it is sent
    (`attachment_id`, reusable for 90 days), shown only to the agents who may see its
    ticket (agents.services.attachments)."""

    class Kind(models.TextChoices):
        IMAGE = "image"
        VIDEO = "video"
        AUDIO = "audio"
        FILE = "file"

    message = models.OneToOneField(
        Message, on_delete=models.CASCADE, related_name="attachment_file"
    )
    file = models.FileField(upload_to="attachments/%Y/%m/", help_text="Stored under a random name.")
    name = models.CharField(max_length=255, help_text="The file's name as the agent had it.")
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField(help_text="In bytes.")
    kind = models.CharField(
        max_length=8, choices=Kind, help_text="How Messenger shows it: its attachment type."
    )
    meta_attachment_id = models.CharField(
        max_length=64,
        blank=True,
        verbose_name="Meta attachment id",
        help_text="Meta's id for the uploaded file, once uploaded (valid for 90 days).",
    )
    uploaded_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was uploaded to Meta."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class MessageOrder(models.Model):
    """`message` goes out only once `after` was sent: the parts of one reply (its text,
    then each file) reach the customer in the order the agent wrote them."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="send_after")
    after = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = "send order"

    def __str__(self) -> str:
        return f"message {self.message_id} after {self.after_id}"


class SavedReply(models.Model):
    """A reply an agent inserts from the composer (`/shortcut`), with placeholders
    (`{first_name}`, `{agent_name}`, `{page_name}`) filled for the ticket at hand.

    Its scope is who sees it: one agent (`owner`), one team (`team`: its members), or,
    with neither, every agent (managed in admin only)."""

    title = models.CharField(max_length=100, help_text="What the agent sees in the picker.")
    shortcut = models.CharField(
        max_length=40,
        help_text="One word typed after / in the composer (letters, digits, - and _), "
        "unique among the replies of one agent, of one team, or of everyone.",
    )
    body = models.TextField(
        help_text="The text inserted, at most 2000 characters (Messenger's limit). "
        "{first_name}, {agent_name} and {page_name} are filled for the ticket."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="saved_replies",
        help_text="A personal reply: only this agent sees it. Leave empty for a team's "
        "reply or everyone's.",
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="saved_replies",
        help_text="A team's reply: its members see it and may change it. With neither "
        "an owner nor a team, every agent sees it and only admins change it.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "saved reply"
        verbose_name_plural = "saved replies"
        constraints = [
            models.CheckConstraint(
                condition=Q(owner__isnull=True) | Q(team__isnull=True),
                name="saved_reply_one_scope",
                violation_error_message="A reply is an agent's own or a team's, not both.",
            ),
            models.UniqueConstraint(
                fields=["owner", "shortcut"],
                condition=Q(owner__isnull=False),
                name="saved_reply_unique_personal_shortcut",
                violation_error_message="This agent has a reply with this shortcut already.",
            ),
            models.UniqueConstraint(
                fields=["team", "shortcut"],
                condition=Q(team__isnull=False),
                name="saved_reply_unique_team_shortcut",
                violation_error_message="This team has a reply with this shortcut already.",
            ),
            models.UniqueConstraint(
                fields=["shortcut"],
                condition=Q(owner__isnull=True, team__isnull=True),
                name="saved_reply_unique_everyone_shortcut",
                violation_error_message="Every agent's replies have this shortcut already.",
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}: {self.title}"


class Note(models.Model):
    """A private note on a ticket: agents only, never sent to Messenger. A model of its
    own (not a Message) so that nothing that sends messages can ever pick one up."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="notes")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    timestamp = models.BigIntegerField(
        help_text="When it was written, epoch ms: the timeline places it among the messages."
    )
    mentions: "models.ManyToManyField[Agent, NoteMention]" = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="NoteMention", blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [models.Index(fields=["conversation", "timestamp"], name="note_conversation_ts")]

    def __str__(self) -> str:
        return f"note on ticket {self.ticket_id}: {self.text[:40]}"


class NoteMention(models.Model):
    """An agent named (@name) in a note: shown in their inbox until they read it."""

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="mention_rows")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="note_mentions"
    )
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "mention"
        constraints = [
            models.UniqueConstraint(fields=["note", "agent"], name="note_mention_unique"),
        ]
        indexes = [models.Index(fields=["agent", "read_at"], name="note_mention_unread")]

    def __str__(self) -> str:
        return f"@{self.agent} in note {self.note_id}"


class Presence(models.TextChoices):
    """What other agents see of an agent: `offline` when no inbox of theirs is open."""

    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class AgentPresence(models.Model):
    """An agent's own Online/Away toggle and when auto-assignment last gave them a
    ticket. Whether they are there at all comes from their open sockets (`AgentSocket`).
    Auto-assignment locks these rows (`agents.locks.presence_lock_many`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence"
    )
    status = models.CharField(
        max_length=8,
        choices=[(Presence.ONLINE, "online"), (Presence.AWAY, "away")],
        default=Presence.ONLINE,
        help_text="The agent's toggle in the inbox's top bar. Away: no tickets are "
        "assigned to them automatically.",
    )
    changed_at = models.DateTimeField(auto_now=True)
    last_assigned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a ticket was last assigned to them (automatically or by a claim "
        "or transfer): of two agents with as few open tickets, the one waiting longer "
        "gets the next.",
    )

    class Meta:
        verbose_name = "agent presence"

    def __str__(self) -> str:
        return f"{self.user}: {self.status}"


class AgentSocket(models.Model):
    """One open inbox socket, on whichever Daphne process serves it. Its heartbeat
    (`seen_at`) moves with the client's pings; a socket whose process died without a
    clean disconnect goes stale after PRESENCE_STALE_SECONDS and counts for nothing."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_sockets"
    )
    channel_name = models.CharField(max_length=200, unique=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "open inbox socket"

    def __str__(self) -> str:
        return f"{self.user} ({self.channel_name})"


def _zone_valid(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"\u201c{value}\u201d is not a time zone: use a name like Europe/Paris or "
            "America/New_York."
        ) from exc


class TeamRouting(models.Model):
    """A team's routing: auto-assignment, capacity, its office hours' time zone, and
    when waiting customers are told their place in the queue."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="routing")
    auto_assign = models.BooleanField(
        default=True,
        verbose_name="assign new tickets automatically",
        help_text="A new or reopened ticket goes to the online member with the fewest open "
        "tickets, under their capacity; when nobody has room it waits in the team's "
        "queue, first in first out. Off: agents claim tickets themselves.",
    )
    capacity = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        verbose_name="open tickets per agent",
        help_text="The most open tickets auto-assignment gives one agent (an agent's "
        "profile may say otherwise). Agents may claim more by hand.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[_zone_valid],
        help_text="The office hours' time zone, e.g. Europe/Paris.",
    )
    queue_notice_after_seconds = models.PositiveIntegerField(
        default=300,
        verbose_name="tell waiting customers their place after (seconds)",
        help_text="Inside office hours, a customer whose ticket waits this long is told "
        "their place in the queue (0: never).",
    )
    queue_notice_interval_seconds = models.PositiveIntegerField(
        default=600,
        validators=[MinValueValidator(60)],
        verbose_name="at most once every (seconds)",
        help_text="A customer is told their place again at most this often.",
    )

    class Meta:
        verbose_name = "team routing"
        verbose_name_plural = "team routing"

    def __str__(self) -> str:
        return f"routing of {self.team}"


class OfficeHours(models.Model):
    """When a team works, in its routing's time zone. A team with no office hours works
    at any time. A day may have several ranges (a lunch break). Edited on the team's
    routing page."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0
        TUESDAY = 1
        WEDNESDAY = 2
        THURSDAY = 3
        FRIDAY = 4
        SATURDAY = 5
        SUNDAY = 6

    routing = models.ForeignKey(
        TeamRouting, on_delete=models.CASCADE, related_name="office_hours", verbose_name="team"
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday)
    opens = models.TimeField(help_text="e.g. 09:00")
    closes = models.TimeField(help_text="e.g. 17:30; after the opening time, the same day.")

    class Meta:
        verbose_name = "office hours"
        verbose_name_plural = "office hours"
        ordering = ["weekday", "opens"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes__gt=models.F("opens")), name="office_hours_close_after_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}\u2013{self.closes:%H:%M}"

    def clean(self) -> None:
        if self.opens is not None and self.closes is not None and self.closes <= self.opens:
            raise ValidationError(
                {"closes": "The closing time must be after the opening time (the same day)."}
            )


class Holiday(models.Model):
    """A day (in the team's time zone) on which the team does not work."""

    routing = models.ForeignKey(
        TeamRouting, on_delete=models.CASCADE, related_name="holidays", verbose_name="team"
    )
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["routing", "date"], name="holiday_unique_team_date"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


class PageRouting(models.Model):
    """Which team a page's tickets go to, and what a customer is told when nobody can
    answer. A page without this row routes to the first team (by id) that lists it and
    tells nobody anything."""

    class WhenUnavailable(models.TextChoices):
        WAIT = "wait", "tell the customer, the ticket waits for an agent"
        BOT = "bot", "tell the customer, give the conversation back to the bot"

    page = models.OneToOneField(Page, on_delete=models.CASCADE, related_name="routing")
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="routed_pages",
        verbose_name="routing team",
        help_text="The team whose queue the page's tickets join: one of the teams that "
        "list the page. Empty: the first such team (the lowest id).",
    )
    when_unavailable = models.CharField(
        max_length=8,
        choices=WhenUnavailable,
        default=WhenUnavailable.WAIT,
        verbose_name="outside hours or with nobody online",
        help_text="What happens when control comes to the helpdesk outside the team's "
        "office hours, or inside them with no member online.",
    )
    closed_message = models.CharField(
        max_length=640,
        default="We're back at {opens}. The assistant can help meanwhile.",
        verbose_name="message outside office hours",
        help_text="{opens}: the next opening time in the team's time zone (\u201c9:00\u201d, "
        "\u201cMonday 9:00\u201d). Empty: nothing is sent.",
        blank=True,
    )
    nobody_message = models.CharField(
        max_length=640,
        default="Nobody from our team is free right now; we answer here as soon as someone "
        "is. The assistant can help meanwhile.",
        verbose_name="message when nobody is online",
        help_text="Inside office hours, with no member of the team online. Empty: nothing is sent.",
        blank=True,
    )
    queue_message = models.CharField(
        max_length=640,
        default="You're number {position} in line. An agent will be with you soon.",
        verbose_name="place in the queue message",
        help_text="{position}: the customer's place in the team's queue. Empty: never sent.",
        blank=True,
    )

    class Meta:
        verbose_name = "page routing"
        verbose_name_plural = "page routing"

    def __str__(self) -> str:
        return f"routing of {self.page.name}"


class TicketWait(models.Model):
    """A ticket's place in its team's queue: since when it waits (a reopened ticket
    waits anew), and when its customer was last told their place."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="wait")
    since = models.DateTimeField(db_index=True)
    position_told_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "ticket in a queue"
        verbose_name_plural = "tickets in a queue"

    def __str__(self) -> str:
        return f"ticket {self.ticket_id} waits since {self.since}"
