"""``/v2.0/<collection>/{id}/tags[/{tag}]``: Neutron's tag API on networks, subnets, ports, security groups."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import empty_response, json_response
from kumo.network.api.common import authorize, body, neutron
from kumo.network.common import Caller
from kumo.network.errors import BadRequest, NotFound, PolicyNotAuthorized
from kumo.network.service import Neutron
from kumo.network.tags import check_tags

Getter = Callable[[Neutron, Caller, str], Awaitable[dict[str, Any]]]

TAGGED: dict[str, tuple[str, Getter]] = {
    "networks": ("network", lambda n, who, i: n.networks.get(who, i)),
    "subnets": ("subnet", lambda n, who, i: n.subnets.get(who, i)),
    "subnetpools": ("subnetpool", lambda n, who, i: n.subnetpools.get(who, i)),
    "ports": ("port", lambda n, who, i: n.ports.get(who, i)),
    "security-groups": ("security_group", lambda n, who, i: n.security_groups.get(who, i)),
    "routers": ("router", lambda n, who, i: n.routers.get(who, i)),
    "floatingips": ("floatingip", lambda n, who, i: n.floating_ips.get(who, i)),
}


def _tag_routes(collection: str, name: str, get: Getter) -> list[Route]:
    base = f"/v2.0/{collection}/{{id}}/tags"

    async def target(request: Request, change: bool) -> str:
        who = await authorize(request, f"get_{name}" if not change else f"update_{name}")
        item = await get(neutron(request), who, request.path_params["id"])
        if change and not who.owns(item["project_id"]):
            raise PolicyNotAuthorized(f"rule:update_{name}")
        return str(item["id"])

    async def tag_list(request: Request) -> list[str]:
        data = await body(request)
        if not isinstance(data, dict) or not isinstance(data.get("tags"), list):
            raise BadRequest("Invalid tags body")
        return check_tags(data["tags"], name)

    async def show_all(request: Request) -> Response:
        rid = await target(request, False)
        return json_response({"tags": await neutron(request).tags.get_all(collection, rid)})

    async def replace_all(request: Request) -> Response:
        rid = await target(request, True)
        tags = await tag_list(request)
        return json_response({"tags": await neutron(request).tags.replace(collection, rid, tags)})

    async def add_some(request: Request) -> Response:
        rid = await target(request, True)
        tags = await tag_list(request)
        return json_response({"tags": await neutron(request).tags.add(collection, rid, tags, name)}, status=201)

    async def delete_all(request: Request) -> Response:
        rid = await target(request, True)
        await neutron(request).tags.replace(collection, rid, [])
        return empty_response(204)

    async def check_one(request: Request) -> Response:
        rid = await target(request, False)
        tag = request.path_params["tag"]
        if not await neutron(request).tags.has(collection, rid, tag):
            raise NotFound("Tag", tag)
        return empty_response(204)

    async def add_one(request: Request) -> Response:
        rid = await target(request, True)
        await neutron(request).tags.add(collection, rid, check_tags([request.path_params["tag"]], name), name)
        return empty_response(201)

    async def delete_one(request: Request) -> Response:
        rid = await target(request, True)
        await neutron(request).tags.remove(collection, rid, request.path_params["tag"])
        return empty_response(204)

    return [Route(base, show_all, methods=["GET"]), Route(base, replace_all, methods=["PUT"]),
            Route(base, add_some, methods=["POST"]), Route(base, delete_all, methods=["DELETE"]),
            Route(base + "/{tag}", check_one, methods=["GET"]), Route(base + "/{tag}", add_one, methods=["PUT"]),
            Route(base + "/{tag}", delete_one, methods=["DELETE"])]


routes: list[Route] = [r for collection, (name, get) in TAGGED.items() for r in _tag_routes(collection, name, get)]
