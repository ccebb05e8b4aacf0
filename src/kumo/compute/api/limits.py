"""``GET /v2.1/limits``: Nova's ``LimitsController`` and ``views/limits.py``.

Absolute limits are the project's quotas under Nova's names
(``maxTotalInstances`` ...) plus what is used (``totalInstancesUsed`` ...);
``rate`` is always empty. ``?tenant_id=`` shows another project's limits
(policy ``limits:other_project``: admins).

* 2.36: the network limits (floating IPs, security groups and rules) go.
* 2.39: ``maxImageMeta`` goes.
* 2.57: ``maxPersonality`` and ``maxPersonalitySize`` go.
* 2.75: unknown query parameters are a 400.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import at_least, authorize, check_query, deps
from kumo.compute.quota_sets import QuotaSets
from kumo.core.web import json_response

POLICY = "os_compute_api:limits"
OTHER_PROJECT = "os_compute_api:limits:other_project"

LIMIT_NAMES: dict[str, tuple[str, ...]] = {
    "ram": ("maxTotalRAMSize",),
    "instances": ("maxTotalInstances",),
    "cores": ("maxTotalCores",),
    "key_pairs": ("maxTotalKeypairs",),
    "floating_ips": ("maxTotalFloatingIps",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"),
    "injected_files": ("maxPersonality",),
    "injected_file_content_bytes": ("maxPersonalitySize",),
    "security_groups": ("maxSecurityGroups",),
    "security_group_rules": ("maxSecurityGroupRules",),
    "server_groups": ("maxServerGroups",),
    "server_group_members": ("maxServerGroupMembers",),
}
USED_NAMES: dict[str, str] = {
    "totalRAMUsed": "ram",
    "totalCoresUsed": "cores",
    "totalInstancesUsed": "instances",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
    "totalServerGroupsUsed": "server_groups",
}
FILTERED_V236 = frozenset(("floating_ips", "security_groups", "security_group_rules"))
FILTERED_V257 = FILTERED_V236 | {"injected_files", "injected_file_content_bytes"}


def absolute_limits(request: Request, limits: dict[str, int], usage: dict[str, int]) -> dict[str, Any]:
    """Nova's ``ViewBuilder.build`` for the request's microversion."""
    hidden = FILTERED_V257 if at_least(request, "2.57") else FILTERED_V236 if at_least(request, "2.36") \
        else frozenset()
    image_meta = not at_least(request, "2.39")
    absolute: dict[str, Any] = {}
    for resource, names in LIMIT_NAMES.items():
        if resource in hidden:
            continue
        for name in names:
            if name != "maxImageMeta" or image_meta:
                absolute[name] = limits[resource]
    absolute.update({name: usage[resource] for name, resource in USED_NAMES.items() if resource not in hidden})
    return absolute


async def show_limits(request: Request) -> Response:
    ctx = await authorize(request, POLICY, {})
    check_query(request, {"tenant_id"})
    project_id = ctx.project_id
    if "tenant_id" in request.query_params:
        await authorize(request, OTHER_PROJECT)
        project_id = request.query_params["tenant_id"]
    detail = await QuotaSets(deps(request).db).detail(project_id or "")
    limits = {resource: values["limit"] for resource, values in detail.items()}
    usage = {resource: values["in_use"] for resource, values in detail.items()}
    return json_response({"limits": {"rate": [], "absolute": absolute_limits(request, limits, usage)}})


routes = [Route("/v2.1/limits", show_limits, methods=["GET"])]
