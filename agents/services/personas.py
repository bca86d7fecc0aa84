"""Personas: the customer sees which agent is talking (Messenger's Personas API, §9.5).

An agent's persona on a page is created on first use (`persona_for`), stored and reused
while their public name and picture stay the same. When Meta refuses to create one the
reply goes out without it; the refusal is recorded once on the row and not tried again
until the agent changes their name or picture.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db import IntegrityError, transaction

from agents.errors import InvalidInput
from agents.models import Agent, AgentProfile, Persona, agent_name
from webhooks import graph
from webhooks.models import Page

logger = logging.getLogger(__name__)

PUBLIC_NAME_LIMIT = 100


def public_identity(agent: Agent) -> tuple[str, str]:
    """The name and picture customers see on the agent's replies."""
    profile = AgentProfile.objects.filter(user=agent).first()
    name = (profile.public_name if profile else "") or agent.first_name or agent.get_username()
    return name.strip()[:PUBLIC_NAME_LIMIT], profile.picture_url if profile else ""


def profile_view(agent: Agent) -> dict[str, Any]:
    profile = AgentProfile.objects.filter(user=agent).first()
    return {
        "id": agent.pk,
        "username": agent.get_username(),
        "name": agent_name(agent),
        "public_name": profile.public_name if profile else "",
        "picture_url": profile.picture_url if profile else "",
    }


def profile_refusals(*, public_name: str, picture_url: str) -> dict[str, str]:
    """Why `profile_update` would refuse these values, by field; empty when it would not."""
    refusals = {}
    if len(" ".join(public_name.split())) > PUBLIC_NAME_LIMIT:
        refusals["public_name"] = f"The public name is longer than {PUBLIC_NAME_LIMIT} characters."
    picture_url = picture_url.strip()
    if picture_url and (
        not picture_url.startswith("https://") or len(picture_url) > 2000 or " " in picture_url
    ):
        refusals["picture_url"] = "The picture must be a public https:// address of an image."
    return refusals


def profile_update(agent: Agent, *, public_name: str, picture_url: str) -> AgentProfile:
    """Set the agent's public name and picture; InvalidInput (nothing changed) for a name
    that is too long or a picture that is not a public https URL."""
    public_name = " ".join((public_name or "").split())
    picture_url = (picture_url or "").strip()
    refusals = profile_refusals(public_name=public_name, picture_url=picture_url)
    if refusals:
        raise InvalidInput(next(iter(refusals.values())))
    profile, _ = AgentProfile.objects.update_or_create(
        user=agent, defaults={"public_name": public_name, "picture_url": picture_url}
    )
    return profile


def persona_for(page: Page, agent: Agent) -> str:
    """The agent's persona id on the page, created on first use; "" when Meta would not
    create one (the message goes without it)."""
    name, picture = public_identity(agent)
    row = Persona.objects.filter(page=page, agent=agent).first()
    if row is not None and row.name == name and row.picture_url == picture:
        return row.persona_id  # "" when its creation was refused (recorded once)
    digest = hashlib.sha256(f"{name}\n{picture}".encode()).hexdigest()[:16]
    try:
        persona_id = graph.persona_create(
            page, key=f"persona:{page.pk}:{agent.pk}:{digest}", name=name, picture_url=picture
        )
        error = ""
    except graph.GraphError as exc:
        if exc.retryable or exc.unknown_outcome or exc.page_level:
            return ""  # not the persona's fault: tried again on the next message
        persona_id, error = "", exc.describe()
        logger.warning("persona for agent %s on page %s refused: %s", agent.pk, page.pk, error)
    try:
        with transaction.atomic():
            Persona.objects.update_or_create(
                page=page,
                agent=agent,
                defaults={
                    "persona_id": persona_id,
                    "name": name,
                    "picture_url": picture,
                    "error": error[:500],
                },
            )
    except IntegrityError:
        pass  # another worker stored it at the same moment (same key: same persona)
    return persona_id
