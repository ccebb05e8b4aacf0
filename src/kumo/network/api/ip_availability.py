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
from kumo.network.api.resource import Attr, Resource, parse_query, to_int, trim
from kumo.network.errors import NotFound

ACTION = "get_network_ip_availability"
#: What the list may be filtered on (Neutron's SUPPORTED_FILTERS); the other keys are the view's.
AVAILABILITY = Resource("network_ip_availability", "network_ip_availabilities", "Network", {
    **{k: Attr() for k in ("network_id", "network_name", "project_id", "tenant_id")},
    "ip_version": Attr(filter=to_int),
    **{k: Attr(filterable=False) for k in ("total_ips", "used_ips", "subnet_ip_availability")},
})


async def _allowed(request: Request) -> bool:
    ctx = await auth_context(request)
    enforcer: Enforcer = request.app.state.policy
    return enforcer.check(ACTION, ctx.policy_creds(), {"target": {"project_id": ctx.project_id}})


async def list_availabilities(request: Request) -> Response:
    query = parse_query(AVAILABILITY, request)  # 400 for unknown filters and a non-numeric ip_version
    if not await _allowed(request):
        return json_response({"network_ip_availabilities": []})
    f = query.filters
    found = await request.app.state.neutron.ip_availability.list(
        network_ids=f.get("network_id", []), names=f.get("network_name", []),
        project_ids=[*f.get("project_id", []), *f.get("tenant_id", [])], ip_versions=f.get("ip_version", []))
    return json_response({"network_ip_availabilities": [trim(item, query.fields) for item in found]})


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
