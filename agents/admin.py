from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from agents.models import (
    ApiToken,
    AuthFailures,
    Contact,
    ControlTransition,
    Conversation,
    Message,
    Team,
    Ticket,
    TicketEvent,
    Trigger,
)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name",)
    filter_horizontal = ("pages", "members")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "prefix", "created_at", "last_used_at")
    readonly_fields = ("user", "prefix", "digest", "created_at", "last_used_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are made by `manage.py create_agent`, shown once


@admin.register(AuthFailures)
class AuthFailuresAdmin(admin.ModelAdmin):
    """Login failure counters, keyed by digests. Deleting a row lifts its block."""

    list_display = ("scope", "failures", "window_ends_at", "blocked_until")
    list_filter = ("scope",)
    readonly_fields = [f.name for f in AuthFailures._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    list_display = ("page", "kind", "value", "active")
    list_filter = ("page", "kind", "active")


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("display_name", "psid", "page", "profile_fetched_at", "profile_error")
    search_fields = ("psid", "first_name", "last_name")
    list_filter = ("page",)


class TransitionInline(admin.TabularInline):
    model = ControlTransition
    extra = 0
    can_delete = False
    readonly_fields = (
        "created_at",
        "from_state",
        "to_state",
        "cause",
        "detail",
        "metadata",
        "event_timestamp",
    )

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("contact", "page", "control_state", "owner_app_id", "last_user_message_at")
    list_filter = ("control_state", "page")
    readonly_fields = (
        "control_state",
        "owner_app_id",
        "control_event_timestamp",
        "control_metadata",
        "requested_at",
        "last_user_message_at",
        "last_message_at",
    )
    inlines = [TransitionInline]


@admin.register(ControlTransition)
class ControlTransitionAdmin(admin.ModelAdmin):
    list_display = ("conversation", "from_state", "to_state", "cause", "detail", "created_at")
    list_filter = ("cause", "to_state")
    readonly_fields = [f.name for f in ControlTransition._meta.fields]


class TicketEventInline(admin.TabularInline):
    model = TicketEvent
    extra = 0
    can_delete = False
    readonly_fields = ("created_at", "kind", "actor", "detail")

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "status", "assignee", "flagged", "opened_at", "closed_at")
    list_filter = ("status", "flagged")
    readonly_fields = (
        "conversation",
        "handover_metadata",
        "handover_timestamp",
        "opened_at",
        "closed_at",
    )
    inlines = [TicketEventInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "author_kind", "direction", "text", "status", "timestamp")
    list_filter = ("author_kind", "direction", "status", "channel")
    search_fields = ("mid", "text")
    readonly_fields = [f.name for f in Message._meta.fields]


@admin.register(TicketEvent)
class TicketEventAdmin(admin.ModelAdmin):
    list_display = ("ticket", "kind", "actor", "detail", "created_at")
    list_filter = ("kind",)
    readonly_fields = [f.name for f in TicketEvent._meta.fields]
