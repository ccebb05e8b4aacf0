"""``/v2.1/os-simple-tenant-usage``: Nova's ``SimpleTenantUsageController``.

* ``GET /os-simple-tenant-usage`` (admin): every project's totals over
  ``?start=&end=`` (default: now; the end is capped at now), with each
  server's usage when ``detailed=1``.
* ``GET /os-simple-tenant-usage/{tenant_id}`` (readers of that project):
  one project's totals and server usages; ``{}`` when it used nothing.
* 2.40: ``limit``/``marker`` (an instance uuid) page over instances, with
  ``tenant_usages_links`` / ``tenant_usage_links``.
* 2.75: unknown query parameters are a 400.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import MAX_LIMIT, at_least, authorize, check_query, collection_links, deps, page_limit
from kumo.compute.api.views import nova_time
from kumo.compute.usage import ServerUsage, TenantUsage, UsageQuery, UsageReports
from kumo.core import errors
from kumo.core.db import utcnow
from kumo.core.web import json_response

POLICY = "os_compute_api:os-simple-tenant-usage:%s"
COLLECTION = "os-simple-tenant-usage"
TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _first(request: Request, name: str) -> str | None:
    """Nova reads these with ``parse_qs(...)[0]``: the first value."""
    values = request.query_params.getlist(name)
    return values[0] if values else None


def parse_time(text: str | None) -> dt.datetime:
    """Nova's ``_parse_datetime``: three formats, UTC; empty is now."""
    if not text:
        return utcnow()
    for fmt in TIME_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise errors.BadRequest("Invalid datetime string: Datetime is in invalid format")


def _query(request: Request, project_id: str | None, detailed: bool) -> tuple[UsageQuery, int]:
    start, stop = parse_time(_first(request, "start")), parse_time(_first(request, "end"))
    if not start < stop:
        raise errors.BadRequest("Invalid start time. The start time cannot occur after the end time.")
    stop = min(stop, utcnow())
    limit, marker = page_limit(request) if at_least(request, "2.40") else (MAX_LIMIT, None)
    link_limit = limit if at_least(request, "2.40") and "limit" in request.query_params else 0
    return UsageQuery(start=start, stop=stop, project_id=project_id, detailed=detailed, limit=limit,
                      marker=marker), link_limit


def server_usage_view(usage: ServerUsage) -> dict[str, Any]:
    view = dataclasses.asdict(usage)
    view["started_at"] = nova_time(usage.started_at)
    view["ended_at"] = nova_time(usage.ended_at)
    return view


def tenant_usage_view(usage: TenantUsage) -> dict[str, Any]:
    view: dict[str, Any] = {"tenant_id": usage.tenant_id, "start": nova_time(usage.start),
                            "stop": nova_time(usage.stop), "total_hours": usage.total_hours,
                            "total_local_gb_usage": usage.total_local_gb_usage,
                            "total_memory_mb_usage": usage.total_memory_mb_usage,
                            "total_vcpus_usage": usage.total_vcpus_usage}
    if usage.server_usages is not None:
        view["server_usages"] = [server_usage_view(s) for s in usage.server_usages]
    return view


def _links(request: Request, servers: list[ServerUsage], collection: str, limit: int) -> list[dict[str, str]]:
    return collection_links(request, [{"instance_id": s.instance_id} for s in servers], collection, "instance_id",
                            limit)


async def list_usages(request: Request) -> Response:
    await authorize(request, POLICY % "list")
    check_query(request, {"start", "end", "detailed", "limit", "marker"})
    query, link_limit = _query(request, None, _first(request, "detailed") == "1")
    usages, servers = await UsageReports(deps(request).db).report(query)
    body: dict[str, Any] = {"tenant_usages": [tenant_usage_view(u) for u in usages]}
    next_links = _links(request, servers, COLLECTION, link_limit)
    if next_links:
        body["tenant_usages_links"] = next_links
    return json_response(body)


async def show_usage(request: Request) -> Response:
    tenant_id = request.path_params["tenant_id"]
    await authorize(request, POLICY % "show", {"project_id": tenant_id})
    check_query(request, {"start", "end", "limit", "marker"})
    query, link_limit = _query(request, tenant_id, True)
    usages, servers = await UsageReports(deps(request).db).report(query)
    body: dict[str, Any] = {"tenant_usage": tenant_usage_view(usages[0]) if usages else {}}
    next_links = _links(request, servers, f"{COLLECTION}/{tenant_id}", link_limit)
    if next_links:
        body["tenant_usage_links"] = next_links
    return json_response(body)


routes = [
    Route("/v2.1/os-simple-tenant-usage", list_usages, methods=["GET"]),
    Route("/v2.1/os-simple-tenant-usage/{tenant_id}", show_usage, methods=["GET"]),
]
