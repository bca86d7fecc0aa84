"""The agent inbox pages. Thin: the page is a shell; its script reads the JSON API
(`/api/v1/`) and listens on `/ws/inbox/`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from agents import realtime
from agents.forms import ThrottledAuthenticationForm


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
