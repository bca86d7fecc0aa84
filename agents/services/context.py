"""The note agents keep on a customer (the context panel's free text, issue 11)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from agents import realtime
from agents.errors import InvalidInput, NotFound
from agents.locks import conversation_lock
from agents.models import Agent, Contact, Ticket
from agents.selectors import page_visible

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
        conversation_id = (
            Ticket.objects.filter(pk=ticket_id).values_list("conversation_id", flat=True).first()
        )
        if conversation_id is None:
            raise NotFound(f"Ticket {ticket_id} does not exist.")
        conversation = conversation_lock(conversation_id)
        if not page_visible(user, conversation.page_id):
            raise NotFound(f"Ticket {ticket_id} does not exist.")
        contact = conversation.contact
        contact.note = note
        contact.note_updated_by = user
        contact.note_updated_at = timezone.now()
        contact.save(update_fields=["note", "note_updated_by", "note_updated_at"])
        realtime.broadcast_on_commit("contact.updated", conversation_id=conversation.pk)
    return contact
