"""The helpdesk's models in Django admin.

Setup (triggers, teams, agents) is edited here. Tickets and conversations change only
through the services, as from the inbox: the ticket list's actions close (handing the
conversation back to the bot), assign and ask for control again, ticket by ticket,
saying what happened to each. Everything else is shown read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin
from django.db import models
from django.db.models import Count, Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.text import Truncator
from django.utils.timesince import timesince

from agents import realtime, selectors
from agents.errors import ServiceError
from agents.models import (
    Agent,
    AgentPresence,
    AgentProfile,
    AgentSocket,
    ApiToken,
    Attachment,
    AuthFailures,
    Contact,
    ControlState,
    ControlTransition,
    Conversation,
    Csat,
    Holiday,
    Message,
    MessageOrder,
    Note,
    NoteMention,
    OfficeHours,
    PageRouting,
    Persona,
    SavedReply,
    Tag,
    Team,
    TeamRouting,
    Ticket,
    TicketEvent,
    TicketTag,
    TicketWait,
    Trigger,
)
from agents.services import personas, replies, routing, tickets
from agents.services.state import app_label
from helpdesk.admin import HistoryAdmin, ReadOnly


def _user(request: HttpRequest) -> Agent:
    return cast(Agent, request.user)  # admin views are for logged-in staff only


class ConversationDataAdmin(HistoryAdmin):
    """What agents see in the inbox, read-only here too, and within the same limits:
    an admin who is no superuser sees their teams' pages only
    (`selectors.visible_page_ids`)."""

    page_field = "page"  # the path from the model to its page

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = super().get_queryset(request)
        visible = selectors.visible_page_ids(_user(request))
        if visible is None:
            return rows
        return rows.filter(**{f"{self.page_field}__in": visible})


# --- Setup --------------------------------------------------------------------------


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
        routing.team_routing_changed(team_id=team.pk)  # issue 11: capacity, members, pages
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
    or their session is no longer valid). An agent with unclosed tickets is not
    deleted (their tickets would be open with nobody on them): the confirmation page
    lists the tickets to assign to someone else first."""

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

    def get_deleted_objects(
        self, objs: Sequence[Agent] | QuerySet[Agent], request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[Any], list[Any]]:
        to_delete, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        unclosed = (
            Ticket.objects.filter(assignee__in=[agent.pk for agent in objs])
            .exclude(status=Ticket.Status.CLOSED)
            .select_related("assignee")
            .order_by("pk")
        )
        protected = [
            *protected,
            *(
                f"{ticket}, assigned to {ticket.assignee}: assign it to another agent "
                "(Tickets, action “Assign to…”) or close it first"
                for ticket in unclosed
            ),
        ]
        return to_delete, counts, perms_needed, protected

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # the password changed
            realtime.access_changed_on_commit([int(id)])
        return response


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made by `manage.py create_agent` and shown once; deleting one revokes it."""

    list_display = ("user", "prefix", "created_at", "last_used_at")
    list_select_related = ("user",)
    fields = ("user", "prefix", "created_at", "last_used_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class AgentProfileForm(forms.ModelForm):
    class Meta:
        model = AgentProfile
        fields = ("user", "public_name", "picture_url", "capacity")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        refusals = personas.profile_refusals(
            public_name=data.get("public_name") or "", picture_url=data.get("picture_url") or ""
        )
        for field, refusal in refusals.items():
            self.add_error(field, refusal)
        return data


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    """The name (and picture) customers see on an agent's replies: their Messenger
    persona, created per page on their next reply. Agents set it themselves in the inbox."""

    form = AgentProfileForm
    list_display = ("user", "public_name", "picture_url", "capacity")
    list_select_related = ("user",)
    search_fields = ("user__username", "public_name")

    def save_model(self, request: HttpRequest, obj: AgentProfile, form: Any, change: bool) -> None:
        personas.profile_update(obj.user, public_name=obj.public_name, picture_url=obj.picture_url)
        # Issue 11: the capacity override; a raised one may let the queue move.
        AgentProfile.objects.filter(user=obj.user).update(capacity=obj.capacity)
        routing.agent_available(user_id=obj.user.pk)


@admin.register(AuthFailures)
class AuthFailuresAdmin(admin.ModelAdmin):
    """Sign-in failure counters, keyed by digests. Deleting a row lifts its block."""

    list_display = ("scope", "failures", "window_ends_at", "blocked_until")
    list_filter = ("scope",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    list_display = ("value", "kind", "page", "active")
    list_select_related = ("page",)
    list_filter = ("page", "kind", "active")


# --- Conversations ------------------------------------------------------------------


@admin.register(Contact)
class ContactAdmin(ConversationDataAdmin):
    list_display = ("display_name", "psid", "page", "profile_fetched_at", "profile_error")
    list_select_related = ("page",)
    search_fields = ("psid", "first_name", "last_name")
    list_filter = ("page",)


class TransitionInline(ReadOnly, admin.TabularInline):
    model = ControlTransition
    extra = 0
    fields = ("created_at", "from_state", "to_state", "cause", "detail", "metadata")
    readonly_fields = fields
    verbose_name_plural = "handover history"


def _owner(conversation: Conversation) -> str:
    return app_label(conversation.page, conversation.owner_app_id)


@admin.register(Conversation)
class ConversationAdmin(ConversationDataAdmin):
    list_display = ("contact", "page", "control_state", "owner", "last_user_message_at")
    list_select_related = ("contact", "page")
    list_filter = ("control_state", "page")
    search_fields = ("contact__psid", "contact__first_name", "contact__last_name")
    fields = (
        "contact",
        "page",
        "control_state",
        "owner",
        "control_metadata",
        "requested_at",
        "last_user_message_at",
        "last_message_at",
        "created_at",
    )
    readonly_fields = fields
    inlines = [TransitionInline]

    @admin.display(description="owner")
    def owner(self, obj: Conversation) -> str:
        return _owner(obj)


class TicketEventInline(ReadOnly, admin.TabularInline):
    model = TicketEvent
    extra = 0
    fields = ("created_at", "kind", "actor", "detail", "trigger", "way")
    readonly_fields = fields
    verbose_name_plural = "ticket history"


class CloseForm(forms.Form):
    outcome = forms.CharField(
        max_length=100,
        initial="resolved",
        help_text="Recorded with each ticket, and told to the bot with the conversation.",
    )
    closing_message = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Sent to the customer before the bot takes over; only possible while "
        "the helpdesk owns the conversation and may write. Leave empty to send nothing.",
    )


class AssignForm(forms.Form):
    agent = forms.ModelChoiceField(
        queryset=Agent.objects.none(),
        label="Assign to",
        help_text="Active agents who can see the pages of all the selected tickets.",
    )

    def __init__(self, *args: Any, agents: QuerySet[Agent], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["agent"]).queryset = agents


@admin.register(Ticket)
class TicketAdmin(ConversationDataAdmin):
    """Tickets are opened by the handover and change through the services only: no
    add, no edit, no delete here; the list's actions call the services."""

    page_field = "conversation__page"

    list_display = (
        "id",
        "contact",
        "page",
        "status",
        "assignee",
        "thread_control",
        "opened",
        "attention",
    )
    list_select_related = ("conversation__contact", "conversation__page", "assignee")
    list_filter = ("status", "flagged", "conversation__page")
    search_fields = (
        "=id",
        "conversation__contact__psid",
        "conversation__contact__first_name",
        "conversation__contact__last_name",
    )
    fields = (
        "conversation",
        "status",
        "assignee",
        "thread_control",
        "flagged",
        "flag_reason",
        "closing_note",
        "handover_metadata",
        "opened_at",
        "closed_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [TicketEventInline]
    actions = ["close_and_hand_back", "assign", "request_control"]

    @admin.display(description="contact", ordering="conversation__contact__first_name")
    def contact(self, obj: Ticket) -> str:
        return str(obj.conversation.contact)

    @admin.display(description="page", ordering="conversation__page__name")
    def page(self, obj: Ticket) -> str:
        return obj.conversation.page.name

    @admin.display(description="thread control", ordering="conversation__control_state")
    def thread_control(self, obj: Ticket) -> str:
        return obj.conversation.get_control_state_display()

    @admin.display(description="opened", ordering="opened_at")
    def opened(self, obj: Ticket) -> str:
        return f"{timesince(obj.opened_at, depth=1)} ago"

    @admin.display(description="needs attention", ordering="flagged")
    def attention(self, obj: Ticket) -> str:
        return Truncator(obj.flag_reason or "yes").chars(80) if obj.flagged else ""

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The list's actions, as buttons of the ticket's page (templates/admin/agents/
        # ticket/change_form.html).
        actions = self.get_action_choices(request, default_choices=[])
        return super().change_view(
            request, object_id, form_url, {"ticket_actions": actions, **(extra_context or {})}
        )

    def has_handle_permission(self, request: HttpRequest) -> bool:
        """Who may use the actions: those who may change tickets (the rows themselves
        stay read-only)."""
        return request.user.has_perm("agents.change_ticket")

    @admin.action(description="Close and hand back to the bot", permissions=["handle"])
    def close_and_hand_back(
        self, request: HttpRequest, queryset: QuerySet[Ticket]
    ) -> TemplateResponse | None:
        form = CloseForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            return self._action_page(
                request,
                queryset,
                form,
                action="close_and_hand_back",
                title="Close and hand back to the bot",
                intro="Each ticket closes; where the helpdesk owns the conversation, it "
                "goes back to the bot (after what is still being sent).",
                button="Close and hand back",
            )
        for ticket in queryset.order_by("pk"):
            self._each(
                request,
                ticket,
                lambda ticket: tickets.ticket_close(
                    ticket_id=ticket.pk,
                    user=_user(request),
                    outcome=form.cleaned_data["outcome"],
                    closing_message=form.cleaned_data["closing_message"],
                ),
                done=_closed,
                refused=" not closed",
            )
        return None

    @admin.action(description="Assign to…", permissions=["handle"])
    def assign(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> TemplateResponse | None:
        chosen = list(queryset.select_related("conversation", "assignee").order_by("pk"))
        # The API's rules: the agents you may know of, among them those who can see
        # the page (`tickets.ticket_transfer` checks it again, under the lock).
        pages = {t.conversation.page_id for t in chosen if t.status != Ticket.Status.CLOSED}
        eligible = [
            agent.pk
            for agent in selectors.agent_list(user=_user(request))
            if (visible := selectors.visible_page_ids(agent)) is None or pages <= visible
        ]
        agents = Agent.objects.filter(pk__in=eligible).order_by("username")
        form = AssignForm(request.POST if "confirm" in request.POST else None, agents=agents)
        if not form.is_valid():
            return self._action_page(
                request,
                queryset,
                form,
                action="assign",
                title="Assign to…",
                intro="Each ticket goes to the agent you choose, as a transfer in the inbox: "
                "a waiting ticket opens, the agent sees it at once.",
                button="Assign",
            )
        target: Agent = form.cleaned_data["agent"]
        previous = {ticket.pk: ticket.assignee for ticket in chosen}

        def assigned(after: Ticket) -> str:
            was = previous[after.pk]
            return f"{_name(after)} assigned to {target}" + (f" (was {was})." if was else ".")

        for ticket in chosen:
            self._each(
                request,
                ticket,
                lambda ticket: tickets.ticket_transfer(
                    ticket_id=ticket.pk, user=_user(request), to_user_id=target.pk
                ),
                done=assigned,
                refused=" not assigned",
            )
        return None

    @admin.action(description="Ask the bot for the conversation again", permissions=["handle"])
    def request_control(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        for ticket in queryset.order_by("pk"):
            self._each(
                request,
                ticket,
                lambda ticket: tickets.ticket_request_control(
                    ticket_id=ticket.pk, user=_user(request)
                ),
                done=lambda after: f"{_name(after)}: the bot was asked for the conversation.",
                refused=", no request sent",
            )

    def _each(
        self,
        request: HttpRequest,
        ticket: Ticket,
        change: Callable[[Ticket], Ticket],
        *,
        done: Callable[[Ticket], str],
        refused: str,
    ) -> None:
        """Apply one service to one ticket and say what happened to it."""
        try:
            after = change(ticket)
        except ServiceError as exc:
            self.message_user(request, f"{_name(ticket)}{refused}: {exc.message}", messages.ERROR)
            return
        self.message_user(request, done(after), messages.SUCCESS)

    def _action_page(
        self,
        request: HttpRequest,
        queryset: QuerySet[Ticket],
        form: forms.Form,
        *,
        action: str,
        title: str,
        intro: str,
        button: str,
    ) -> TemplateResponse:
        """The intermediate page of an action: what it will do, to which tickets, and
        its form; it posts the action again with `confirm`."""
        chosen = queryset.select_related(*self.list_select_related).order_by("pk")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "button": button,
            "form": form,
            "action": action,
            "tickets": [(ticket.pk, _describe(ticket)) for ticket in chosen],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "cancel_url": request.get_full_path(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/agents/ticket/action_form.html", context)


def _name(ticket: Ticket) -> str:
    return f"Ticket {ticket.pk}"


def _describe(ticket: Ticket) -> str:
    """A ticket in a line: who, where, its state (reads its conversation's contact and
    page, and its assignee)."""
    conversation = ticket.conversation
    state = (
        f"open, {ticket.assignee}'s"
        if ticket.status == Ticket.Status.OPEN
        else ticket.get_status_display().lower()
    )
    return (
        f"{_name(ticket)}: {conversation.contact} on {conversation.page.name}, {state}; "
        f"{conversation.get_control_state_display()}"
    )


def _closed(ticket: Ticket) -> str:
    state = ticket.conversation.control_state
    if state == ControlState.RETURNING:
        return f"{_name(ticket)} closed; the conversation is being handed back to the bot."
    return (
        f"{_name(ticket)} closed. Nothing to hand back: the helpdesk did not own the "
        f"conversation ({ticket.conversation.get_control_state_display()})."
    )


@admin.register(Message)
class MessageAdmin(ConversationDataAdmin):
    page_field = "conversation__page"
    list_display = ("id", "conversation", "author_kind", "direction", "text", "status", "timestamp")
    list_select_related = ("conversation__contact", "conversation__page")
    list_filter = ("author_kind", "direction", "status", "channel")
    search_fields = ("mid", "text")


# --- History ------------------------------------------------------------------------


@admin.register(ControlTransition)
class ControlTransitionAdmin(ConversationDataAdmin):
    page_field = "conversation__page"
    list_display = ("conversation", "from_state", "to_state", "cause", "detail", "created_at")
    list_select_related = ("conversation__contact", "conversation__page")
    list_filter = ("cause", "to_state")


@admin.register(Persona)
class PersonaAdmin(ConversationDataAdmin):
    """Agents' Messenger personas, one per agent and page, as Meta created them (or why it
    refused: the replies then go without one)."""

    list_display = ("name", "agent", "page", "persona_id", "error", "created_at")
    list_select_related = ("agent", "page")
    list_filter = ("page",)


@admin.register(TicketEvent)
class TicketEventAdmin(ConversationDataAdmin):
    page_field = "ticket__conversation__page"
    list_display = ("ticket", "kind", "trigger", "way", "actor", "detail", "created_at")
    list_select_related = ("ticket", "actor")
    list_filter = ("kind", "trigger", "way")


# --- Tags (issue 11) ------------------------------------------------------------------


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    """The tags agents apply to tickets. Rename or deactivate a tag here; it is never
    deleted (tickets and their history keep it): inactive tags stay on the tickets that
    carry them, and agents cannot apply them any more."""

    list_display = ("name", "colour", "active", "description", "ticket_count")
    list_filter = ("active", "colour")
    search_fields = ("name", "description")
    fields = ("name", "colour", "description", "active")

    @admin.display(description="tickets")
    def ticket_count(self, tag: Tag) -> int:
        return int(getattr(tag, "ticket_count_", 0))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows: QuerySet[Any] = super().get_queryset(request)
        return cast(QuerySet[Any], rows.annotate(ticket_count_=Count("ticket_links")))

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # deactivate instead: tickets and their history keep the tag

    def save_model(
        self, request: HttpRequest, obj: Any, form: ModelForm[Any], change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        # Open inboxes fetch the list again: names and colours on its chips may change.
        realtime.broadcast_on_commit("tags.changed")


@admin.register(TicketTag)
class TicketTagAdmin(ConversationDataAdmin):
    """Which ticket carries which tag, who applied it and when. Read only: agents apply
    and remove tags in the inbox (each change is also in the ticket's history)."""

    page_field = "ticket__conversation__page"
    list_display = ("ticket", "tag", "applied_by", "applied_at")
    list_select_related = ("ticket", "tag", "applied_by")
    list_filter = ("tag",)


# --- CSAT before hand-back (issue 11, point 9) ----------------------------------------


@admin.register(Csat)
class CsatAdmin(ConversationDataAdmin):
    """The ratings customers gave when a ticket closed (asked where the page's "ask for a
    rating" is on: Facebook pages). Read-only: only the customer's answer sets them."""

    page_field = "ticket__conversation__page"
    list_display = ("ticket", "score", "status", "answered_late", "asked_at", "answered_at")
    list_select_related = ("ticket",)
    list_filter = ("status", "score", "answered_late")


# --- Files agents sent (issue 11, point 7) --------------------------------------------


@admin.register(Attachment)
class AttachmentAdmin(ConversationDataAdmin):
    """Files agents sent, each one Messenger message: its name, type and size, and
    Meta's id once uploaded. The file itself opens from the inbox, for the agents who
    may see its ticket; it is not linked here."""

    page_field = "message__conversation__page"
    list_display = ("name", "kind", "size", "message", "meta_attachment_id", "created_at")
    list_select_related = ("message",)
    list_filter = ("kind",)
    search_fields = ("name",)
    exclude = ("file",)


@admin.register(MessageOrder)
class MessageOrderAdmin(ConversationDataAdmin):
    """The parts of a reply with files go out in order: a message is sent only once the
    one before it was."""

    page_field = "message__conversation__page"
    list_display = ("message", "after")
    list_select_related = ("message", "after")


# --- Saved replies and notes ----------------------------------------------------------


class SavedReplyForm(forms.ModelForm):
    """The same rules as the inbox's (`replies.reply_fields_clean`): a title, a one-word
    shortcut, a text Messenger takes; and one scope at most."""

    class Meta:
        model = SavedReply
        fields = ("title", "shortcut", "body", "owner", "team")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            fields = replies.reply_fields_clean(
                title=data.get("title") or "",
                shortcut=data.get("shortcut") or "",
                body=data.get("body") or "",
            )
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None
        data.update(title=fields.title, shortcut=fields.shortcut, body=fields.body)
        if data.get("owner") and data.get("team"):
            raise forms.ValidationError(
                "A reply is an agent's own or a team's, not both: leave one of them empty "
                "(both empty: every agent's)."
            )
        return data


@admin.register(SavedReply)
class SavedReplyAdmin(admin.ModelAdmin):
    """Every saved reply: agents' own, teams', and everyone's (no owner, no team), which
    only admins change. Agents manage their own and their teams' in the inbox too."""

    form = SavedReplyForm
    list_display = ("shortcut", "title", "scope", "owner", "team", "updated_at")
    list_select_related = ("owner", "team")
    list_filter = ("team",)
    search_fields = ("shortcut", "title", "body")

    @admin.display(description="who sees it")
    def scope(self, reply: SavedReply) -> str:
        return {"personal": "its owner", "team": "the team", "everyone": "every agent"}[
            replies.scope_of(reply)
        ]

    def save_model(self, request: HttpRequest, obj: SavedReply, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = _user(request)
        super().save_model(request, obj, form, change)


class NoteMentionInline(ReadOnly, admin.TabularInline):
    model = NoteMention
    fields = ("agent", "read_at", "created_at")
    readonly_fields = fields
    extra = 0


@admin.register(Note)
class NoteAdmin(ConversationDataAdmin):
    """Agents' private notes on tickets (never sent to Messenger), with whom they mention."""

    page_field = "conversation__page"
    list_display = ("ticket", "author", "text", "created_at")
    list_select_related = ("ticket", "author")
    search_fields = ("text",)
    inlines = (NoteMentionInline,)


@admin.register(NoteMention)
class NoteMentionAdmin(ConversationDataAdmin):
    """Who was named in which note, and whether they have read it (opened the ticket)."""

    page_field = "note__conversation__page"
    list_display = ("agent", "note", "read_at", "created_at")
    list_select_related = ("agent", "note")
    list_filter = ("read_at",)


# --- Presence and routing (issue 11) ---------------------------------------------------


_HOURS_WIDGETS: dict[type[models.Field[Any, Any]], dict[str, Any]] = {
    models.TimeField: {"widget": forms.TimeInput(format="%H:%M")}
}


class OfficeHoursInline(admin.TabularInline):
    model = OfficeHours
    extra = 0
    formfield_overrides = _HOURS_WIDGETS
    verbose_name_plural = (
        "office hours (in the time zone above; none at all: the team works at any time)"
    )


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0
    verbose_name_plural = "holidays (closed the whole day)"


class PageRoutingForm(forms.ModelForm):
    class Meta:
        model = PageRouting
        fields = (
            "page",
            "team",
            "when_unavailable",
            "closed_message",
            "nobody_message",
            "queue_message",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        page, team = data.get("page"), data.get("team")
        if page is not None and team is not None and not team.pages.filter(pk=page.pk).exists():
            self.add_error(
                "team",
                f"{team.name} does not list {page.name}: add the page to the team first "
                "(a page routes to one of the teams that see it).",
            )
        for field, placeholder in (("closed_message", "{opens}"), ("queue_message", "{position}")):
            text = data.get(field) or ""
            stray = text.replace(placeholder, "")
            if "{" in stray or "}" in stray:
                self.add_error(
                    field, f"Only {placeholder} may be written in braces in this message."
                )
        return data


@admin.register(PageRouting)
class PageRoutingAdmin(admin.ModelAdmin):
    """Which team a page's tickets go to (one team per page), and what a customer is
    told when nobody can answer yet."""

    form = PageRoutingForm
    list_display = ("page", "team", "when_unavailable")
    list_select_related = ("page", "team")


@admin.register(AgentPresence)
class AgentPresenceAdmin(ReadOnly, admin.ModelAdmin):
    """Each agent's Online/Away toggle (set in the inbox) and their last assignment."""

    list_display = ("user", "status", "changed_at", "last_assigned_at")
    list_select_related = ("user",)


@admin.register(AgentSocket)
class AgentSocketAdmin(ReadOnly, admin.ModelAdmin):
    """Open inbox sockets: an agent with none whose heartbeat is fresh is offline."""

    list_display = ("user", "connected_at", "seen_at")
    list_select_related = ("user",)


@admin.register(TicketWait)
class TicketWaitAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("ticket", "since", "position_told_at")
    list_select_related = ("ticket",)


@admin.register(TeamRouting)
class TeamRoutingAdmin(admin.ModelAdmin):
    """A team's routing, with its office hours and holidays."""

    list_display = ("team", "auto_assign", "capacity", "time_zone")
    list_select_related = ("team",)
    inlines = [OfficeHoursInline, HolidayInline]

    def save_model(self, request: HttpRequest, obj: TeamRouting, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        routing.team_routing_changed(team_id=obj.team_id)


@admin.register(OfficeHours)
class OfficeHoursAdmin(admin.ModelAdmin):
    list_display = ("routing", "weekday", "opens", "closes")
    list_select_related = ("routing__team",)
    formfield_overrides = _HOURS_WIDGETS
    list_filter = ("routing__team", "weekday")


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ("routing", "date", "name")
    list_select_related = ("routing__team",)
    list_filter = ("routing__team",)
