"""Tags on tickets: agents apply and remove them, from the set admins manage (admin).

Each change locks the ticket (its conversation first, `state.ticket_for_agent`), writes
the `TicketTag` row (who, when) and one `TicketEvent` ("tagged"/"untagged") per tag, and
tells the agents after commit (`ticket.updated`, through `state.ticket_change`). A
request that names a tag that does not exist, or one that is inactive and not already on
the ticket, changes nothing: 400 with the names in words.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from agents.errors import InvalidInput
from agents.models import Agent, Tag, Ticket, TicketEvent, TicketTag
from agents.services.state import ticket_change, ticket_for_agent

# The largest id a row can have (a 64-bit integer): a larger one names no tag, and is not
# put into an `IN` list, where SQLite's driver refuses it (OverflowError, a 500).
ID_MAX = 2**63 - 1


def _tags(ids: Iterable[int]) -> dict[int, Tag]:
    wanted = set(ids)
    storable = [pk for pk in wanted if 0 < pk <= ID_MAX]
    found = {tag.pk: tag for tag in Tag.objects.filter(pk__in=storable)}
    missing = sorted(wanted - set(found))
    if missing:
        listed = ", ".join(str(pk) for pk in missing)
        raise InvalidInput(f"No tag with id {listed}: nothing was changed.")
    return found


def _check_applicable(tags: Iterable[Tag]) -> None:
    inactive = sorted(tag.name for tag in tags if not tag.active)
    if inactive:
        listed = ", ".join(f"“{name}”" for name in inactive)
        raise InvalidInput(
            f"The tag {listed} is no longer in use and cannot be applied: nothing was changed."
            if len(inactive) == 1
            else f"The tags {listed} are no longer in use and cannot be applied: "
            "nothing was changed."
        )


def _apply(ticket: Ticket, user: Agent, add: list[Tag], remove: list[Tag]) -> None:
    """Caller holds the ticket's lock; `add` are not on it yet, `remove` are."""
    for tag in add:
        TicketTag.objects.create(ticket=ticket, tag=tag, applied_by=user)
        ticket_change(ticket, TicketEvent.Kind.TAGGED, actor=user, detail=tag.name)
    if remove:
        TicketTag.objects.filter(ticket=ticket, tag__in=remove).delete()
    for tag in remove:
        ticket_change(ticket, TicketEvent.Kind.UNTAGGED, actor=user, detail=tag.name)


def ticket_tags_set(*, ticket_id: int, user: Agent, tag_ids: Iterable[int]) -> Ticket:
    """Make the ticket carry exactly these tags. An inactive tag may stay (it is on the
    ticket already) but not be added. Returns the ticket (locked in the transaction)."""
    with transaction.atomic():
        ticket = ticket_for_agent(ticket_id, user)
        wanted = _tags(tag_ids)
        current = {link.tag_id: link.tag for link in ticket.tag_links.select_related("tag")}
        add = [tag for pk, tag in wanted.items() if pk not in current]
        _check_applicable(add)
        remove = [tag for pk, tag in current.items() if pk not in wanted]
        _apply(ticket, user, sorted(add, key=_order), sorted(remove, key=_order))
    return ticket


def ticket_tag_add(*, ticket_id: int, user: Agent, tag_id: int) -> Ticket:
    """Put one tag on the ticket; already there: nothing changes (no event)."""
    with transaction.atomic():
        ticket = ticket_for_agent(ticket_id, user)
        tag = _tags([tag_id])[tag_id]
        if not TicketTag.objects.filter(ticket=ticket, tag=tag).exists():
            _check_applicable([tag])
            _apply(ticket, user, [tag], [])
    return ticket


def ticket_tag_remove(*, ticket_id: int, user: Agent, tag_id: int) -> Ticket:
    """Take one tag off the ticket (inactive ones too); not there: nothing changes."""
    with transaction.atomic():
        ticket = ticket_for_agent(ticket_id, user)
        tag = _tags([tag_id])[tag_id]
        if TicketTag.objects.filter(ticket=ticket, tag=tag).exists():
            _apply(ticket, user, [], [tag])
    return ticket


def _order(tag: Tag) -> str:
    return tag.name.casefold()
