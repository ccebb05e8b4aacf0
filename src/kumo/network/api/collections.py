"""Networks, subnets, ports, security groups and rules: their collections wired to their services."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import json_response
from kumo.network.api.common import authorize, body, neutron
from kumo.network.api.crud import DEADLOCK_RETRIES, retry_deadlocks
from kumo.network.errors import BadRequest

from kumo.network.api import attrs
from kumo.network.api.crud import Collection, routes as crud_routes
from kumo.network.api.resource import Resource
from kumo.network.service import Neutron

def standard(resource: Resource, path: str, service: str) -> Collection:
    """A collection whose service has Neutron's five methods (``list``, ``get``, ``create``, ``update``, ``delete``)."""

    def of(n: Neutron) -> Any:
        return getattr(n, service)

    return Collection(resource, path, list=lambda n, who, f: of(n).list(who, f),
                      get=lambda n, who, i: of(n).get(who, i),
                      create=lambda n, who, v: of(n).create(who, v),
                      update=lambda n, who, i, v: of(n).update(who, i, v),
                      delete=lambda n, who, i: of(n).delete(who, i))


COLLECTIONS = [
    standard(attrs.NETWORK, "/v2.0/networks", "networks"),
    standard(attrs.SUBNET, "/v2.0/subnets", "subnets"),
    standard(attrs.SUBNETPOOL, "/v2.0/subnetpools", "subnetpools"),
    standard(attrs.PORT, "/v2.0/ports", "ports"),
    standard(attrs.SECURITY_GROUP, "/v2.0/security-groups", "security_groups"),
    standard(attrs.ROUTER, "/v2.0/routers", "routers"),
    standard(attrs.FLOATINGIP, "/v2.0/floatingips", "floating_ips"),
    Collection(attrs.SECURITY_GROUP_RULE, "/v2.0/security-group-rules",  # rules cannot be updated (Neutron)
               list=lambda n, who, f: n.security_groups.list_rules(who, f),
               get=lambda n, who, i: n.security_groups.get_rule(who, i),
               create=lambda n, who, v: n.security_groups.create_rule(who, v),
               delete=lambda n, who, i: n.security_groups.delete_rule(who, i)),
]

#: Neutron's pecan router also answers the underscore spellings of the dashed collections.
ALIASES = {"/v2.0/security-groups": "/v2.0/security_groups", "/v2.0/security-group-rules": "/v2.0/security_group_rules"}

async def _router_interface(request: Request, add: bool) -> Response:
    """``PUT /v2.0/routers/{id}/add_router_interface`` (and remove): a bare body in, a bare body out."""
    who = await authorize(request, "add_router_interface" if add else "remove_router_interface")
    data = await body(request)
    if not isinstance(data, dict):
        raise BadRequest("Body contains invalid data")
    routers = neutron(request).routers
    act = routers.add_interface if add else routers.remove_interface
    return json_response(await retry_deadlocks(lambda: act(who, request.path_params["id"], data),
                                               attempts=DEADLOCK_RETRIES))


async def add_router_interface(request: Request) -> Response:
    return await _router_interface(request, True)


async def remove_router_interface(request: Request) -> Response:
    return await _router_interface(request, False)


routes: list[Route] = [
    Route("/v2.0/routers/{id}/add_router_interface", add_router_interface, methods=["PUT"]),
    Route("/v2.0/routers/{id}/remove_router_interface", remove_router_interface, methods=["PUT"]),
]
for _collection in COLLECTIONS:
    routes += crud_routes(_collection)
    if _collection.path in ALIASES:
        routes += crud_routes(replace(_collection, path=ALIASES[_collection.path]))
