"""Presence and routing in the agent API (issue 11, point 6): who is online, and your
own Online/Away toggle. Registered on `agents.api.endpoints.api`."""

from __future__ import annotations

from typing import Literal

from ninja import Schema

from agents import selectors
from agents.api.endpoints import AgentRequest, api
from agents.api.schemas import Error
from agents.models import Agent, agent_name
from agents.services import presence


class AgentPresenceOut(Schema):
    """An agent and their presence: `online`, `away` (their toggle) or `offline` (no
    inbox open)."""

    id: int
    username: str
    name: str
    presence: Literal["online", "away", "offline"]


class MyPresenceIn(Schema):
    status: Literal["online", "away"]


class MyPresenceOut(Schema):
    """`status`: your toggle; `presence`: what other agents see (offline while no inbox
    of yours is open, whatever the toggle)."""

    status: Literal["online", "away"]
    presence: Literal["online", "away", "offline"]


@api.get(
    "/presence",
    response=list[AgentPresenceOut],
    tags=["agents"],
    summary="Who is online",
)
def presence_list(request: AgentRequest) -> list[dict[str, object]]:
    """The agents you work with (as `GET /agents`), and the admins (whom tickets may be
    transferred to too), with their presence. Inboxes that follow presence hear
    `presence.changed` (an agent's id) when it changes."""
    known = selectors.agent_list(user=request.user)
    admins = Agent.objects.filter(is_active=True, is_superuser=True)
    agents = sorted({*known, *admins}, key=lambda agent: (agent.get_username(), agent.pk))
    states = presence.presence_of(agent.pk for agent in agents)
    return [
        {
            "id": agent.pk,
            "username": agent.get_username(),
            "name": agent_name(agent),
            "presence": states[agent.pk],
        }
        for agent in agents
    ]


def _mine(request: AgentRequest) -> dict[str, str]:
    user = request.user
    return {
        "status": presence.presence_status(user),
        "presence": presence.presence_of([user.pk])[user.pk],
    }


@api.get("/me/presence", response=MyPresenceOut, tags=["agents"], summary="Your presence")
def my_presence(request: AgentRequest) -> dict[str, str]:
    """Your Online/Away toggle and the presence other agents see."""
    return _mine(request)


@api.put(
    "/me/presence",
    response={200: MyPresenceOut, 400: Error},
    tags=["agents"],
    summary="Set yourself online or away",
)
def my_presence_set(request: AgentRequest, payload: MyPresenceIn) -> dict[str, str]:
    """Away: no ticket is assigned to you automatically (you may still claim). Online:
    the team's queue may be assigned to you at once, up to your capacity."""
    presence.presence_set(user=request.user, status=payload.status)
    return _mine(request)
