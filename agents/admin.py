from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse

from agents import realtime
from agents.models import (
    Agent,
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
    """Team changes reach open sockets after commit: a change of members makes the
    added and removed agents' sockets re-follow (agents.realtime.access_changed); a
    change of pages may concern every agent (a page on no team is everyone's), so
    every socket re-follows (`pages.changed`). Django saves the m2m fields in
    `save_related`, hence the before/after there."""

    list_display = ("name",)
    filter_horizontal = ("pages", "members")

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        team = form.instance
        members_before = set(team.members.values_list("pk", flat=True)) if change else set()
        pages_before = set(team.pages.values_list("pk", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        members_after = set(team.members.values_list("pk", flat=True))
        pages_after = set(team.pages.values_list("pk", flat=True))
        if pages_after != pages_before:
            realtime.broadcast_on_commit("pages.changed")
            return
        realtime.access_changed_on_commit(members_before ^ members_after)

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        super().delete_model(request, obj)
        realtime.broadcast_on_commit("pages.changed")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        super().delete_queryset(request, queryset)
        realtime.broadcast_on_commit("pages.changed")


admin.site.unregister(Agent)


@admin.register(Agent)
class AgentUserAdmin(UserAdmin):
    """Django's user admin; after a save (deactivation, admin flag), a new password or a
    deletion, the agent's open sockets check their access again (closing if the agent
    or their session is no longer valid)."""

    def save_model(self, request: HttpRequest, obj: Agent, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        realtime.access_changed_on_commit([obj.pk])

    def delete_model(self, request: HttpRequest, obj: Agent) -> None:
        pk = obj.pk
        super().delete_model(request, obj)
        realtime.access_changed_on_commit([pk])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        pks = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        realtime.access_changed_on_commit(pks)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # the password changed
            realtime.access_changed_on_commit([int(id)])
        return response


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
