from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from helpdesk.admin import HistoryAdmin
from webhooks import services
from webhooks.models import (
    ControlWay,
    DataDeletionRequest,
    GraphCall,
    Page,
    WebhookDelivery,
    WebhookEvent,
)


class PageForm(forms.ModelForm):
    """What `manage.py connect_page` takes, checked by the same rules
    (`services.page_connect_refusals`): a refusal is a form error, never a 500."""

    # The token is write-only in admin: never rendered back into the page.
    access_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        label="Page access token",
        error_messages={"required": "A new page needs its Page access token."},
    )

    class Meta:
        model = Page
        fields = (
            "page_id",
            "name",
            "access_token",
            "bot_app_id",
            "human_agent_enabled",
            "conversation_routing",
            "control_mode",
            "handback",
            "handback_notice",
            "control_extend_max_hours",
            "csat_enabled",
            "csat_question",
            "csat_thanks",
            "csat_wait_minutes",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        token = self.fields["access_token"]
        token.help_text = "From Meta's app dashboard. Stored encrypted, never shown again"
        if self.instance.pk:
            token.required = False
            token.help_text += "; leave empty to keep the current one."
        else:
            token.help_text += "."

    def clean_access_token(self) -> str:
        token = self.cleaned_data.get("access_token") or ""
        if not token and self.instance.pk:
            return str(self.instance.access_token)
        return token

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        values = {
            name: data.get(name, getattr(self.instance, name))
            for name in ("page_id", "access_token", "bot_app_id", "name")
        }
        if any(name in self.errors for name in values):
            return data  # already refused; its value may be missing
        refusals = services.page_connect_refusals(**{k: str(v) for k, v in values.items()})
        for name, refusal in refusals.items():
            self.add_error(name if name in self.fields else None, refusal)
        return data


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    """Pages are connected through `services.page_connect`, as by `manage.py
    connect_page`: the default triggers, the token encrypted, open inboxes told."""

    form = PageForm
    list_display = (
        "name",
        "page_id",
        "bot_app_id",
        "conversation_routing",
        "control_mode",
        "handover_health",
        "sending",
        "human_agent_enabled",
        "created_at",
        "doctor",
    )
    readonly_fields = ("handover_health", "sending", "doctor")

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = list(super().get_fields(request, obj))
        return fields if obj is not None else [f for f in fields if f not in self.readonly_fields]

    @admin.display(description="how control comes in")
    def handover_health(self, obj: Page) -> str:
        """What the last attempt showed, and what the Page admin must change if nothing works."""
        if obj.control_way == ControlWay.NONE:
            return f"Neither request nor take works. {obj.control_way_note}"
        if obj.control_way:
            seen = f"{obj.control_way_at:%Y-%m-%d %H:%M}" if obj.control_way_at else "?"
            return f"{ControlWay(obj.control_way).label} works (last seen {seen})"
        return "not tried yet"

    @admin.display(description="sending")
    def sending(self, obj: Page) -> str:
        if obj.outbox_paused_reason:
            return f"paused since {obj.outbox_paused_at:%Y-%m-%d %H:%M}: {obj.outbox_paused_reason}"
        return "working"

    @admin.display(description="doctor")
    def doctor(self, obj: Page) -> str:
        """A link to the doctor page for this page (it asks Meta, so not inline)."""
        url = f"{reverse('admin:doctor')}?page={obj.pk}"
        return format_html('<a href="{}">Ask Meta how it is</a>', url)

    search_fields = ("name", "page_id")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # The page id is what the page is: another id is another page (add it).
        return ("page_id", *self.readonly_fields) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Page, form: Any, change: bool) -> None:
        page, _ = services.page_connect(
            page_id=obj.page_id,
            access_token=form.cleaned_data["access_token"],
            bot_app_id=obj.bot_app_id,
            name=obj.name,
            human_agent_enabled=obj.human_agent_enabled,
            conversation_routing=obj.conversation_routing,
            control_mode=obj.control_mode,
            handback=obj.handback,
            handback_notice=obj.handback_notice,
            control_extend_max_hours=obj.control_extend_max_hours,
        )
        # CSAT (issue 11, point 9): the rating settings, checked by the form.
        services.page_csat_set(
            page_pk=page.pk,
            enabled=obj.csat_enabled,
            question=obj.csat_question,
            thanks=obj.csat_thanks,
            wait_minutes=obj.csat_wait_minutes,
        )
        # Admin goes on with `obj` (its log entry, the redirect): make it the saved row.
        obj.pk = page.pk
        obj._state.adding = False
        obj.refresh_from_db()


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(HistoryAdmin):
    list_display = ("id", "status", "attempts", "received_at", "processed_at", "last_error")
    list_filter = ("status",)
    fields = (
        "status",
        "attempts",
        "events_done",
        "last_error",
        "received_at",
        "enqueued_at",
        "running_since",
        "processed_at",
        "digest",
        "body_text",
    )
    readonly_fields = fields

    @admin.display(description="body, as received")
    def body_text(self, obj: WebhookDelivery) -> str:
        return bytes(obj.body).decode("utf-8", errors="replace")


@admin.register(WebhookEvent)
class WebhookEventAdmin(HistoryAdmin):
    list_display = ("key", "kind", "channel", "page_id", "psid", "timestamp", "outcome", "note")
    list_filter = ("kind", "channel", "outcome")
    search_fields = ("key", "psid", "page_id")
    actions = ["replay"]

    @admin.action(description="Apply the selected failed events again", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        failed = queryset.filter(outcome=WebhookEvent.Outcome.FAILED).values_list("pk", flat=True)
        applied = sum(services.event_replay(event_id=pk) for pk in failed)
        still = len(failed) - applied
        self.message_user(
            request,
            f"{applied} event(s) applied"
            + (f"; {still} failed again (see their error)" if still else "")
            + ".",
            messages.SUCCESS if not still else messages.WARNING,
        )

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # Replaying changes what the events change: for those who may change events
        # (the rows themselves stay read-only).
        return request.user.has_perm("webhooks.change_webhookevent")


@admin.register(GraphCall)
class GraphCallAdmin(HistoryAdmin):
    list_display = ("key", "kind", "page", "psid", "status", "attempts", "last_error", "updated_at")
    list_select_related = ("page",)
    list_filter = ("kind", "status")
    search_fields = ("key", "psid")


@admin.register(DataDeletionRequest)
class DataDeletionRequestAdmin(HistoryAdmin):
    """Meta's data deletion requests (`webhooks.deletion`): read-only; the id Meta sent
    is never shown (it is cleared once the request is done)."""

    list_display = ("confirmation_code", "status", "attempts", "created_at", "done_at", "note")
    list_filter = ("status",)
    search_fields = ("confirmation_code",)
    fields = (
        "confirmation_code",
        "status",
        "counts",
        "note",
        "attempts",
        "created_at",
        "attempted_at",
        "done_at",
    )
    readonly_fields = fields
