"""The login form, throttled (`agents.services.throttle`)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from agents.services import throttle


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, except that too many failures for the account or from the
    client's address refuse the login without checking the password."""

    throttled_message = ""  # shown instead of "didn't match" when set

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return self.cleaned_data
        address = self.request.META.get("REMOTE_ADDR") if self.request else None
        wait = throttle.login_blocked(username=username, address=address)
        if wait:
            self.throttled_message = throttle.wait_message(wait)
            raise ValidationError(self.throttled_message, code="throttled")
        self.user_cache = authenticate(self.request, username=username, password=password)
        if self.user_cache is None:
            throttle.login_failure_record(username=username, address=address)
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(self.user_cache)
        throttle.login_success_record(username=username)
        return self.cleaned_data
