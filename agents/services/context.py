"""The note agents keep on a customer (the context panel's free text, issue 11)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from agents import realtime
from agents.errors import InvalidInput
from agents.models import Agent, Contact
from agents.services.state import conversation_for_agent

NOTE_LIMIT = 2000


def note_clean(note: str) -> str:
    """The note as it is stored: trimmed. InvalidInput, in words, when it is too long or
    holds a character no database keeps (NUL)."""
    note = (note or "").strip()
    if "\x00" in note:
        raise InvalidInput("The note contains a NUL character, which cannot be stored.")
    if len(note) > NOTE_LIMIT:
        raise InvalidInput(
            f"The note is too long: {len(note):,} characters, at most {NOTE_LIMIT:,}."
        )
    return note


def contact_note_update(*, ticket_id: int, user: Agent, note: str) -> Contact:
    """Set the note on the customer of a ticket the agent may see (NotFound otherwise,
    like a ticket that does not exist), with who changed it and when.

    Holds the conversation's lock (contact and conversation are one-to-one) for the
    write; sends `contact.updated` (the conversation's id) to the agents who see the
    page after commit, whether or not the text changed (the saver's time is news too).
    Bad input changes nothing.
    """
    note = note_clean(note)
    with transaction.atomic():
        conversation = conversation_for_agent(ticket_id, user)
        contact = conversation.contact
        contact.note = note
        contact.note_updated_by = user
        contact.note_updated_at = timezone.now()
        contact.save(update_fields=["note", "note_updated_by", "note_updated_at"])
        realtime.broadcast_on_commit("contact.updated", conversation_id=conversation.pk)
    return contact
