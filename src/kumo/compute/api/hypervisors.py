"""``/v2.1/os-hypervisors``: Nova's ``HypervisorsController`` across microversions.

* 2.28: ``cpu_info`` is an object (a JSON string below).
* 2.33: ``limit``/``marker`` paging with ``hypervisors_links``.
* 2.53: ids are uuids (node and service); ``hypervisor_hostname_pattern`` and
  ``with_servers`` replace ``/{pattern}/search`` and ``/{pattern}/servers``
  (gone, 404); unknown query parameters are a 400.
* 2.75: ``servers`` is ``[]`` when asked for and there are none.
* 2.88: no inventory/usage fields, ``uptime`` in the detail views, and
  ``/statistics`` and ``/{id}/uptime`` are gone (404).

Kumo's agents do not report host uptime yet: ``uptime`` is null, and
``/{id}/uptime`` is Nova's 501 for a driver without it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import at_least, authorize, check_query, collection_links, deps, page_limit
from kumo.compute.api.validation import FALSE_STRINGS, TRUE_STRINGS
from kumo.compute.compute_nodes import ComputeNodes, Hypervisor, NodeQuery, not_found
from kumo.compute.host_services import is_uuid_like
from kumo.core import errors
from kumo.core.web import json_response

POLICY = "os_compute_api:os-hypervisors:%s"
LIST_PARAMS = {"limit", "marker", "hypervisor_hostname_pattern", "with_servers"}
INVENTORY_FIELDS = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used")


def _nodes(request: Request) -> ComputeNodes:
    d = deps(request)
    return ComputeNodes(d.db, d.service_down_time, d.options.default_availability_zone)


def _with_servers(request: Request) -> bool:
    """``with_servers`` (2.53+): Nova's strict boolean query parameter."""
    values = request.query_params.getlist("with_servers") if at_least(request, "2.53") else []
    if not values:
        return False
    value = values[-1]
    if value not in TRUE_STRINGS + FALSE_STRINGS:
        choices = ", ".join(["True", *map(repr, TRUE_STRINGS), "False", *map(repr, FALSE_STRINGS)])
        raise errors.BadRequest(f"Invalid input for query parameters with_servers. Value: {value}. "
                                f"'{value}' is not one of [{choices}]")
    return value in TRUE_STRINGS


def _pattern(request: Request) -> str | None:
    """``hypervisor_hostname_pattern`` (2.53+): Nova's ``fqdn`` type."""
    values = request.query_params.getlist("hypervisor_hostname_pattern") if at_least(request, "2.53") else []
    if not values:
        return None
    value = values[-1]
    if not value or len(value) > 255 or not all(c.isascii() and (c.isalnum() or c in "-._") for c in value):
        raise errors.BadRequest(f"Invalid input for query parameters hypervisor_hostname_pattern. Value: {value}. "
                                f"'{value}' does not match '^[a-zA-Z0-9-._]*$'")
    return value


def hypervisor_view(request: Request, hyp: Hypervisor, detail: bool, with_servers: bool = False) -> dict[str, Any]:
    """Nova's ``_view_hypervisor`` for the request's microversion."""
    node, service = hyp.node, hyp.service
    v253 = at_least(request, "2.53")
    view: dict[str, Any] = {"id": node.uuid if v253 else node.id, "hypervisor_hostname": node.hypervisor_hostname,
                            "state": "up" if service.up else "down",
                            "status": "disabled" if service.disabled else "enabled"}
    if detail:
        view.update(hypervisor_type=node.hypervisor_type, hypervisor_version=node.hypervisor_version,
                    host_ip=node.host_ip,
                    service={"id": service.uuid if v253 else service.legacy_id, "host": node.host,
                             "disabled_reason": service.disabled_reason})
        if not at_least(request, "2.88"):
            view.update({field: getattr(node, field) for field in INVENTORY_FIELDS})
            view.update(free_ram_mb=node.memory_mb - node.memory_mb_used,
                        free_disk_gb=node.local_gb - node.local_gb_used,
                        current_workload=hyp.current_workload, running_vms=node.running_vms,
                        disk_available_least=node.disk_available_least)
            cpu_info = node.cpu_info or {}
            view["cpu_info"] = cpu_info if at_least(request, "2.28") else json.dumps(cpu_info)
        else:
            view["uptime"] = None
    if hyp.servers:
        view["servers"] = [{"name": name, "uuid": server_uuid} for name, server_uuid in hyp.servers]
    elif with_servers and at_least(request, "2.75"):
        view["servers"] = []
    return view


async def _list(request: Request, detail: bool) -> Response:
    await authorize(request, POLICY % ("list-detail" if detail else "list"), {})
    check_query(request, LIST_PARAMS, strict_from="2.53")
    paged = at_least(request, "2.33")
    limit, marker = page_limit(request) if paged else (None, None)
    pattern, with_servers = _pattern(request), _with_servers(request)
    if pattern is not None and ("limit" in request.query_params or marker):
        raise errors.BadRequest("Paging over hypervisors with the hypervisor_hostname_pattern query parameter "
                                "is not supported.")
    query = NodeQuery(limit=limit, marker=marker, by_uuid=at_least(request, "2.53"), pattern=pattern,
                      with_servers=with_servers)
    found = await _nodes(request).list(query)
    items = [hypervisor_view(request, h, detail, with_servers) for h in found]
    body: dict[str, Any] = {"hypervisors": items}
    if paged and pattern is None and limit is not None:
        next_links = collection_links(request, items, "os-hypervisors/detail" if detail else "os-hypervisors",
                                      "id", limit)
        if next_links:
            body["hypervisors_links"] = next_links
    return json_response(body)


async def list_hypervisors(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_hypervisors_detail(request: Request) -> Response:
    return await _list(request, detail=True)


def _node_id(request: Request) -> str:
    """Nova's ``_validate_id``: a uuid from 2.53 (400), an integer below (404)."""
    node_id: str = request.path_params["hypervisor_id"]
    if at_least(request, "2.53"):
        if not is_uuid_like(node_id):
            raise errors.BadRequest(f"Invalid uuid {node_id}")
        return str(uuid.UUID(node_id))
    if not node_id.strip().lstrip("-").isdigit():
        raise not_found(node_id)
    return str(int(node_id))


async def show_hypervisor(request: Request) -> Response:
    await authorize(request, POLICY % "show", {})
    check_query(request, {"with_servers"}, strict_from="2.53")
    with_servers = _with_servers(request)
    node_id = _node_id(request)
    try:
        found = await _nodes(request).get(node_id, by_uuid=at_least(request, "2.53"), with_servers=with_servers)
    except errors.NotFound:
        raise not_found(request.path_params["hypervisor_id"]) from None
    return json_response({"hypervisor": hypervisor_view(request, found, True, with_servers)})


async def hypervisor_uptime(request: Request) -> Response:
    """Below 2.88: the host's ``uptime`` output. No Kumo agent reports it yet: Nova's 501."""
    if at_least(request, "2.88"):
        raise errors.NotFound("The resource could not be found.")
    await authorize(request, POLICY % "uptime", {})
    node_id = _node_id(request)
    try:
        await _nodes(request).get(node_id, by_uuid=at_least(request, "2.53"))
    except errors.NotFound:
        raise not_found(request.path_params["hypervisor_id"]) from None
    raise errors.NotImplementedYet("The requested functionality is not supported.")


async def hypervisor_statistics(request: Request) -> Response:
    """Below 2.88: sums over the hypervisors of enabled compute services."""
    if at_least(request, "2.88"):
        raise errors.NotFound("The resource could not be found.")
    await authorize(request, POLICY % "statistics", {})
    return json_response({"hypervisor_statistics": await _nodes(request).statistics()})


async def _by_pattern(request: Request, action: str) -> Response:
    """Below 2.53: ``/{pattern}/search`` and ``/{pattern}/servers`` (404 when nothing matches)."""
    if at_least(request, "2.53"):
        raise errors.NotFound("The resource could not be found.")
    await authorize(request, POLICY % action, {})
    servers = action == "servers"
    found = await _nodes(request).list(NodeQuery(pattern=request.path_params["pattern"], with_servers=servers))
    return json_response({"hypervisors": [hypervisor_view(request, h, False) for h in found]})


async def search_hypervisors(request: Request) -> Response:
    return await _by_pattern(request, "search")


async def hypervisor_servers(request: Request) -> Response:
    return await _by_pattern(request, "servers")


routes = [
    Route("/v2.1/os-hypervisors", list_hypervisors, methods=["GET"]),
    Route("/v2.1/os-hypervisors/detail", list_hypervisors_detail, methods=["GET"]),
    Route("/v2.1/os-hypervisors/statistics", hypervisor_statistics, methods=["GET"]),
    Route("/v2.1/os-hypervisors/{hypervisor_id}", show_hypervisor, methods=["GET"]),
    Route("/v2.1/os-hypervisors/{hypervisor_id}/uptime", hypervisor_uptime, methods=["GET"]),
    Route("/v2.1/os-hypervisors/{pattern}/search", search_hypervisors, methods=["GET"]),
    Route("/v2.1/os-hypervisors/{pattern}/servers", hypervisor_servers, methods=["GET"]),
]
