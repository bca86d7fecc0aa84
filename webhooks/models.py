"""The Messenger side: connected Pages, raw webhook deliveries, applied events, Graph calls."""

from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from webhooks.crypto import is_sealed, token_seal


class EncryptedTokenField(models.TextField):  # type: ignore[type-arg]
    """A secret stored encrypted (`webhooks.crypto`). The attribute holds the encrypted
    form; a plaintext assigned to it is encrypted when saved (and the instance then holds
    the encrypted form too), so no write path can store a token in clear. Decrypt with
    `webhooks.crypto.token_unseal`, only where the secret is sent."""

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = getattr(model_instance, self.attname)
        if value and not is_sealed(value):
            value = token_seal(value)
            setattr(model_instance, self.attname, value)
        return value

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value and not is_sealed(value):
            value = token_seal(value)
        return value


CSAT_QUESTION = "How did we do? Tap a number: 1 is poor, 5 is great."
CSAT_THANKS = "Thank you for your rating!"
CSAT_WAIT_MAX_MINUTES = 24 * 60


class ControlMode(models.TextChoices):
    AUTO = "auto", "auto (request, else take)"
    REQUEST = "request", "request (the bot decides)"
    TAKE = "take", "take (Conversation Routing)"


class ControlWay(models.TextChoices):
    REQUEST = "request", "request"
    TAKE = "take", "take"
    NONE = "none", "neither: wait for the bot to pass"


class Handback(models.TextChoices):
    PASS = "pass", "pass to the bot"
    RELEASE = "release", "release (idle)"


class Page(models.Model):
    """A Facebook Page connected to the helpdesk (see `manage.py connect_page`)."""

    page_id = models.CharField(
        max_length=64,
        unique=True,
        verbose_name="Page id",
        help_text="The Facebook Page's numeric id (its About section, or Meta's app dashboard).",
    )
    name = models.CharField(max_length=200, help_text="The page's name, as agents see it.")
    # Encrypted at rest; never shown in admin (see PageAdmin) or logs.
    access_token = EncryptedTokenField()
    bot_app_id = models.CharField(
        max_length=64, help_text="The bot's app id: primary receiver / default app."
    )
    human_agent_enabled = models.BooleanField(
        default=False,
        verbose_name="Human Agent feature",
        help_text="The app has Meta's Human Agent feature: replies allowed up to 7 days "
        "after the user's last message, tagged HUMAN_AGENT.",
    )
    conversation_routing = models.BooleanField(
        default=True,
        help_text="The page uses Conversation Routing (every page since 2025): control "
        "lapses 24 hours after the user's last message. Off for a legacy Handover "
        "Protocol page, where control stays until passed or taken.",
    )
    control_mode = models.CharField(
        max_length=8,
        choices=ControlMode,
        default=ControlMode.AUTO,
        verbose_name="how the helpdesk gets control",
        help_text="request: ask the bot (legacy pages, pages without a default app). take: "
        "take the conversation (Conversation Routing with a default app, where the Page "
        "allows this app to take control). auto: request first; when Meta refuses requests "
        "for this page, take instead, and remember what worked.",
    )
    control_way = models.CharField(
        max_length=8,
        choices=ControlWay,
        blank=True,
        verbose_name="way in that works",
        help_text="What the last attempt showed works for this page (auto mode goes "
        "straight to it); empty until the first attempt.",
    )
    control_way_note = models.CharField(
        max_length=500,
        blank=True,
        verbose_name="what Meta said",
        help_text="Why the other way was refused, or what the Page admin must change.",
    )
    control_way_at = models.DateTimeField(null=True, blank=True)
    handback = models.CharField(
        max_length=8,
        choices=Handback,
        default=Handback.PASS,
        verbose_name="hand back by",
        help_text="pass: closing passes the conversation to the bot. release: closing "
        "releases it (Conversation Routing: the thread goes idle and the default app "
        "answers the next message; no webhook follows).",
    )
    handback_notice = models.CharField(
        max_length=640,
        blank=True,
        verbose_name="hand-back notice",
        help_text="Sent to the customer before control goes back to automation, e.g. "
        "\u201cYou're now chatting with our assistant again.\u201d Meta requires automated "
        "experiences to say so when a chat moves from a person back to automation. "
        "Empty: none.",
    )
    send_api_thread_control = models.BooleanField(
        default=True,
        verbose_name="hand back in the last message",
        help_text="On Conversation Routing pages the last message and the hand-back go in "
        "one Send API call (thread_control). Turned off by itself when Meta refuses it.",
    )
    control_extend_max_hours = models.PositiveIntegerField(
        default=72,
        validators=[MaxValueValidator(168)],
        verbose_name="keep control for at most (hours)",
        help_text="Conversation Routing gives control back 24 hours after the customer's "
        "last message. While an agent works an open ticket the helpdesk extends it, up "
        "to this many hours after that message (at most 168, Meta's 7 days; 0: never).",
    )
    outbox_paused_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why sending is paused for the whole page (empty: it is not). Replies "
        "wait and go out when a probe succeeds or the token is replaced.",
    )
    outbox_paused_code = models.CharField(max_length=16, blank=True)
    outbox_paused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # CSAT before hand-back (issue 11, point 9): agents.services.csat.
    csat_enabled = models.BooleanField(
        default=False,
        verbose_name="ask for a rating when a ticket closes",
        help_text="Closing a ticket sends the rating question (quick replies 1 to 5) and "
        "the helpdesk keeps the conversation until the customer answers or the wait below "
        "ends; then it goes back to the bot. Only inside Messenger's 24-hour window.",
    )
    csat_question = models.CharField(
        max_length=640,
        default=CSAT_QUESTION,
        verbose_name="rating question",
        help_text="Sent after the closing message, with the buttons 1 to 5 under it.",
    )
    csat_thanks = models.CharField(
        max_length=640,
        blank=True,
        default=CSAT_THANKS,
        verbose_name="thank-you message",
        help_text="Sent when the customer answers, before the conversation goes back to "
        "the bot. Empty: none.",
    )
    csat_wait_minutes = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(CSAT_WAIT_MAX_MINUTES)],
        verbose_name="wait for the rating (minutes)",
        help_text="How long the helpdesk keeps the conversation for the answer: 1 minute "
        "to 24 hours (1440). Then it goes back to the bot without a thank-you.",
    )

    class Meta:
        verbose_name = "Facebook page"

    def __str__(self) -> str:
        return f"{self.name} ({self.page_id})"


class WebhookDelivery(models.Model):
    """One POST from Meta, stored exactly as received before it is answered 200."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        PARTIAL = "partial", "processed; some events failed (see them)"
        FAILED = "failed"

    body = models.BinaryField()
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the body.")
    status = models.CharField(max_length=16, choices=Status, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When its processing was last queued; empty when queueing failed. The "
        "re-drive leaves it alone for a while after, so one delivery is not queued many times.",
    )
    running_since = models.DateTimeField(
        null=True, blank=True, help_text="A worker is processing it since then."
    )
    events_done = models.PositiveIntegerField(
        default=0,
        help_text="A large delivery is processed in chunks: how many of its events (in "
        "timestamp order) the chunks before went through.",
    )

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "received_at"])]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"


class WebhookEvent(models.Model):
    """One event of a delivery, recorded under its dedupe key when it is applied.

    The unique key is what makes processing idempotent: a redelivered event finds its
    key taken and changes nothing.
    """

    class Outcome(models.TextChoices):
        APPLIED = "applied"
        IGNORED = "ignored"
        FAILED = "failed", "failed (kept to apply again)"

    key = models.CharField(max_length=255, unique=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    channel = models.CharField(
        max_length=16,
        help_text="messaging: the helpdesk had the conversation; standby: another app had it.",
    )
    page_id = models.CharField(max_length=64, blank=True)
    psid = models.CharField(max_length=64, blank=True)
    timestamp = models.BigIntegerField(help_text="The event's timestamp, epoch ms.")
    outcome = models.CharField(max_length=16, choices=Outcome)
    note = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True, help_text="Why applying it failed, for a failed event.")
    attempts = models.PositiveIntegerField(default=1)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class GraphCall(models.Model):
    """Every call to the Graph API (Meta's API), with its outcome: the record admins
    look at."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        # A thread-control call that timed out or got a 5xx: it may have taken effect.
        # It is never made again before `thread_owner` was asked (`graph.call`).
        UNCERTAIN = "uncertain", "outcome unknown (checked with thread_owner)"
        # A worker is making the call now; another worker on the same key waits for it.
        IN_FLIGHT = "in_flight", "being made"

    key = models.CharField(
        max_length=255, unique=True, help_text="What the call is for, e.g. 'message:42'."
    )
    kind = models.CharField(
        max_length=40, help_text="Which call: a message sent, control passed back, a profile…"
    )
    page = models.ForeignKey(Page, null=True, on_delete=models.SET_NULL, related_name="+")
    psid = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Meta API call"

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.status})"


class DataDeletionRequest(models.Model):
    """A person asked Meta to delete their data (Meta's Data Deletion Request Callback,
    `webhooks.deletion`). The row is the record that the erase happens exactly once: the
    task locks it, erases through settings.MESSENGER_DATA_DELETION_HANDLER and marks it
    done in one transaction. Meta's id for the person is kept only while the request is
    pending; a keyed digest of it stays, so that the same person asking again meanwhile
    gets the same confirmation code."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done", "complete"

    confirmation_code = models.CharField(
        max_length=32, unique=True, help_text="Random; Meta shows it to the person."
    )
    user_id = models.CharField(
        max_length=64,
        blank=True,
        verbose_name="Meta user id",
        help_text="The id Meta sent, while the request is pending; cleared once it is done.",
    )
    user_digest = models.CharField(
        max_length=64,
        db_index=True,
        help_text="HMAC-SHA256 of the id under SECRET_KEY: tells repeated requests apart "
        "without keeping the id.",
    )
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    counts = models.JSONField(
        default=dict, blank=True, help_text="What was erased, by kind of record."
    )
    note = models.CharField(
        max_length=500, blank=True, help_text="Why it is still pending (tried again by beat)."
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "data deletion request"
        constraints = [
            models.UniqueConstraint(
                fields=["user_digest"],
                condition=models.Q(status="pending"),
                name="data_deletion_one_pending_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"deletion request {self.confirmation_code} ({self.status})"
