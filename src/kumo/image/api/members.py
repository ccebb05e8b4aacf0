"""``/v2/images/{id}/members``: share an image with other projects."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core import errors
from kumo.core.web import empty_response, json_response, read_json
from kumo.image.api.common import MAX_BODY, authorize, members
from kumo.image.api.views import member_view


async def _field(request: Request, name: str) -> str:
    body = await read_json(request, MAX_BODY)
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise errors.BadRequest(f"The request body must be {{\"{name}\": \"...\"}}.")
    return value


async def add_member(request: Request) -> Response:
    member_id = await _field(request, "member")
    ctx = await authorize(request, "image:add_member")
    member = await members(request).add(ctx, request.path_params["image_id"], member_id)
    return json_response(member_view(member))


async def list_members(request: Request) -> Response:
    ctx = await authorize(request, "image:get_members")
    found = await members(request).list(ctx, request.path_params["image_id"])
    return json_response({"members": [member_view(m) for m in found], "schema": "/v2/schemas/members"})


async def show_member(request: Request) -> Response:
    ctx = await authorize(request, "image:get_member")
    member = await members(request).get(ctx, request.path_params["image_id"], request.path_params["member_id"])
    return json_response(member_view(member))


async def update_member(request: Request) -> Response:
    status = await _field(request, "status")
    ctx = await authorize(request, "image:modify_member")
    member = await members(request).set_status(ctx, request.path_params["image_id"], request.path_params["member_id"],
                                               status)
    return json_response(member_view(member))


async def delete_member(request: Request) -> Response:
    ctx = await authorize(request, "image:delete_member")
    await members(request).remove(ctx, request.path_params["image_id"], request.path_params["member_id"])
    return empty_response(204)


routes = [
    Route("/v2/images/{image_id}/members", add_member, methods=["POST"]),
    Route("/v2/images/{image_id}/members", list_members, methods=["GET"]),
    Route("/v2/images/{image_id}/members/{member_id}", show_member, methods=["GET"]),
    Route("/v2/images/{image_id}/members/{member_id}", update_member, methods=["PUT"]),
    Route("/v2/images/{image_id}/members/{member_id}", delete_member, methods=["DELETE"]),
]
