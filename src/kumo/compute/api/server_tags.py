"""``/v2.1/servers/{id}/tags`` (2.26+): Nova's ``ServerTagsController``.

Below 2.26 every route is a 404. Changes need the server in ACTIVE,
PAUSED, SUSPENDED or STOPPED (409 ``Cannot 'update tag' instance ...``); a
server holds at most 50 tags of 1-60 characters without ``/`` or ``,``.
Adding a tag answers 201 with its ``Location``, or 204 when it was there.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import api_root, authorize, request_context, require_version
from kumo.compute.api.server_schemas import TagsBody, tag_error
from kumo.compute.api.servers import service
from kumo.compute.api.validation import parse_body
from kumo.compute.server_query import ServerRecord
from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.web import auth_context, empty_response, json_response

POLICY = "os_compute_api:os-server-tags:%s"


async def _server(request: Request, action: str) -> tuple[AuthContext, ServerRecord]:
    require_version(request, "2.26")
    ctx = await auth_context(request)
    rec = await service(request).get(request_context(request, ctx), request.path_params["server_id"])
    await authorize(request, POLICY % action, {"project_id": rec.project_id})
    return ctx, rec


async def list_tags(request: Request) -> Response:
    _ctx, rec = await _server(request, "index")
    return json_response({"tags": rec.tags})


async def check_tag(request: Request) -> Response:
    _ctx, rec = await _server(request, "show")
    tag = request.path_params["tag"]
    if tag not in rec.tags:
        raise errors.NotFound(f"Server {rec.uuid} has no tag '{tag}'")
    return empty_response(204)


async def add_tag(request: Request) -> Response:
    ctx, rec = await _server(request, "update")
    tag = request.path_params["tag"]
    created = await service(request).add_tag(request_context(request, ctx), rec.uuid, tag, tag_error(tag))
    if not created:
        return empty_response(204)
    location = f"{api_root(request)}/v2.1/servers/{rec.uuid}/tags/{quote(tag, safe='')}"
    return empty_response(201, headers={"Location": location})


async def replace_tags(request: Request) -> Response:
    ctx, rec = await _server(request, "update_all")
    body = await parse_body(request, TagsBody)
    tags = await service(request).set_tags(request_context(request, ctx), rec.uuid, body.tags)
    return json_response({"tags": tags})


async def delete_tag(request: Request) -> Response:
    ctx, rec = await _server(request, "delete")
    await service(request).delete_tag(request_context(request, ctx), rec.uuid, request.path_params["tag"])
    return empty_response(204)


async def delete_tags(request: Request) -> Response:
    ctx, rec = await _server(request, "delete_all")
    await service(request).delete_tags(request_context(request, ctx), rec.uuid)
    return empty_response(204)


routes = [
    Route("/v2.1/servers/{server_id}/tags", list_tags, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/tags", replace_tags, methods=["PUT"]),
    Route("/v2.1/servers/{server_id}/tags", delete_tags, methods=["DELETE"]),
    Route("/v2.1/servers/{server_id}/tags/{tag}", check_tag, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/tags/{tag}", add_tag, methods=["PUT"]),
    Route("/v2.1/servers/{server_id}/tags/{tag}", delete_tag, methods=["DELETE"]),
]
