"""The agent inbox pages. Thin: the page is a shell; its script reads the JSON API
(`/api/v1/`) and listens on `/ws/inbox/`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from agents import realtime
from agents.forms import ThrottledAuthenticationForm
from agents.report_charts import report_charts
from agents.reports import (
    GROUPS,
    MAX_DAYS,
    TABLE_HEADINGS,
    ReportInputError,
    report_build,
    report_cells,
    report_choices,
    report_csv,
    report_filter_parse,
    report_handover_cells,
    report_stats,
)


def _graph_origin() -> str:
    """Where the Graph API lives; in development the emulator serves profile pictures
    from there over plain http."""
    parts = urlsplit(settings.GRAPH_API_URL)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(request: HttpRequest) -> str:
    """Our own script and style only, no inline code; pictures from Meta's CDN (https)
    or from the Graph API's own origin (the emulator, in development), and `blob:` for
    the preview of a picture an agent is about to send (made by our own script)."""
    socket = ("wss://" if request.is_secure() else "ws://") + request.get_host()
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' blob: https: {_graph_origin()}".strip(),
            f"connect-src 'self' {socket}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def with_csp(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(request))
        return response

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@with_csp
@login_required
@ensure_csrf_cookie
def inbox(request: HttpRequest, ticket_id: int | None = None) -> HttpResponse:
    """The inbox; `/tickets/<id>/` opens it on one ticket (the script checks it exists)."""
    return render(request, "agents/inbox.html", {"ticket_id": ticket_id or ""})


REPORTS_PERMISSION = "agents.view_reports"


@with_csp
@login_required
def reports(request: HttpRequest) -> HttpResponse:
    """Reports for support leads (`agents.view_reports`, given in admin): charts and a
    table over a range of days, per day, page, team or agent; `format=csv` downloads the
    table. Wrong filters: 400 with what is wrong, and no report."""
    user = request.user
    assert user.is_authenticated
    if not user.has_perm(REPORTS_PERMISSION):
        return render(request, "agents/reports_denied.html", status=403)
    wanted = request.GET.get("format", "html")
    context: dict[str, Any] = {
        "choices": report_choices(user),
        "groups": GROUPS,
        "max_days": MAX_DAYS,
        "params": request.GET,
    }
    if wanted not in ("html", "csv"):
        return _reports_refused(request, context, [f"Format {wanted[:20]!r}: choose html or csv."])
    try:
        report_filter = report_filter_parse(request.GET, user=user)
    except ReportInputError as exc:
        return _reports_refused(request, context, exc.messages)
    report = report_build(report_filter, user=user)
    if wanted == "csv":
        name = f"helpdesk-report-{report_filter.start}-{report_filter.end}-{report_filter.group}"
        return HttpResponse(
            report_csv(report),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    query = report_filter.query()
    rows = [*report.rows, report.total]
    context.update(
        report=report,
        charts=report_charts(report),
        stats=report_stats(report),
        headings=TABLE_HEADINGS,
        table=[(row.label, report_cells(row)) for row in rows],
        handover_headings=[label for _, label in report.triggers + report.ways],
        handover_table=[(row.label, report_handover_cells(report, row)) for row in rows],
        values=query,
        csv_query=urlencode({**query, "format": "csv"}),
    )
    return render(request, "agents/reports.html", context)


def _reports_refused(
    request: HttpRequest, context: dict[str, Any], errors: list[str]
) -> HttpResponse:
    if request.GET.get("format") == "csv":
        return HttpResponse("\n".join(errors) + "\n", status=400, content_type="text/plain")
    context.update(errors=errors, values=request.GET)
    return render(request, "agents/reports.html", context, status=400)


login = with_csp(
    auth_views.LoginView.as_view(
        template_name="registration/login.html",
        redirect_authenticated_user=True,
        authentication_form=ThrottledAuthenticationForm,
    )
)


class LogoutView(auth_views.LogoutView):
    """Django's logout (POST only, with the CSRF token); then the sockets of the session
    that ended are closed (agents.realtime.access_changed)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user_pk = request.user.pk if request.user.is_authenticated else None
        response = super().post(request, *args, **kwargs)
        if user_pk is not None:
            realtime.access_changed_on_commit([user_pk])
        return response


logout = LogoutView.as_view()
