"""``/v2.0/network-ip-availabilities``: used and total addresses per network and subnet (admin only).

As in Neutron, a caller the policy refuses gets an empty list, and ``404``
for one network, rather than a 403 (the numbers would reveal other
projects' networks).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.policy import Enforcer
from kumo.core.web import auth_context, json_response
from kumo.network.api.resource import to_int, trim
from kumo.network.errors import BadRequest, NotFound

ACTION = "get_network_ip_availability"
FILTERS = ("network_id", "network_name", "project_id", "tenant_id", "ip_version")


async def _allowed(request: Request) -> bool:
    ctx = await auth_context(request)
    enforcer: Enforcer = request.app.state.policy
    return enforcer.check(ACTION, ctx.policy_creds(), {"target": {"project_id": ctx.project_id}})


async def list_availabilities(request: Request) -> Response:
    params = request.query_params
    for key in params.keys():
        if key != "fields" and key not in FILTERS:
            raise BadRequest(f"[{key!r}] is invalid attribute for filtering")
    if not await _allowed(request):
        return json_response({"network_ip_availabilities": []})
    versions = [to_int(v) for v in params.getlist("ip_version")]  # InvalidInput (400) for a non-number
    found = await request.app.state.neutron.ip_availability.list(
        network_ids=params.getlist("network_id"), names=params.getlist("network_name"),
        project_ids=[*params.getlist("project_id"), *params.getlist("tenant_id")], ip_versions=versions)
    fields = [f for f in params.getlist("fields") if f]
    return json_response({"network_ip_availabilities": [trim(item, fields) for item in found]})


async def show_availability(request: Request) -> Response:
    network_id = request.path_params["network_id"]
    found = await request.app.state.neutron.ip_availability.list(network_ids=[network_id]) \
        if await _allowed(request) else []
    if not found:
        raise NotFound("Network", network_id)
    fields = [f for f in request.query_params.getlist("fields") if f]
    return json_response({"network_ip_availability": trim(found[0], fields)})


routes = [Route("/v2.0/network-ip-availabilities", list_availabilities, methods=["GET"]),
          Route("/v2.0/network-ip-availabilities/{network_id}", show_availability, methods=["GET"])]
