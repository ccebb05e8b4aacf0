"""``/v2.1/os-aggregates``: Nova's ``AggregateController`` (admin only).

* ``GET /os-aggregates``, ``POST /os-aggregates`` (200, the view without
  ``hosts`` and ``metadata``), ``GET/PUT/DELETE /os-aggregates/{id}``
  (``DELETE`` answers 200 with no body, as Nova).
* ``POST /os-aggregates/{id}/action`` with ``add_host``, ``remove_host`` or
  ``set_metadata`` (200 and the aggregate).
* 2.41: the view has the aggregate's ``uuid``; the URL id stays the integer.
* ``POST /os-aggregates/{id}/images`` (2.81, image pre-caching) is answered
  but not done: bad input is Nova's 400, an unknown aggregate 404, and a
  valid request 400 saying pre-caching is not supported.

As in Nova, a request body is validated before the policy check, the URL
id (an integer, 400 "id must be an integer") after it. Times are Nova's
naive UTC with microseconds; ``deleted`` is always false.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.aggregates import AggregateRecord, AggregateService, not_found
from kumo.compute.api.common import (
    action_body,
    at_least,
    authorize,
    deps,
    require_version,
)
from kumo.compute.api.os_services import Host
from kumo.compute.api.schemas import Strict
from kumo.compute.api.server_schemas import uuid_string
from kumo.compute.api.validation import (
    Name,
    detail,
    invalid,
    is_printable,
    parse,
    parse_body,
    show_value,
)
from kumo.compute.api.views import nova_time
from kumo.core import errors
from kumo.core.web import empty_response, json_response

POLICY = "os_compute_api:os-aggregates:%s"
IMAGES_POLICY = "compute:aggregates:images"
_METADATA_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:. ")


# ----------------------------------------------------------------------------- request bodies

def _zone(value: Any) -> str | None:
    """``oneOf: [az_name, null]``: 1-255 printable characters but ``:``, no whitespace at either end."""
    if value is None:
        return None
    ok = (isinstance(value, str) and 1 <= len(value) <= 255 and ":" not in value
          and all(is_printable(c) for c in value) and not value[0].isspace() and not value[-1].isspace())
    if not ok:
        raise invalid(f"{show_value(value)} is not valid under any of the given schemas")
    return str(value)


def _spaced_name(value: Any) -> str:
    """``name_with_leading_trailing_spaces``: printable, at least one non-space; stripped afterwards."""
    if not isinstance(value, str):
        raise invalid(f"{show_value(value)} is not of type 'string'")
    if not value.strip() or not all(is_printable(c) for c in value):
        raise detail("An invalid 'name' value was provided. The name must be: printable characters with at "
                     "least one non space character")
    if len(value) > 255:
        raise invalid(f"'{value}' is too long")
    return value


def _metadata_with_null(value: Any) -> dict[str, str | None]:
    """``parameter_types.metadata_with_null``: keys ``[a-zA-Z0-9-_:. ]{1,255}``, values strings (<= 255) or null."""
    if not isinstance(value, dict):
        raise invalid(f"{show_value(value)} is not of type 'object'")
    for key, item in value.items():
        if not 1 <= len(key) <= 255 or not set(key) <= _METADATA_KEY_CHARS:
            raise detail(f"Additional properties are not allowed ('{key}' was unexpected)")
        if item is not None and not isinstance(item, str):
            raise detail(f"Invalid input for field/attribute {key}. Value: {item}. {show_value(item)} is not of type "
                         "'string', 'null'")
        if isinstance(item, str) and len(item) > 255:
            raise detail(f"Invalid input for field/attribute {key}. Value: {item}. '{item}' is too long")
    return dict(value)


Zone = Annotated[str | None, BeforeValidator(_zone)]


class AggregateCreate(Strict):
    name: Name
    availability_zone: Zone = None


class AggregateCreateBody(Strict):
    aggregate: AggregateCreate


class AggregateUpdate(Strict):
    name: Annotated[str, BeforeValidator(_spaced_name)] | None = None
    availability_zone: Zone = None


class AggregateUpdateBody(Strict):
    aggregate: AggregateUpdate


class HostBody(Strict):
    host: Host


class AddHostBody(Strict):
    add_host: HostBody


class RemoveHostBody(Strict):
    remove_host: HostBody


class Metadata(Strict):
    metadata: Annotated[dict[str, str | None], BeforeValidator(_metadata_with_null)]


class SetMetadataBody(Strict):
    set_metadata: Metadata


class CacheImage(Strict):
    id: Annotated[str, BeforeValidator(uuid_string)]


class CacheBody(Strict):
    cache: list[CacheImage] = Field(min_length=1)


# ----------------------------------------------------------------------------- views and helpers

def aggregate_view(request: Request, agg: AggregateRecord, *, with_members: bool = True) -> dict[str, Any]:
    """Nova's ``_marshall_aggregate``; ``uuid`` from 2.41. Create answers without hosts and metadata."""
    view: dict[str, Any] = {
        "availability_zone": agg.availability_zone, "created_at": nova_time(agg.created_at), "deleted": False,
        "deleted_at": nova_time(agg.deleted_at), "id": agg.id, "name": agg.name,
        "updated_at": nova_time(agg.updated_at)}
    if with_members:
        view["hosts"] = list(agg.hosts)
        view["metadata"] = dict(agg.metadata)
    if at_least(request, "2.41"):
        view["uuid"] = agg.uuid
    return view


def _one(request: Request, agg: AggregateRecord) -> Response:
    return json_response({"aggregate": aggregate_view(request, agg)})


def _service(request: Request) -> AggregateService:
    return AggregateService(deps(request).db)


def _aggregate_id(request: Request) -> int:
    """Nova's ``validate_integer(id, 'id')``: what ``int()`` takes, else 400."""
    raw: str = request.path_params["aggregate_id"]
    try:
        return int(raw)
    except ValueError:
        raise errors.BadRequest("Invalid input received: id must be an integer") from None


# ----------------------------------------------------------------------------- handlers

async def list_aggregates(request: Request) -> Response:
    await authorize(request, POLICY % "index", {})
    found = await _service(request).list()
    return json_response({"aggregates": [aggregate_view(request, a) for a in found]})


async def create_aggregate(request: Request) -> Response:
    body = (await parse_body(request, AggregateCreateBody)).aggregate
    await authorize(request, POLICY % "create", {})
    zone = body.availability_zone.strip() if body.availability_zone else None
    created = await _service(request).create(body.name.strip(), zone)
    return json_response({"aggregate": aggregate_view(request, created, with_members=False)})


async def show_aggregate(request: Request) -> Response:
    await authorize(request, POLICY % "show", {})
    return _one(request, await _service(request).get(_aggregate_id(request)))


async def update_aggregate(request: Request) -> Response:
    body = (await parse_body(request, AggregateUpdateBody)).aggregate
    given = body.model_fields_set
    if not given & {"name", "availability_zone"}:
        raise errors.ValidationError("Invalid input for field/attribute aggregate. Value: {}. {} is not valid "
                                     "under any of the given schemas")
    if "name" in given and body.name is None:
        raise errors.ValidationError("Invalid input for field/attribute name. Value: None. None is not of type "
                                     "'string'")
    await authorize(request, POLICY % "update", {})
    aggregate_id = _aggregate_id(request)
    updated = await _service(request).update(
        aggregate_id, name=body.name.strip() if body.name is not None else None,
        zone_given="availability_zone" in given, zone=body.availability_zone)
    return _one(request, updated)


async def delete_aggregate(request: Request) -> Response:
    await authorize(request, POLICY % "delete", {})
    await _service(request).delete(_aggregate_id(request))
    return empty_response(200)


async def _add_host(request: Request, body: Any) -> Response:
    host = parse(AddHostBody, body).add_host.host
    await authorize(request, POLICY % "add_host", {})
    return _one(request, await _service(request).add_host(_aggregate_id(request), host))


async def _remove_host(request: Request, body: Any) -> Response:
    host = parse(RemoveHostBody, body).remove_host.host
    await authorize(request, POLICY % "remove_host", {})
    return _one(request, await _service(request).remove_host(_aggregate_id(request), host))


async def _set_metadata(request: Request, body: Any) -> Response:
    metadata = parse(SetMetadataBody, body).set_metadata.metadata
    await authorize(request, POLICY % "set_metadata", {})
    return _one(request, await _service(request).set_metadata(_aggregate_id(request), metadata))


ACTIONS = {"add_host": _add_host, "remove_host": _remove_host, "set_metadata": _set_metadata}


async def aggregate_action(request: Request) -> Response:
    """One route for the actions; the body's single key picks one (Nova's ``action_peek``)."""
    key, value = await action_body(request)
    handler = ACTIONS.get(key)
    if handler is None:
        raise errors.BadRequest(f"There is no such action: {key}")
    return await handler(request, {key: value})


async def cache_images(request: Request) -> Response:
    """2.81 image pre-caching: validated as Nova does, then refused (no agent pre-caches images yet)."""
    require_version(request, "2.81")
    body = await parse_body(request, CacheBody)
    await authorize(request, IMAGES_POLICY, {})
    aggregate_id = _aggregate_id(request)
    ids = [image.id for image in body.cache]
    if len(set(ids)) != len(ids):
        raise errors.BadRequest("Duplicate images in request")
    try:
        await _service(request).get(aggregate_id)
    except errors.NotFound:
        raise not_found(request.path_params["aggregate_id"]) from None
    raise errors.BadRequest("Image pre-caching is not supported by this cloud.")


routes = [
    Route("/v2.1/os-aggregates", list_aggregates, methods=["GET"]),
    Route("/v2.1/os-aggregates", create_aggregate, methods=["POST"]),
    Route("/v2.1/os-aggregates/{aggregate_id}", show_aggregate, methods=["GET"]),
    Route("/v2.1/os-aggregates/{aggregate_id}", update_aggregate, methods=["PUT"]),
    Route("/v2.1/os-aggregates/{aggregate_id}", delete_aggregate, methods=["DELETE"]),
    Route("/v2.1/os-aggregates/{aggregate_id}/action", aggregate_action, methods=["POST"]),
    Route("/v2.1/os-aggregates/{aggregate_id}/images", cache_images, methods=["POST"]),
]
