"""Reads for the API and the inbox, filtered by what the agent may see."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from agents.models import Message, Team, Ticket
from webhooks.models import Page


def visible_page_ids(user: AbstractBaseUser) -> set[int] | None:
    """Pages the agent may see; None means all of them.

    A page that no team lists is visible to every agent; a page that teams list is
    visible to their members. Superusers see everything.
    """
    if user.is_superuser:
        return None
    team_pages = set(Team.objects.values_list("pages", flat=True)) - {None}
    mine = set(Team.objects.filter(members=user).values_list("pages", flat=True)) - {None}
    open_pages = set(Page.objects.exclude(pk__in=team_pages).values_list("pk", flat=True))
    return open_pages | mine


def ticket_list(
    *, user: AbstractBaseUser, status: str | None = None, mine: bool = False
) -> QuerySet[Ticket]:
    tickets = Ticket.objects.select_related(
        "conversation__contact", "conversation__page", "assignee"
    ).order_by("opened_at", "id")
    visible = visible_page_ids(user)
    if visible is not None:
        tickets = tickets.filter(conversation__page_id__in=visible)
    if status:
        tickets = tickets.filter(status=status)
    if mine:
        tickets = tickets.filter(assignee=user)
    return tickets


def ticket_get(*, user: AbstractBaseUser, ticket_id: int) -> Ticket | None:
    return ticket_list(user=user).filter(pk=ticket_id).first()


def ticket_messages(*, ticket: Ticket) -> QuerySet[Message]:
    """The conversation's whole history, in timestamp order: bot-side context and the
    ticket's own messages (callers tell them apart by `ticket_id`)."""
    return (
        Message.objects.filter(conversation_id=ticket.conversation_id)
        .select_related("author")
        .order_by("timestamp", "id")
    )


def message_visible(*, user: AbstractBaseUser, message_id: int) -> Message | None:
    visible = visible_page_ids(user)
    messages = Message.objects.filter(pk=message_id)
    if visible is not None:
        messages = messages.filter(conversation__page_id__in=visible)
    return messages.first()
