"""Optional error reporting to Sentry (or a server that speaks its protocol, such as
GlitchTip), when SENTRY_DSN is set: Django's and Celery's errors, and log lines at
ERROR. Nothing personal is sent (`send_default_pii` off: no cookies, no user, no
request bodies), and every string of an event goes through the logs' masking, so a
token that reached an error message is masked before it leaves."""

from __future__ import annotations

from typing import Any

from helpdesk import logs


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return logs.mask(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    scrubbed: dict[str, Any] = _scrub(event)
    return scrubbed


def init(dsn: str, *, environment: str, release: str) -> None:
    """Start reporting (settings call it when SENTRY_DSN is set)."""
    import sentry_sdk  # noqa: PLC0415 -- only when a DSN is set
    from sentry_sdk.integrations.celery import CeleryIntegration  # noqa: PLC0415
    from sentry_sdk.integrations.django import DjangoIntegration  # noqa: PLC0415

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,  # a frame's locals may hold a decrypted token
        traces_sample_rate=0.0,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        before_send=before_send,  # type: ignore[arg-type]
    )
