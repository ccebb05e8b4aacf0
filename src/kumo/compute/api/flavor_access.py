"""``/v2.1/flavors/{id}/os-flavor-access`` and the ``addTenantAccess`` / ``removeTenantAccess`` actions.

As Nova's ``FlavorAccessController``: admin only; the access list of a
public flavor is a 404; from 2.7 adding access to a public flavor is a 409;
a project that identity does not know is a 400 on add (ignored on remove).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api import views
from kumo.compute.api.common import MAX_BODY, at_least, authorize, flavors
from kumo.compute.api.schemas import AddTenantAccessBody, RemoveTenantAccessBody
from kumo.compute.api.validation import parse
from kumo.core import errors
from kumo.core.web import json_response, read_json

POLICY = "os_compute_api:os-flavor-access"

ProjectCheck = Callable[[str], Awaitable[bool]]


async def list_access(request: Request) -> Response:
    ctx = await authorize(request, POLICY)
    flavorid = request.path_params["flavor_id"]
    return json_response(views.flavor_access(flavorid, await flavors(request).access_list(ctx, flavorid)))


async def _project_exists(request: Request, project_id: str) -> bool:
    """Nova's ``identity.verify_project_id``; without an identity check every project is taken as valid."""
    check: ProjectCheck | None = request.app.state.project_exists
    return True if check is None else await check(project_id)


async def flavor_action(request: Request) -> Response:
    """``POST /flavors/{id}/action``: the body's single key names the action."""
    body: Any = await read_json(request, MAX_BODY)
    if not isinstance(body, dict) or len(body) != 1:
        raise errors.BadRequest("Malformed request body")
    action = next(iter(body))
    flavorid = request.path_params["flavor_id"]
    if action == "addTenantAccess":
        ctx = await authorize(request, f"{POLICY}:add_tenant_access", {})
        tenant = parse(AddTenantAccessBody, body).add.tenant
        if not await _project_exists(request, tenant):
            raise errors.BadRequest(f"Project ID {tenant} is not a valid project.")
        projects = await flavors(request).add_access(ctx, flavorid, tenant, refuse_public=at_least(request, "2.7"))
    elif action == "removeTenantAccess":
        ctx = await authorize(request, f"{POLICY}:remove_tenant_access", {})
        tenant = parse(RemoveTenantAccessBody, body).remove.tenant
        projects = await flavors(request).remove_access(ctx, flavorid, tenant)
    else:
        raise errors.BadRequest(f"There is no such action: {action}")
    return json_response(views.flavor_access(flavorid, projects))


routes = [
    Route("/v2.1/flavors/{flavor_id}/os-flavor-access", list_access, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}/action", flavor_action, methods=["POST"]),
]
