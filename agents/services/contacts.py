"""Contacts (Messenger users as one Page knows them), their conversations and profiles."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import realtime, tasks
from agents.locks import conversation_lock, conversation_lock_by_psid
from agents.models import Contact, Conversation
from agents.services.group import conversation_take
from webhooks import graph
from webhooks.models import Page
from webhooks.queue import enqueue_on_commit


def conversation_get_or_create(*, page: Page, psid: str) -> Conversation:
    """The conversation for (page, PSID), created with its contact on first sight.

    A contact whose profile is missing or older than PROFILE_CACHE_SECONDS gets it
    fetched after commit (the Graph call is keyed per cache period, so a burst of events
    makes one call). Safe against a concurrent first sight: unique constraints decide.
    """
    try:
        with transaction.atomic():
            contact, _ = Contact.objects.get_or_create(page=page, psid=psid)
    except IntegrityError:
        contact = Contact.objects.get(page=page, psid=psid)
    if not _profile_fresh(contact):
        enqueue_on_commit(tasks.contact_profile_refresh, contact.pk)
    try:
        with transaction.atomic():
            conversation, _ = Conversation.objects.get_or_create(
                contact=contact, defaults={"page": page}
            )
    except IntegrityError:
        conversation = Conversation.objects.get(contact=contact)
    return conversation


def conversation_lock_or_create(*, page: Page, psid: str) -> Conversation:
    """The conversation for (page, PSID), locked (`locks.conversation_lock`), created
    with its contact on first sight (`conversation_get_or_create`). A known customer
    costs one statement, none when its event's group locked it first (`group`). Caller
    is in a transaction."""
    conversation = conversation_take(page.pk, psid) or conversation_lock_by_psid(
        page_pk=page.pk, psid=psid
    )
    if conversation is None:
        return conversation_lock(conversation_get_or_create(page=page, psid=psid).pk)
    if not _profile_fresh(conversation.contact):
        enqueue_on_commit(tasks.contact_profile_refresh, conversation.contact_id)
    return conversation


def _profile_fresh(contact: Contact) -> bool:
    fresh_after = timezone.now() - timedelta(seconds=settings.PROFILE_CACHE_SECONDS)
    return contact.profile_fetched_at is not None and contact.profile_fetched_at > fresh_after


def contact_profile_refresh(*, contact_id: int) -> None:
    """Fetch name and picture from the User Profile API.

    A refusal (Meta does not always allow it) is recorded and the contact keeps its
    fallback name; transient errors are raised for the task to retry.
    """
    contact = Contact.objects.select_related("page").get(pk=contact_id)
    if _profile_fresh(contact):
        return
    period = int(time.time() // settings.PROFILE_CACHE_SECONDS)
    try:
        profile = graph.user_profile(
            contact.page, psid=contact.psid, key=f"profile:{contact.pk}:{period}"
        )
    except graph.GraphError as exc:
        if exc.retryable:
            raise
        Contact.objects.filter(pk=contact.pk).update(
            profile_error=exc.describe()[:500], profile_fetched_at=timezone.now()
        )
        return
    Contact.objects.filter(pk=contact.pk).update(
        first_name=profile["first_name"][:200],
        last_name=profile["last_name"][:200],
        profile_pic=profile["profile_pic"][:2000],
        profile_error="",
        profile_fetched_at=timezone.now(),
    )
    conversation = Conversation.objects.filter(contact_id=contact.pk).first()
    if conversation:
        realtime.broadcast_on_commit("conversation.updated", conversation_id=conversation.pk)
