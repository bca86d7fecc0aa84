"""Meta's Data Deletion Request Callback (issue 13, point 6).

When a person removes the app in their Facebook settings and asks for their data to be
deleted, Meta POSTs `signed_request` (base64url HMAC-SHA256 signature, ".", base64url
JSON payload, signed with the app secret) with the person's `user_id`. The helpdesk
answers with a status URL and a confirmation code, records the request
(`DataDeletionRequest`) and erases in a task, exactly once: the task locks the row,
erases through settings.MESSENGER_DATA_DELETION_HANDLER (the helpdesk side's
`agents.services.privacy.user_erase`: `webhooks` does not import `agents`) and marks the
row done in the same transaction.

Meta's `user_id` is app-scoped; a Messenger contact is known by a page-scoped id
(PSID). The handler erases the contacts, on every page, whose PSID is that id, and the
webhook records and Graph calls stored under it; a person known here only under PSIDs
that differ from it is not found by the callback (README "Data lifecycle"), and is
erased with `manage.py contact_erase`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from webhooks import tasks
from webhooks.locks import deletion_request_lock
from webhooks.models import DataDeletionRequest
from webhooks.queue import enqueue, enqueue_on_commit

logger = logging.getLogger(__name__)

ALGORITHM = "HMAC-SHA256"
SIGNED_REQUEST_MAX = 8192  # Meta's are a few hundred characters
USER_ID_MAX = 64  # DataDeletionRequest.user_id, Contact.psid
REDRIVE_BATCH = 100
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")

UserErase = Callable[..., dict[str, int]]


class BadSignedRequest(ValueError):
    """The `signed_request` is missing, malformed, not signed with the app secret, or
    says nothing this endpoint can act on. The message says which, in words."""


class ErasureDeferred(Exception):
    """Raised by the erase handler when it cannot erase yet (e.g. the person is talking
    to an agent right now). Nothing was erased; the request stays pending and is tried
    again (`data_deletions_redrive`). The message says why, for admins."""


def id_digest(value: str) -> str:
    """A keyed digest (HMAC-SHA256 under SECRET_KEY) of a person's id: lets logs and
    rows tell people apart without holding the id (a plain hash of a numeric id could be
    reversed by trying them all)."""
    return hmac.new(settings.SECRET_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def _b64url_decode(text: str) -> bytes:
    # Meta leaves the padding off; add it back. Only the base64url alphabet is accepted
    # (the decoder would skip anything else).
    if not _B64URL.fullmatch(text):
        raise BadSignedRequest("signed_request is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadSignedRequest("signed_request is not base64url") from None


def signed_request_user_id(*, signed_request: str) -> str:
    """The `user_id` of a signed request, once its signature (HMAC-SHA256 of the
    payload part with MESSENGER_APP_SECRET, compared in constant time) and its
    `algorithm` are checked. Raises BadSignedRequest, in words, otherwise."""
    if not signed_request:
        raise BadSignedRequest("signed_request is missing")
    if len(signed_request) > SIGNED_REQUEST_MAX or not signed_request.isascii():
        raise BadSignedRequest("signed_request is malformed")
    parts = signed_request.split(".")
    if len(parts) != 2 or not all(parts):
        raise BadSignedRequest("signed_request is not <signature>.<payload>")
    encoded_signature, encoded_payload = parts
    signature = _b64url_decode(encoded_signature)
    expected = hmac.new(
        settings.MESSENGER_APP_SECRET.encode(), encoded_payload.encode(), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(signature, expected):
        raise BadSignedRequest("the signature does not match the app secret")
    try:
        payload: Any = json.loads(_b64url_decode(encoded_payload))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadSignedRequest("the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise BadSignedRequest("the payload is not a JSON object")
    algorithm = payload.get("algorithm")
    if not isinstance(algorithm, str) or algorithm.upper() != ALGORITHM:
        raise BadSignedRequest(f"the algorithm is not {ALGORITHM}")
    user_id = payload.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not (isinstance(user_id, str) and user_id.isascii() and user_id.isdigit()):
        raise BadSignedRequest("the payload has no numeric user_id")
    if len(user_id) > USER_ID_MAX:
        raise BadSignedRequest("the user_id is too long")
    return user_id


def data_deletion_request_receive(*, user_id: str) -> DataDeletionRequest:
    """Record a deletion request for `user_id` and queue its erase after commit. The
    same person asking again while their request is pending gets that request (same
    confirmation code) and queues nothing new: the pending row is unique per person."""
    digest = id_digest(user_id)
    pending = DataDeletionRequest.objects.filter(
        user_digest=digest, status=DataDeletionRequest.Status.PENDING
    )
    existing = pending.first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            request = DataDeletionRequest.objects.create(
                confirmation_code=secrets.token_hex(12), user_id=user_id, user_digest=digest
            )
            enqueue_on_commit(tasks.data_deletion_run, request.pk)
    except IntegrityError:
        # The same request arrived twice at once: the other one recorded it.
        return pending.get()
    logger.info("data deletion request %s recorded (user %s)", request.pk, digest[:16])
    return request


def data_deletion_request_get(*, code: str) -> DataDeletionRequest | None:
    return DataDeletionRequest.objects.filter(confirmation_code=code).first()


@cache
def _handler() -> UserErase:
    handler: UserErase = import_string(settings.MESSENGER_DATA_DELETION_HANDLER)
    return handler


def data_deletion_run(*, request_id: int) -> bool:
    """Carry out a pending deletion request, exactly once: the row is locked, the
    handler erases (`user_id=`; returns counts by kind of record) and the row is marked
    done, with the counts and without the id, in one transaction; a request done
    already is left alone. When the handler defers (ErasureDeferred) nothing is erased
    and the row stays pending with the reason; beat tries it again. Returns whether it
    is done now. Any other error is raised (the transaction rolls back; beat re-drives)."""
    with transaction.atomic():
        request = deletion_request_lock(request_id)
        if request is None or request.status == DataDeletionRequest.Status.DONE:
            return False
        now = timezone.now()
        request.attempts += 1
        request.attempted_at = now
        try:
            with transaction.atomic():
                counts = _handler()(user_id=request.user_id)
        except ErasureDeferred as exc:
            request.note = str(exc)[:500]
            request.save(update_fields=["attempts", "attempted_at", "note"])
            logger.info("data deletion request %s waits: %s", request.pk, request.note)
            return False
        request.status = DataDeletionRequest.Status.DONE
        request.counts = counts
        request.user_id = ""
        request.note = ""
        request.done_at = now
        request.save()
    logger.info("data deletion request %s done: %s", request.pk, counts)
    return True


def data_deletions_redrive() -> list[int]:
    """Queue the pending deletion requests not tried for REDRIVE_LEASE_SECONDS (their
    task was lost, or the erase was deferred); the newest are left to their own task
    for REDRIVE_GRACE_SECONDS."""
    now = timezone.now()
    grace = now - timedelta(seconds=settings.REDRIVE_GRACE_SECONDS)
    lease = now - timedelta(seconds=settings.REDRIVE_LEASE_SECONDS)
    ids = list(
        DataDeletionRequest.objects.filter(
            status=DataDeletionRequest.Status.PENDING, created_at__lte=grace
        )
        .exclude(attempted_at__gt=lease)
        .order_by("pk")
        .values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    for request_id in ids:
        enqueue(tasks.data_deletion_run, request_id)
    return ids
