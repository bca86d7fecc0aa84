"""The admin site: its index in the support lead's words, and what history means in it.

The index groups models by what the lead does with them, not by Django app: Setup
(what they configure), Conversations (the work itself), History (what happened, as it
was recorded). `settings.INSTALLED_APPS` names `helpdesk.apps.HelpdeskAdminConfig`,
which makes this site Django's default one: every `@admin.register` lands here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone

# (label, name, description, models in the order shown); a model in none of them is
# shown under "Other" (a test asserts there is none).
SECTIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "setup",
        "Setup",
        "Pages, what brings a conversation to the helpdesk, who works on it.",
        (
            "webhooks.page",
            "agents.trigger",
            "agents.team",
            "agents.tag",
            "agents.savedreply",
            "agents.teamrouting",  # issue 11: routing, office hours, holidays
            "agents.pagerouting",
            "agents.officehours",
            "agents.holiday",
            "auth.user",
            "agents.agentprofile",
            "agents.apitoken",
            "auth.group",
            "agents.authfailures",
        ),
    ),
    (
        "conversations",
        "Conversations",
        "The work itself. Tickets are closed, assigned and handed back with the actions "
        "of the ticket list.",
        (
            "agents.ticket",
            "agents.conversation",
            "agents.contact",
            "agents.message",
            "agents.csat",
            "agents.attachment",
            "agents.note",
            "agents.ticketwait",  # issue 11: queues and presence
            "agents.agentpresence",
            "agents.agentsocket",
        ),
    ),
    (
        "history",
        "History",
        "What happened, as it was recorded. Read only.",
        (
            "agents.controltransition",
            "agents.ticketevent",
            "agents.tickettag",
            "agents.persona",
            "agents.messageorder",
            "agents.notemention",
            "webhooks.webhookdelivery",
            "webhooks.webhookevent",
            "webhooks.graphcall",
            "webhooks.datadeletionrequest",  # issue 13: Meta's data deletion callback
        ),
    ),
)
# Django's own models, named as the helpdesk uses them.
NAMES = {"auth.user": "Agents", "auth.group": "Permission groups"}


class HelpdeskAdminSite(admin.AdminSite):
    site_header = "Messenger helpdesk"
    site_title = "Helpdesk admin"
    index_title = "Setup and history"

    def get_app_list(
        self, request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        """The index and the sidebar: SECTIONS instead of apps. An app's own page
        (`/admin/<app>/`) keeps Django's list of that app's models."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        entries: dict[str, dict[str, Any]] = {}
        for app in apps:
            for entry in app["models"]:
                label = entry["model"]._meta.label_lower
                entry["name"] = NAMES.get(label, entry["name"])
                entries[label] = entry
        sections = []
        for section_label, name, description, labels in SECTIONS:
            models = [entries.pop(label) for label in labels if label in entries]
            if section_label == "setup" and request.user.has_perm("webhooks.view_page"):
                models.insert(0, _doctor_entry())
            if models:
                sections.append(_section(section_label, name, description, models))
        if entries:
            sections.append(_section("other", "Other", "", list(entries.values())))
        return sections

    def get_urls(self) -> list[URLResolver | URLPattern]:
        return [
            path("doctor/", self.admin_view(self.doctor_view), name="doctor"),
            *super().get_urls(),
        ]

    def doctor_view(self, request: HttpRequest) -> HttpResponse:
        """Per page and for the helpdesk itself, what works and what to fix
        (agents.services.doctor). `?page=<pk>`: one page. POST `action=subscribe` with
        `page=<pk>` subscribes the app with every needed field."""
        from agents.services import doctor  # noqa: PLC0415 -- the site loads before the apps
        from webhooks.models import Page  # noqa: PLC0415

        if not request.user.has_perm("webhooks.view_page"):
            raise PermissionDenied
        can_change = request.user.has_perm("webhooks.change_page")
        url = reverse("admin:doctor")
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            page = _page_or_404(Page, request.POST.get("page"))
            if request.POST.get("action") != "subscribe":
                messages.error(request, "Unknown action: nothing was changed.")
                return HttpResponseRedirect(url)
            outcome = doctor.subscribe(page)
            level = messages.SUCCESS if outcome.startswith("Subscribed") else messages.ERROR
            messages.add_message(request, level, outcome)
            return HttpResponseRedirect(f"{url}?page={page.pk}#page-{page.pk}")
        one_page = None
        pages = Page.objects.order_by("name", "pk")
        if "page" in request.GET:
            one_page = _page_or_404(Page, request.GET["page"])
            pages = pages.filter(pk=one_page.pk)
        now = timezone.now()
        context = {
            **self.each_context(request),
            "title": "Doctor",
            "subtitle": one_page.name if one_page else None,
            "reports": [doctor.page_report(page, now=now) for page in pages],
            "system": doctor.system_checks(now=now),
            "checked_at": now,
            "one_page": one_page,
            "can_change": can_change,
        }
        return TemplateResponse(request, "admin/doctor.html", context)


def _page_or_404(model: Any, pk: str | None) -> Any:
    if not pk or not pk.isdigit():
        raise Http404("No such page.")
    try:
        return model.objects.get(pk=int(pk))
    except model.DoesNotExist:
        raise Http404("No such page.") from None


def _doctor_entry() -> dict[str, Any]:
    # Shaped like a model's entry in the index (templates/admin/app_list.html).
    return {
        "name": "Doctor: is Meta still talking to us?",
        "object_name": "Doctor",
        "admin_url": reverse("admin:doctor"),
        "add_url": None,
        "view_only": True,
        "perms": {"view": True},
    }


def _section(
    label: str, name: str, description: str, models: list[dict[str, Any]]
) -> dict[str, Any]:
    # Shaped like Django's app entries; no `app_url`: a section has no page of its own
    # (templates/admin/app_list.html shows its name without a link).
    return {
        "name": name,
        "app_label": label,
        "app_url": "",
        "description": description,
        "has_module_perms": True,
        "models": models,
    }


class ReadOnly:
    """Rows the product writes as things happen (audit logs, messages, tickets): shown
    in admin, never added, changed or deleted there. For model admins and inlines."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class HistoryAdmin(ReadOnly, admin.ModelAdmin):
    """A model admin for history rows (`ReadOnly`)."""
