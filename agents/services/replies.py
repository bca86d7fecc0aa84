"""Saved replies: texts an agent inserts from the composer by typing `/` and a shortcut.

Scopes (who sees a reply, who may change it):
- personal (`owner`): that agent only;
- team (`team`): the team's members, each of whom may change it;
- everyone (neither): every agent sees it; only admins (superusers) change it, in
  Django admin or through the API.
An admin sees every reply in admin, and through the API the ones an agent in their
place would see plus every team's. Another scope's reply is not there for an agent: 404,
whether or not it exists.

Placeholders `{first_name}`, `{agent_name}` and `{page_name}` are filled for a ticket
(`saved_reply_render`); one without a value (a contact whose first name Messenger did
not give) stays in the text for the agent to fill, and no text that still holds one is
sent (`placeholder_refusal`, enforced by `outbound.text_clean`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Case, Q, QuerySet, Value, When

from agents.errors import InvalidInput, NotFound, PermissionDenied
from agents.models import Agent, SavedReply, Team, Ticket
from agents.services import personas

TITLE_LIMIT = 100
SHORTCUT_LIMIT = 40
BODY_LIMIT = 2000  # Messenger's limit for a text message
SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
PLACEHOLDERS = ("first_name", "agent_name", "page_name")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

Scope = str  # "personal" | "team" | "everyone"


def scope_of(reply: SavedReply) -> Scope:
    if reply.owner_id is not None:
        return "personal"
    if reply.team_id is not None:
        return "team"
    return "everyone"


def _team_ids(user: Agent) -> list[int]:
    return list(Team.objects.filter(members=user).values_list("pk", flat=True))


def saved_reply_list(*, user: Agent, q: str = "") -> QuerySet[SavedReply]:
    """The replies `user` may use: their own, their teams', everyone's (an admin: every
    team's too), filtered by `q` (in the title, the shortcut or the body, ignoring
    case; a leading / is ignored): those whose shortcut starts with it first, then
    those whose shortcut or title holds it, then the rest; by shortcut. One query."""
    visible = Q(owner=user) | Q(owner__isnull=True, team__isnull=True)
    visible |= Q(team__isnull=False) if user.is_superuser else Q(team__members=user)
    replies = SavedReply.objects.filter(visible)
    q = q.strip().lstrip("/")
    if q:
        replies = replies.filter(
            Q(title__icontains=q) | Q(shortcut__icontains=q) | Q(body__icontains=q)
        )
    # What the agent is typing a shortcut of first, then titles, then texts.
    rank = (
        Case(
            When(shortcut__istartswith=q, then=Value(0)),
            When(Q(shortcut__icontains=q) | Q(title__icontains=q), then=Value(1)),
            default=Value(2),
        )
        if q
        else Value(0)
    )
    return (
        replies.annotate(rank=rank)
        .select_related("team", "owner")
        .distinct()
        .order_by("rank", "shortcut", "title", "id")
    )


def saved_reply_get(*, user: Agent, reply_id: int) -> SavedReply:
    """A reply `user` may use; NotFound otherwise (not told apart from one that does
    not exist)."""
    reply = saved_reply_list(user=user).filter(pk=reply_id).first()
    if reply is None:
        raise NotFound(f"Saved reply {reply_id} does not exist.")
    return reply


def may_change(reply: SavedReply, user: Agent) -> bool:
    """Personal: its owner; a team's: its members; everyone's: admins. Admins all."""
    if user.is_superuser:
        return True
    if reply.owner_id is not None:
        return bool(reply.owner_id == user.pk)
    if reply.team_id is not None:
        return reply.team_id in _team_ids(user)
    return False


@dataclass(frozen=True)
class ReplyFields:
    title: str
    shortcut: str
    body: str


def reply_fields_clean(*, title: str, shortcut: str, body: str) -> ReplyFields:
    """The fields trimmed (the shortcut lower-cased, without a leading /); InvalidInput
    naming every problem at once."""
    title = " ".join((title or "").split())
    shortcut = (shortcut or "").strip().lstrip("/").lower()
    body = (body or "").strip()
    problems = []
    if not title:
        problems.append("The title is empty.")
    elif len(title) > TITLE_LIMIT:
        problems.append(f"The title is longer than {TITLE_LIMIT} characters.")
    if not shortcut:
        problems.append("The shortcut is empty.")
    elif len(shortcut) > SHORTCUT_LIMIT:
        problems.append(f"The shortcut is longer than {SHORTCUT_LIMIT} characters.")
    elif not SHORTCUT.match(shortcut):
        problems.append(
            "The shortcut is one word: letters, digits, - and _ (no spaces), "
            "starting with a letter or a digit."
        )
    if not body:
        problems.append("The text is empty.")
    elif len(body) > BODY_LIMIT:
        problems.append(
            f"The text is {len(body)} characters long: Messenger takes at most {BODY_LIMIT}."
        )
    if problems:
        raise InvalidInput(" ".join(problems))
    return ReplyFields(title=title, shortcut=shortcut, body=body)


def _scope_team(user: Agent, team_id: int | None) -> Team | None:
    """The team a reply is for (None: personal); InvalidInput unless `user` is on it
    (admins may choose any team)."""
    if team_id is None:
        return None
    team = Team.objects.filter(pk=team_id).first()
    if team is None or not (user.is_superuser or team.members.filter(pk=user.pk).exists()):
        raise InvalidInput(f"You are not on team {team_id}: a team's reply is for its members.")
    return team


def _duplicate(reply: SavedReply) -> str:
    where = {
        "personal": "your replies",
        "team": f"the team {reply.team.name if reply.team else ''}'s replies",
        "everyone": "everyone's replies",
    }[scope_of(reply)]
    return f"The shortcut /{reply.shortcut} is taken in {where}: choose another."


def _save(reply: SavedReply) -> SavedReply:
    """Save, turning a taken shortcut (the unique constraints: never check-then-act)
    into InvalidInput with nothing changed."""
    try:
        with transaction.atomic():
            reply.save()
    except IntegrityError:
        raise InvalidInput(_duplicate(reply)) from None
    return reply


def saved_reply_create(
    *, user: Agent, title: str, shortcut: str, body: str, team_id: int | None = None
) -> SavedReply:
    """A personal reply of `user`, or (with `team_id`) one of a team they are on."""
    fields = reply_fields_clean(title=title, shortcut=shortcut, body=body)
    team = _scope_team(user, team_id)
    reply = SavedReply(
        title=fields.title,
        shortcut=fields.shortcut,
        body=fields.body,
        owner=None if team else user,
        team=team,
        created_by=user,
    )
    return _save(reply)


def saved_reply_update(
    *, user: Agent, reply_id: int, title: str, shortcut: str, body: str
) -> SavedReply:
    """Change a reply's title, shortcut and text (its scope stays). NotFound for one
    `user` does not see; PermissionDenied for everyone's, unless an admin."""
    reply = saved_reply_get(user=user, reply_id=reply_id)
    if not may_change(reply, user):
        raise PermissionDenied("Only an admin changes the replies every agent sees.")
    fields = reply_fields_clean(title=title, shortcut=shortcut, body=body)
    reply.title, reply.shortcut, reply.body = fields.title, fields.shortcut, fields.body
    return _save(reply)


def saved_reply_delete(*, user: Agent, reply_id: int) -> None:
    reply = saved_reply_get(user=user, reply_id=reply_id)
    if not may_change(reply, user):
        raise PermissionDenied("Only an admin deletes the replies every agent sees.")
    reply.delete()


# --- placeholders -----------------------------------------------------------------------


def placeholder_values(*, ticket: Ticket, user: Agent) -> dict[str, str]:
    """What each placeholder stands for in `ticket`, written by `user`: the contact's
    first name, the agent's name as the customer sees it (their persona), the page's
    name. "" where there is none."""
    contact = ticket.conversation.contact
    agent, _ = personas.public_identity(user)
    return {
        "first_name": contact.first_name.strip(),
        "agent_name": agent,
        "page_name": ticket.conversation.page.name.strip(),
    }


@dataclass(frozen=True)
class Rendered:
    text: str
    unfilled: list[str]  # the placeholders left in the text, e.g. "{first_name}"


def render(body: str, values: dict[str, str]) -> Rendered:
    """`body` with each known placeholder that has a value replaced by it; the others
    stay as they are, listed in `unfilled` (in order, once each)."""
    unfilled: list[str] = []

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1), "")
        if value:
            return value
        if match.group(0) not in unfilled:
            unfilled.append(match.group(0))
        return match.group(0)

    return Rendered(text=_PLACEHOLDER.sub(fill, body), unfilled=unfilled)


def saved_reply_render(*, user: Agent, ticket: Ticket, reply_id: int) -> Rendered:
    """A reply `user` may use, filled for `ticket` (one they may see: the caller checks)."""
    reply = saved_reply_get(user=user, reply_id=reply_id)
    return render(reply.body, placeholder_values(ticket=ticket, user=user))


def placeholder_refusal(text: str) -> str:
    """Why `text` may not be sent: it still holds a placeholder; "" when it does not."""
    left = list(dict.fromkeys(m.group(0) for m in _PLACEHOLDER.finditer(text)))
    if not left:
        return ""
    names = ", ".join(left)
    return (
        f"The message still contains {names}: replace {'it' if len(left) == 1 else 'them'} "
        "with the words the customer should read before sending."
    )
