"""The Messenger side: connected Pages, raw webhook deliveries, applied events, Graph calls."""

from typing import Any

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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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
