from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webhooks import services
from webhooks.models import GraphCall, Page, WebhookDelivery, WebhookEvent


class PageForm(forms.ModelForm):
    # The token is write-only in admin: never rendered back into the page.
    access_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave empty to keep the current token.",
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
        )

    def clean_access_token(self) -> str:
        token = self.cleaned_data.get("access_token") or ""
        if not token and self.instance.pk:
            return str(self.instance.access_token)
        if not token:
            raise forms.ValidationError("A new page needs its Page access token.")
        return token


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    form = PageForm
    list_display = ("name", "page_id", "bot_app_id", "human_agent_enabled", "created_at")
    search_fields = ("name", "page_id")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "attempts", "received_at", "processed_at", "last_error")
    list_filter = ("status",)
    readonly_fields = (
        "digest",
        "status",
        "attempts",
        "last_error",
        "received_at",
        "processed_at",
        "body_text",
    )
    exclude = ("body",)

    @admin.display(description="body")
    def body_text(self, obj: WebhookDelivery) -> str:
        return bytes(obj.body).decode("utf-8", errors="replace")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("key", "kind", "channel", "page_id", "psid", "timestamp", "outcome", "note")
    list_filter = ("kind", "channel", "outcome")
    search_fields = ("key", "psid", "page_id")
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
    actions = ["replay"]

    @admin.action(description="Apply the selected failed events again")
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(GraphCall)
class GraphCallAdmin(admin.ModelAdmin):
    list_display = ("key", "kind", "psid", "status", "attempts", "last_error", "updated_at")
    list_filter = ("kind", "status")
    search_fields = ("key", "psid")
    readonly_fields = [f.name for f in GraphCall._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
