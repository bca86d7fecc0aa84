"""Row locks, one helper per model: the only place `select_for_update` is called."""

from agents.models import Conversation, Message, Ticket


def conversation_lock(conversation_id: int) -> Conversation:
    """Lock a conversation row. Call inside `transaction.atomic()`."""
    return (
        Conversation.objects.select_for_update()
        .select_related("page", "contact")
        .get(pk=conversation_id)
    )


def ticket_lock(ticket_id: int) -> Ticket:
    """Lock a ticket row. Lock its conversation first when both are needed."""
    return Ticket.objects.select_for_update().get(pk=ticket_id)


def message_lock(message_id: int) -> Message:
    return Message.objects.select_for_update().get(pk=message_id)
