"""``/v2.0/agents``: the network agents that report to this service (admin only).

The dataplane agent (Linux bridges, DHCP, routers) is not part of Kumo yet,
so the list is empty and every agent id is unknown; the route exists so
``openstack network agent list`` answers truthfully instead of failing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import json_response
from kumo.network.api.common import authorize
from kumo.network.api.resource import Attr, Resource, parse_query, select
from kumo.network.errors import NotFound

AGENT = Resource("agent", "agents", "Agent", {k: Attr() for k in (
    "id", "agent_type", "binary", "host", "topic", "admin_state_up", "alive", "availability_zone",
    "configurations", "created_at", "started_at", "heartbeat_timestamp", "description")})


async def list_agents(request: Request) -> Response:
    await authorize(request, "get_agent")
    return json_response(select(AGENT, [], parse_query(AGENT, request), request))


async def show_agent(request: Request) -> Response:
    await authorize(request, "get_agent")
    raise NotFound("Agent", request.path_params["id"])


routes = [Route("/v2.0/agents", list_agents, methods=["GET"]),
          Route("/v2.0/agents/{id}", show_agent, methods=["GET"])]
