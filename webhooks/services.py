"""Receiving and applying Messenger webhooks.

The receiver stores the raw body and answers at once; `delivery_process` later applies
each event exactly once (a unique key per event, in the same transaction as the change
it causes) through the handler that settings name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from webhooks import tasks
from webhooks.events import Event, parse_delivery
from webhooks.locks import delivery_lock
from webhooks.models import Page, WebhookDelivery, WebhookEvent
from webhooks.queue import enqueue, enqueue_on_commit

logger = logging.getLogger(__name__)

EventHandler = Callable[[Page, Event], str | None]


class MalformedDelivery(ValueError):
    """The body is not a JSON object."""


def signature_valid(*, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256` over the raw bytes, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(settings.MESSENGER_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.removeprefix("sha256=").lower(), expected)


def delivery_receive(*, body: bytes) -> WebhookDelivery:
    """Store a verified delivery durably and enqueue its processing after commit.

    A byte-identical redelivery returns the stored row and enqueues nothing new.
    Raises MalformedDelivery, storing nothing, when the body is not a JSON object.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedDelivery("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise MalformedDelivery("the body is not a JSON object")
    digest = hashlib.sha256(body).hexdigest()
    with transaction.atomic():
        delivery, created = WebhookDelivery.objects.get_or_create(
            digest=digest, defaults={"body": body}
        )
        if created:
            enqueue_on_commit(tasks.delivery_process, delivery.pk)
    return delivery


@cache
def _handler() -> EventHandler:
    handler: EventHandler = import_string(settings.MESSENGER_EVENT_HANDLER)
    return handler


def delivery_process(*, delivery_id: int) -> bool:
    """Apply every event of a delivery, in timestamp order, each exactly once.

    Idempotent: a processed delivery is left alone, and an event whose key is already
    recorded (a redelivery) is skipped. Returns False when the delivery was already
    processed. If the handler raises, nothing of the delivery is kept and the error is
    recorded on the row for the re-drive.
    """
    try:
        with transaction.atomic():
            delivery = delivery_lock(delivery_id)
            if delivery.status == WebhookDelivery.Status.PROCESSED:
                return False
            payload = json.loads(bytes(delivery.body))
            pages = {p.page_id: p for p in Page.objects.all()}
            for event in parse_delivery(payload):
                _event_apply(delivery, event, pages.get(event.page_id))
            delivery.status = WebhookDelivery.Status.PROCESSED
            delivery.attempts += 1
            delivery.last_error = ""
            delivery.processed_at = timezone.now()
            delivery.save(update_fields=["status", "attempts", "last_error", "processed_at"])
    except WebhookDelivery.DoesNotExist:
        return False
    except Exception as exc:
        logger.exception("delivery %s failed", delivery_id)
        with transaction.atomic():
            delivery = delivery_lock(delivery_id)
            delivery.attempts += 1
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            delivery.save(update_fields=["attempts", "status", "last_error"])
        raise
    return True


def _event_apply(delivery: WebhookDelivery, event: Event, page: Page | None) -> None:
    """Caller holds the delivery's lock inside a transaction."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = WebhookEvent.objects.create(
                    key=event.key[:255],
                    delivery=delivery,
                    kind=event.kind,
                    channel=event.channel,
                    page_id=event.page_id,
                    psid=event.psid,
                    timestamp=event.timestamp,
                    outcome=WebhookEvent.Outcome.IGNORED,
                    payload=event.raw,
                )
        except IntegrityError:
            return  # already applied: a redelivery
        if event.kind == "unknown":
            record.note = "unknown event kind"
        elif page is None:
            record.note = "unknown page"
        else:
            note = _handler()(page, event)
            record.outcome = WebhookEvent.Outcome.APPLIED
            record.note = (note or "")[:255]
        record.save(update_fields=["outcome", "note"])


def deliveries_redrive() -> list[int]:
    """Enqueue deliveries stored but not processed (e.g. Redis was down at intake).

    Deliveries younger than a grace period are left to the task enqueued at intake;
    those that failed WEBHOOK_MAX_ATTEMPTS times are left for an admin.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.REDRIVE_GRACE_SECONDS)
    ids = list(
        WebhookDelivery.objects.filter(
            status__in=[WebhookDelivery.Status.RECEIVED, WebhookDelivery.Status.FAILED],
            attempts__lt=settings.WEBHOOK_MAX_ATTEMPTS,
            received_at__lte=cutoff,
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:500]
    )
    for delivery_id in ids:
        enqueue(tasks.delivery_process, delivery_id)
    return ids


def page_connect(
    *,
    page_id: str,
    access_token: str,
    bot_app_id: str,
    name: str,
    human_agent_enabled: bool = False,
    conversation_routing: bool = True,
) -> tuple[Page, bool]:
    """Register a Page or update it in place; idempotent. Raises ValueError on bad input."""
    for label, value in (("page id", page_id), ("bot app id", bot_app_id)):
        if not (value.isascii() and value.isdigit()):
            raise ValueError(f"The {label} must be numeric, not {value!r}.")
    if not access_token.strip():
        raise ValueError("The Page access token is empty.")
    if not name.strip():
        raise ValueError("The page name is empty.")
    if bot_app_id == settings.MESSENGER_APP_ID:
        raise ValueError("The bot's app id is this helpdesk's own app id (MESSENGER_APP_ID).")
    with transaction.atomic():
        page, created = Page.objects.update_or_create(
            page_id=page_id,
            defaults={
                "access_token": access_token.strip(),
                "bot_app_id": bot_app_id,
                "name": name.strip(),
                "human_agent_enabled": human_agent_enabled,
                "conversation_routing": conversation_routing,
            },
        )
        _page_connected_hook(page.pk)
    return page, created


def _page_connected_hook(page_pk: int) -> None:
    """Lets the helpdesk side add its defaults (trigger list), in the same transaction."""
    hook = getattr(settings, "MESSENGER_PAGE_CONNECTED_HANDLER", "")
    if hook:
        import_string(hook)(page_pk)
