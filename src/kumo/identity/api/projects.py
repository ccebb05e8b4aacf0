"""``/v3/projects``: projects (with ``parent_id`` hierarchy and tags)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import empty_response, json_response, parse_body
from kumo.identity.api import schemas
from kumo.identity.api.common import MAX_BODY, authorize, collection, query_dict, service, with_links

ProjectCreateBody = schemas.wrap("project", schemas.ProjectCreate)
ProjectUpdateBody = schemas.wrap("project", schemas.ProjectUpdate)


def _one(request: Request, project: dict[str, object], status: int = 200) -> Response:
    return json_response({"project": with_links(request, "projects", project)}, status=status)


async def create_project(request: Request) -> Response:
    body = await parse_body(request, ProjectCreateBody, MAX_BODY)
    fields = body.project.fields()  # type: ignore[attr-defined]
    await authorize(request, "identity:create_project", {"project": fields})
    return _one(request, await service(request).projects.create(fields), 201)


async def list_projects(request: Request) -> Response:
    await authorize(request, "identity:list_projects")
    projects = await service(request).projects.list(query_dict(request))
    return json_response(collection(request, "projects", projects))


async def get_project(request: Request) -> Response:
    project_id = request.path_params["project_id"]
    await authorize(request, "identity:get_project", {"project": {"id": project_id}})
    return _one(request, await service(request).projects.get(project_id))


async def update_project(request: Request) -> Response:
    project_id = request.path_params["project_id"]
    body = await parse_body(request, ProjectUpdateBody, MAX_BODY)
    await authorize(request, "identity:update_project", {"project": {"id": project_id}})
    return _one(request, await service(request).projects.update(project_id, body.project.fields()))  # type: ignore[attr-defined]


async def delete_project(request: Request) -> Response:
    project_id = request.path_params["project_id"]
    await authorize(request, "identity:delete_project", {"project": {"id": project_id}})
    await service(request).projects.delete(project_id)
    return empty_response()


async def list_tags(request: Request) -> Response:
    project_id = request.path_params["project_id"]
    await authorize(request, "identity:list_project_tags", {"project": {"id": project_id}})
    project = await service(request).projects.get(project_id)
    return json_response({"tags": project["tags"]})


async def check_tag(request: Request) -> Response:
    project_id, tag = request.path_params["project_id"], request.path_params["tag"]
    await authorize(request, "identity:get_project_tag", {"project": {"id": project_id}})
    project = await service(request).projects.get(project_id)
    if tag not in project["tags"]:
        from kumo.core.errors import NotFound

        raise NotFound(f"Could not find tag: {tag}.")
    return empty_response(204)


async def add_tag(request: Request) -> Response:
    project_id, tag = request.path_params["project_id"], request.path_params["tag"]
    await authorize(request, "identity:create_project_tag", {"project": {"id": project_id}})
    project = await service(request).projects.get(project_id)
    if tag not in project["tags"]:
        await service(request).projects.update(project_id, {"tags": [*project["tags"], tag]})
    return empty_response(201)


async def delete_tag(request: Request) -> Response:
    project_id, tag = request.path_params["project_id"], request.path_params["tag"]
    await authorize(request, "identity:delete_project_tag", {"project": {"id": project_id}})
    project = await service(request).projects.get(project_id)
    await service(request).projects.update(project_id, {"tags": [t for t in project["tags"] if t != tag]})
    return empty_response(204)


routes = [
    Route("/v3/projects", create_project, methods=["POST"]),
    Route("/v3/projects", list_projects, methods=["GET"]),
    Route("/v3/projects/{project_id}", get_project, methods=["GET"]),
    Route("/v3/projects/{project_id}", update_project, methods=["PATCH"]),
    Route("/v3/projects/{project_id}", delete_project, methods=["DELETE"]),
    Route("/v3/projects/{project_id}/tags", list_tags, methods=["GET"]),
    Route("/v3/projects/{project_id}/tags/{tag}", check_tag, methods=["GET", "HEAD"]),
    Route("/v3/projects/{project_id}/tags/{tag}", add_tag, methods=["PUT"]),
    Route("/v3/projects/{project_id}/tags/{tag}", delete_tag, methods=["DELETE"]),
]
