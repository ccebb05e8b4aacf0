"""``/v2.0/quotas``: Neutron's quota API (show, defaults, details, update, reset; the admin's list)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import auth_context, empty_response, json_response
from kumo.network.api.common import authorize, body, neutron
from kumo.network.errors import BadRequest


async def _target(request: Request, action: str) -> str:
    project = request.path_params["project_id"]
    await authorize(request, action, {"project_id": project})
    return str(project)


async def list_quotas(request: Request) -> Response:
    await authorize(request, "get_quota:all", {})
    found = await neutron(request).quotas.projects_with_quotas()
    return json_response({"quotas": [{**limits, "project_id": p, "tenant_id": p} for p, limits in found.items()]})


async def own_project(request: Request) -> Response:
    ctx = await auth_context(request)
    return json_response({"project": {"project_id": ctx.project_id}})


async def show(request: Request) -> Response:
    project = await _target(request, "get_quota")
    return json_response({"quota": await neutron(request).quotas.show(project)})


async def defaults(request: Request) -> Response:
    await _target(request, "get_quota")
    return json_response({"quota": neutron(request).quotas.defaults()})


async def details(request: Request) -> Response:
    project = await _target(request, "get_quota")
    return json_response({"quota": await neutron(request).quotas.details(project)})


async def update(request: Request) -> Response:
    project = await _target(request, "update_quota")
    data = await body(request)
    if not isinstance(data, dict) or not isinstance(data.get("quota"), dict):
        raise BadRequest("Unable to find 'quota' in request body")
    values = {k: v for k, v in data["quota"].items() if k not in ("force", "check_limit")}
    return json_response({"quota": await neutron(request).quotas.update(project, values)})


async def reset(request: Request) -> Response:
    project = await _target(request, "delete_quota")
    await neutron(request).quotas.reset(project)
    return empty_response(204)


routes = [
    Route("/v2.0/quotas", list_quotas, methods=["GET"]),
    Route("/v2.0/quotas/project", own_project, methods=["GET"]),
    Route("/v2.0/quotas/{project_id}", show, methods=["GET"]),
    Route("/v2.0/quotas/{project_id}", update, methods=["PUT"]),
    Route("/v2.0/quotas/{project_id}", reset, methods=["DELETE"]),
    Route("/v2.0/quotas/{project_id}/default", defaults, methods=["GET"]),
    Route("/v2.0/quotas/{project_id}/details", details, methods=["GET"]),
    Route("/v2.0/quotas/{project_id}/details.json", details, methods=["GET"]),
]
