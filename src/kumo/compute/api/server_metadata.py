"""``/v2.1/servers/{id}/metadata``: Nova's ``ServerMetadataController``.

Reads need the server to be visible (404) and ``server-metadata:index/show``;
writes also obey the lock (409 unless admin), the state table
(``update metadata`` / ``delete metadata``) and the ``metadata_items`` quota
(403). ``PUT .../metadata/{key}`` takes exactly one item, named as in the URL.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import authorize, request_context
from kumo.compute.api.server_schemas import MetadataBody, MetaItemBody
from kumo.compute.api.servers import service
from kumo.compute.api.validation import parse_body
from kumo.compute.server_query import ServerRecord
from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.web import auth_context, empty_response, json_response

POLICY = "os_compute_api:server-metadata:%s"


async def _server(request: Request, action: str) -> tuple[AuthContext, ServerRecord]:
    ctx = await auth_context(request)
    rec = await service(request).get(request_context(request, ctx), request.path_params["server_id"])
    await authorize(request, POLICY % action, {"project_id": rec.project_id})
    return ctx, rec


async def list_metadata(request: Request) -> Response:
    _ctx, rec = await _server(request, "index")
    return json_response({"metadata": rec.metadata})


async def show_metadata(request: Request) -> Response:
    _ctx, rec = await _server(request, "show")
    key = request.path_params["key"]
    if key not in rec.metadata:
        raise errors.NotFound("Metadata item was not found")
    return json_response({"meta": {key: rec.metadata[key]}})


async def _write(request: Request, action: str, replace: bool) -> Response:
    ctx, rec = await _server(request, action)
    body = await parse_body(request, MetadataBody)
    merged = await service(request).update_metadata(request_context(request, ctx), rec.uuid, body.metadata,
                                                    replace=replace)
    return json_response({"metadata": merged})


async def create_metadata(request: Request) -> Response:
    """``POST``: merge the given items into the server's metadata."""
    return await _write(request, "create", replace=False)


async def replace_metadata(request: Request) -> Response:
    """``PUT``: the given items become the whole metadata."""
    return await _write(request, "update_all", replace=True)


async def update_metadata_item(request: Request) -> Response:
    ctx, rec = await _server(request, "update")
    meta = (await parse_body(request, MetaItemBody)).meta
    if request.path_params["key"] not in meta:
        raise errors.BadRequest("Request body and URI mismatch")
    await service(request).update_metadata(request_context(request, ctx), rec.uuid, meta)
    return json_response({"meta": meta})


async def delete_metadata_item(request: Request) -> Response:
    ctx, rec = await _server(request, "delete")
    await service(request).delete_metadata(request_context(request, ctx), rec.uuid, request.path_params["key"])
    return empty_response(204)


routes = [
    Route("/v2.1/servers/{server_id}/metadata", list_metadata, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/metadata", create_metadata, methods=["POST"]),
    Route("/v2.1/servers/{server_id}/metadata", replace_metadata, methods=["PUT"]),
    Route("/v2.1/servers/{server_id}/metadata/{key}", show_metadata, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/metadata/{key}", update_metadata_item, methods=["PUT"]),
    Route("/v2.1/servers/{server_id}/metadata/{key}", delete_metadata_item, methods=["DELETE"]),
]
