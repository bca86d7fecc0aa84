"""Private notes: what agents write on a ticket for each other, never for the customer.

A note is a `Note` row, not a `Message`: nothing that sends messages (the outbox, the
retries, the reconciliation) reads that table, so a note cannot reach Messenger.

The timeline: notes are read with `note_list` (the conversation's notes, every ticket's)
and placed among the messages by their `timestamp` (epoch ms, the clock of what agents
send), the way ticket events are: `GET /tickets/{id}/messages` stays a list of messages
with its own cursor, and the inbox shows a note where its time falls among the
messages loaded (one older than the oldest loaded message comes with that page).

Mentions: `@username` or `@Full Name` of an agent who may see the ticket's page. Each
mentioned agent gets a `NoteMention` (unread until they open the ticket or mark it
read) and a `mention.created` event on their own socket group (`user.<pk>`). A mention
of anyone else (no such agent, or one who may not see the page: not told apart) refuses
the note with the reason, nothing stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from agents import realtime
from agents.errors import InvalidInput
from agents.models import Agent, Note, NoteMention, Ticket
from agents.selectors import page_agents, visible_page_ids
from agents.services.state import now_ms, ticket_for_agent

NOTE_LIMIT = 5000
NOTES_SHOWN = 500  # the newest notes of a conversation that the timeline reads
MENTIONS_SHOWN = 50
# "@name" at the start or after a space or an opening bracket; not inside "a@b.com".
_TOKEN = re.compile(r"(?<![\w@.+-])@([\w.+-]+)")


def _words(agent: Agent) -> str:
    return " ".join(agent.get_full_name().split())


def mentions_find(text: str, agents: Iterable[Agent]) -> tuple[list[Agent], list[str]]:
    """Who `text` mentions among `agents` (by `@Full Name`, longest names first, or
    `@username`, ignoring case) in the order they appear, and the `@words` that name
    none of them."""
    agents = list(agents)
    found: list[tuple[int, Agent]] = []
    taken: list[tuple[int, int]] = []
    for agent in sorted(agents, key=lambda a: -len(_words(a))):
        full = _words(agent)
        if " " not in full:
            continue  # a one-word name is matched as a token below
        pattern = re.compile(r"(?<![\w@.+-])@" + re.escape(full) + r"(?!\w)", re.IGNORECASE)
        for match in pattern.finditer(text):
            if any(start <= match.start() < end for start, end in taken):
                continue
            taken.append(match.span())
            found.append((match.start(), agent))
    by_name: dict[str, Agent] = {}
    for agent in agents:
        by_name.setdefault(agent.get_username().casefold(), agent)
        full = _words(agent)
        if full and " " not in full:
            by_name.setdefault(full.casefold(), agent)
    unknown: list[str] = []
    for match in _TOKEN.finditer(text):
        if any(start <= match.start() < end for start, end in taken):
            continue
        word = match.group(1).rstrip(".-+")
        named = by_name.get(word.casefold())
        if named is None:
            if f"@{word}" not in unknown:
                unknown.append(f"@{word}")
            continue
        found.append((match.start(), named))
    ordered: list[Agent] = []
    for _, agent in sorted(found, key=lambda pair: pair[0]):
        if agent not in ordered:
            ordered.append(agent)
    return ordered, unknown


def _mention_refusal(unknown: Sequence[str]) -> str:
    names = ", ".join(unknown)
    return (
        f"{names} {'names' if len(unknown) == 1 else 'name'} no agent who can see this "
        "ticket. Mention an agent who works on its page, or write the name without @."
    )


def note_add(*, ticket_id: int, user: Agent, text: str) -> Note:
    """A note on a ticket `user` may see (any status: notes go to no one outside).

    InvalidInput (nothing stored) for an empty or too long text, or a mention of anyone
    but an active agent who may see the ticket's page. Emits `note.created` to the
    page's agents and `mention.created` to each agent mentioned (not the author), after
    commit."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("The note is empty.")
    if len(text) > NOTE_LIMIT:
        raise InvalidInput(f"The note is longer than {NOTE_LIMIT} characters.")
    with transaction.atomic():
        ticket = ticket_for_agent(ticket_id, user)
        mentioned, unknown = mentions_find(text, page_agents(ticket.conversation.page_id))
        if unknown:
            raise InvalidInput(_mention_refusal(unknown))
        note = Note.objects.create(
            ticket=ticket,
            conversation=ticket.conversation,
            author=user,
            text=text,
            timestamp=now_ms(),
        )
        notified = [agent for agent in mentioned if agent.pk != user.pk]
        NoteMention.objects.bulk_create(
            # Naming oneself is shown as a mention but notifies nobody: read already.
            [NoteMention(note=note, agent=agent) for agent in notified]
            + [
                NoteMention(note=note, agent=agent, read_at=timezone.now())
                for agent in mentioned
                if agent.pk == user.pk
            ]
        )
        realtime.broadcast_on_commit(
            "note.created",
            conversation_id=ticket.conversation_id,
            ticket_id=ticket.pk,
            note_id=note.pk,
        )
        for agent in notified:
            realtime.user_event_on_commit(
                agent.pk, "mention.created", ticket_id=ticket.pk, note_id=note.pk
            )
    return note


def note_list(*, ticket: Ticket) -> list[Note]:
    """The newest NOTES_SHOWN notes of the ticket's conversation (every ticket's: an
    earlier ticket's notes are its history too), oldest first, with their authors and
    mentions. Two queries."""
    notes = (
        Note.objects.filter(conversation_id=ticket.conversation_id)
        .select_related("author")
        .prefetch_related("mentions")
        .order_by("-timestamp", "-id")[:NOTES_SHOWN]
    )
    return list(reversed(notes))


def _mentions_visible(user: Agent) -> QuerySet[NoteMention]:
    mentions = NoteMention.objects.filter(agent=user)
    visible = visible_page_ids(user)
    if visible is not None:
        # A ticket of a page the agent no longer sees is no longer theirs to read.
        mentions = mentions.filter(note__conversation__page_id__in=visible)
    return mentions


def mention_list(*, user: Agent, unread: bool = False) -> list[NoteMention]:
    """`user`'s newest mentions (MENTIONS_SHOWN) on tickets they may still see, newest
    first, with the note, its author, ticket and contact. One query."""
    mentions = _mentions_visible(user)
    if unread:
        mentions = mentions.filter(read_at__isnull=True)
    return list(
        mentions.select_related(
            "note__author", "note__ticket", "note__conversation__contact"
        ).order_by("-created_at", "-id")[:MENTIONS_SHOWN]
    )


def mention_unread_count(*, user: Agent) -> int:
    return _mentions_visible(user).filter(read_at__isnull=True).count()


def mentions_read(*, user: Agent, ticket_id: int) -> int:
    """Mark `user`'s mentions in the notes of a ticket read (they opened it). Returns how
    many were unread. Emits `mention.read` to the agent's other tabs."""
    with transaction.atomic():
        count = NoteMention.objects.filter(
            agent=user, note__ticket_id=ticket_id, read_at__isnull=True
        ).update(read_at=timezone.now())
        if count:
            realtime.user_event_on_commit(user.pk, "mention.read", ticket_id=ticket_id)
    return count
