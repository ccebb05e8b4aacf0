"""``/v2.0/agents``: the network agents that report to this service (admin only).

Each host's network agent (:mod:`kumo.network.agent`) reports one row per
role it plays; ``alive`` is whether its last report is younger than
``network.agent_down_time``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import json_response
from kumo.network.api.common import authorize
from kumo.network.api.resource import Attr, Resource, parse_query, select

AGENT = Resource("agent", "agents", "Agent", {k: Attr() for k in (
    "id", "agent_type", "binary", "host", "topic", "admin_state_up", "alive", "availability_zone",
    "configurations", "created_at", "started_at", "heartbeat_timestamp", "description", "resources_synced")})


async def list_agents(request: Request) -> Response:
    await authorize(request, "get_agent")
    agents = request.app.state.neutron.agents
    return json_response(select(AGENT, await agents.list(), parse_query(AGENT, request), request))


async def show_agent(request: Request) -> Response:
    await authorize(request, "get_agent")
    return json_response({"agent": await request.app.state.neutron.agents.get(request.path_params["id"])})


routes = [Route("/v2.0/agents", list_agents, methods=["GET"]),
          Route("/v2.0/agents/{id}", show_agent, methods=["GET"])]
