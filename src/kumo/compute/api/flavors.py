"""``/v2.1/flavors``: list (brief and detail), show, create, update (2.55), delete.

Matches Nova's ``FlavorsController``: create answers 200 (not 201) and
delete 202, for backwards compatibility; non-admins only ever list public
(or shared with their project), enabled flavors.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api import views
from kumo.compute.api.common import (
    allowed,
    at_least,
    authorize,
    check_query,
    collection_links,
    flavors,
    page_limit,
    query_one,
    require_version,
)
from kumo.compute.api.schemas import FlavorCreateBody, FlavorUpdateBody, reject_newer_fields
from kumo.compute.api.validation import parse_body
from kumo.compute.flavors import SORT_KEYS, FlavorQuery, FlavorRecord, FlavorSpec
from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.web import empty_response, json_response

READ = "os_compute_api:flavors"
MANAGE = "os_compute_api:os-flavor-manage:%s"
EXTRA_SPECS_INDEX = "os_compute_api:os-flavor-extra-specs:index"
LIST_PARAMS = {"limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir"}


def _shows_extra_specs(request: Request, ctx: AuthContext) -> bool:
    """From 2.61 flavors carry ``extra_specs`` when the caller may read them (else the key is left out)."""
    return at_least(request, "2.61") and allowed(request, ctx, EXTRA_SPECS_INDEX, {"project_id": ctx.project_id})


def _flavor_response(request: Request, ctx: AuthContext, flavor: FlavorRecord) -> Response:
    return json_response({"flavor": views.flavor_full(request, flavor, _shows_extra_specs(request, ctx))})


def _int_filter(request: Request, name: str) -> int | None:
    value = query_one(request, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.BadRequest(f"Invalid {name} filter [{value}]") from None


def _is_public_filter(value: str | None) -> bool | None:
    """Nova's ``_parse_is_public``: absent = public only, ``none`` = all, else a strict boolean."""
    if value is None:
        return True
    lowered = value.strip().lower()
    if lowered == "none":
        return None
    if lowered in ("1", "t", "true", "on", "y", "yes"):
        return True
    if lowered in ("0", "f", "false", "off", "n", "no"):
        return False
    raise errors.BadRequest(f"Invalid is_public filter [{value}]")


async def _list(request: Request) -> tuple[AuthContext, list[FlavorRecord], int]:
    ctx = await authorize(request, READ)
    check_query(request, LIST_PARAMS)
    limit, marker = page_limit(request)
    query = FlavorQuery(
        is_public=_is_public_filter(query_one(request, "is_public")),
        min_memory_mb=_int_filter(request, "minRam"),
        min_root_gb=_int_filter(request, "minDisk"),
        sort_key=query_one(request, "sort_key", SORT_KEYS) or "flavorid",
        sort_dir=query_one(request, "sort_dir", ("asc", "desc")) or "asc",
        limit=limit, marker=marker)
    return ctx, await flavors(request).list(ctx, query), limit


def _list_body(request: Request, key: str, items: list[dict[str, Any]], collection: str,
               limit: int) -> dict[str, Any]:
    body: dict[str, Any] = {key: items}
    next_links = collection_links(request, items, collection, "id", limit)
    if next_links:
        body[f"{key}_links"] = next_links
    return body


async def list_flavors(request: Request) -> Response:
    _ctx, found, limit = await _list(request)
    items = [views.flavor_brief(request, f) for f in found]
    return json_response(_list_body(request, "flavors", items, "flavors", limit))


async def list_flavors_detail(request: Request) -> Response:
    ctx, found, limit = await _list(request)
    extra = _shows_extra_specs(request, ctx)
    items = [views.flavor_full(request, f, extra) for f in found]
    return json_response(_list_body(request, "flavors", items, "flavors/detail", limit))


async def show_flavor(request: Request) -> Response:
    ctx = await authorize(request, READ)
    flavor = await flavors(request).get(ctx, request.path_params["flavor_id"])
    return _flavor_response(request, ctx, flavor)


async def create_flavor(request: Request) -> Response:
    ctx = await authorize(request, MANAGE % "create", {})
    body = (await parse_body(request, FlavorCreateBody)).flavor
    reject_newer_fields(body, {"description": at_least(request, "2.55")})
    spec = FlavorSpec(name=body.name, memory_mb=body.ram, vcpus=body.vcpus, root_gb=body.disk, flavorid=body.id,
                      ephemeral_gb=body.ephemeral, swap=body.swap, rxtx_factor=body.rxtx_factor,
                      is_public=body.is_public, description=body.description)
    return _flavor_response(request, ctx, await flavors(request).create(spec))


async def update_flavor(request: Request) -> Response:
    require_version(request, "2.55")
    ctx = await authorize(request, MANAGE % "update", {})
    body = await parse_body(request, FlavorUpdateBody)
    flavor = await flavors(request).update_description(request.path_params["flavor_id"], body.flavor.description)
    return _flavor_response(request, ctx, flavor)


async def delete_flavor(request: Request) -> Response:
    await authorize(request, MANAGE % "delete", {})
    await flavors(request).delete(request.path_params["flavor_id"])
    return empty_response(202)


routes = [
    Route("/v2.1/flavors", list_flavors, methods=["GET"]),
    Route("/v2.1/flavors", create_flavor, methods=["POST"]),
    Route("/v2.1/flavors/detail", list_flavors_detail, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}", show_flavor, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}", update_flavor, methods=["PUT"]),
    Route("/v2.1/flavors/{flavor_id}", delete_flavor, methods=["DELETE"]),
]
