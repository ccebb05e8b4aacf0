"""``/v2/images``: create, list, show, JSON-patch update, delete, (de)activate, tags."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core import errors
from kumo.core.pagination import next_link, parse_page, sort_params
from kumo.core.web import empty_response, json_response, read_json
from kumo.image.api.common import MAX_BODY, authorize, images
from kumo.image.api.views import image_view
from kumo.image.patch import READ_ONLY, RESERVED, apply_patch
from kumo.image.service import SORT_KEYS

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
LIST_VISIBILITIES = ("community", "public", "private", "shared", "all")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")


def _target(image: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"project_id": image.get("owner") if image else None}


async def create_image(request: Request) -> Response:
    body = await read_json(request, MAX_BODY)
    if not isinstance(body, dict):
        raise errors.BadRequest("Request body must be a JSON object describing the image.")
    for key in body:
        if key in RESERVED:
            raise errors.Forbidden(f"Attribute '{key}' is reserved.")
        if key in READ_ONLY and key != "id":  # a client may choose the id of a new image (Glance)
            raise errors.Forbidden(f"Attribute '{key}' is read-only.")
    ctx = await authorize(request, "image:add_image")
    image = await images(request).create(ctx, body)
    return json_response(image_view(image), status=201, headers={"Location": f"/v2/images/{image['id']}"})


async def list_images(request: Request) -> Response:
    ctx = await authorize(request, "image:get_images")
    query = request.query_params
    page = parse_page(query, max_limit=1000)
    sort = sort_params(query, SORT_KEYS, "created_at", "desc")
    if not any(key == "id" for key, _ in sort):
        sort.append(("id", sort[0][1]))
    filters: dict[str, list[str]] = {}
    for key, value in query.multi_items():
        filters.setdefault(key, []).append(value)
    visibility = filters.get("visibility", [""])[-1]
    if visibility and visibility not in LIST_VISIBILITIES:
        raise errors.BadRequest(f"Invalid visibility value: {visibility}")
    member_status = filters.get("member_status", ["accepted"])[-1]
    if member_status not in MEMBER_STATUSES:
        raise errors.BadRequest(f"Invalid status: {member_status}")
    if "changes-since" in filters:
        raise errors.BadRequest('The "changes-since" filter is no longer available on v2.')
    found = await images(request).list(ctx, filters, sort, page.limit, page.marker)
    body: dict[str, Any] = {"images": [image_view(i) for i in found], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    link = next_link("/v2/images", query, found, page)
    if link:
        body["next"] = link
    return json_response(body)


async def show_image(request: Request) -> Response:
    ctx = await authorize(request, "image:get_image")
    return json_response(image_view(await images(request).get(ctx, request.path_params["image_id"])))


async def update_image(request: Request) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != PATCH_TYPE:
        raise errors.UnsupportedMediaType(f"Unsupported Content-Type {content_type!r}: use {PATCH_TYPE}.",
                                          headers={"Accept-Patch": PATCH_TYPE})
    operations = await read_json(request, MAX_BODY)
    ctx = await authorize(request, "image:modify_image")
    image_id = request.path_params["image_id"]
    current = await images(request).get(ctx, image_id)
    core, props, removed = apply_patch(current, operations)
    updated = await images(request).update(ctx, image_id, core, props, removed)
    return json_response(image_view(updated))


async def delete_image(request: Request) -> Response:
    ctx = await authorize(request, "image:delete_image")
    await images(request).delete(ctx, request.path_params["image_id"])
    return empty_response(204)


async def deactivate(request: Request) -> Response:
    ctx = await authorize(request, "image:deactivate")
    await images(request).set_active_state(ctx, request.path_params["image_id"], active=False)
    return empty_response(204)


async def reactivate(request: Request) -> Response:
    ctx = await authorize(request, "image:reactivate")
    await images(request).set_active_state(ctx, request.path_params["image_id"], active=True)
    return empty_response(204)


async def add_tag(request: Request) -> Response:
    ctx = await authorize(request, "image:modify_image")
    await images(request).add_tag(ctx, request.path_params["image_id"], request.path_params["tag"])
    return empty_response(204)


async def delete_tag(request: Request) -> Response:
    ctx = await authorize(request, "image:modify_image")
    await images(request).delete_tag(ctx, request.path_params["image_id"], request.path_params["tag"])
    return empty_response(204)


routes = [
    Route("/v2/images", create_image, methods=["POST"]),
    Route("/v2/images", list_images, methods=["GET"]),
    Route("/v2/images/{image_id}", show_image, methods=["GET"]),
    Route("/v2/images/{image_id}", update_image, methods=["PATCH"]),
    Route("/v2/images/{image_id}", delete_image, methods=["DELETE"]),
    Route("/v2/images/{image_id}/actions/deactivate", deactivate, methods=["POST"]),
    Route("/v2/images/{image_id}/actions/reactivate", reactivate, methods=["POST"]),
    Route("/v2/images/{image_id}/tags/{tag}", add_tag, methods=["PUT"]),
    Route("/v2/images/{image_id}/tags/{tag}", delete_tag, methods=["DELETE"]),
]
