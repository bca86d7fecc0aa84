"""Personal API tokens: random, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from agents.models import Agent, ApiToken


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(*, user: Agent) -> str:
    token = "hd_" + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, digest=token_digest(token), prefix=token[:8])
    return token


def token_user(token: str) -> Agent | None:
    record = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(token), user__is_active=True)
        .first()
    )
    if record is None:
        return None
    ApiToken.objects.filter(pk=record.pk).update(last_used_at=timezone.now())
    return record.user
