"""``/v2.1/flavors/{id}/os-extra_specs``: Nova's ``FlavorExtraSpecsController``.

Reading needs only to see the flavor (project readers, by policy); writing
is for admins. Create and update answer 200 with the body as sent (numbers
stay numbers, as Nova echoes ``body``); from 2.86 known keys are validated.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute import extra_specs
from kumo.compute.api.common import MAX_BODY, at_least, authorize, flavors
from kumo.compute.api.schemas import ExtraSpecsBody
from kumo.compute.api.validation import parse
from kumo.core import errors
from kumo.core.web import json_response, read_json

POLICY = "os_compute_api:os-flavor-extra-specs:%s"


def _validate(request: Request, specs: dict[str, str]) -> None:
    if at_least(request, "2.86"):
        for key, value in specs.items():
            extra_specs.validate(key, value)


async def list_extra_specs(request: Request) -> Response:
    ctx = await authorize(request, POLICY % "index")
    flavor = await flavors(request).get(ctx, request.path_params["flavor_id"])
    return json_response({"extra_specs": flavor.extra_specs})


async def create_extra_specs(request: Request) -> Response:
    ctx = await authorize(request, POLICY % "create", {})
    raw = await read_json(request, MAX_BODY)
    specs = parse(ExtraSpecsBody, raw).extra_specs
    _validate(request, specs)
    await flavors(request).set_extra_specs(ctx, request.path_params["flavor_id"], specs)
    return json_response(raw)


async def update_extra_spec(request: Request) -> Response:
    """``PUT .../os-extra_specs/{key}`` with ``{key: value}``: exactly one property, the URL's key."""
    ctx = await authorize(request, POLICY % "update", {})
    raw: Any = await read_json(request, MAX_BODY)
    specs = parse(ExtraSpecsBody, {"extra_specs": raw}).extra_specs
    if len(specs) != 1:
        problem = "does not have enough properties" if not specs else "has too many properties"
        raise errors.ValidationError(f"{raw} {problem}")
    _validate(request, specs)
    key = request.path_params["key"]
    if key not in specs:
        raise errors.BadRequest("Request body and URI mismatch")
    await flavors(request).set_extra_specs(ctx, request.path_params["flavor_id"], specs)
    return json_response(raw)


async def show_extra_spec(request: Request) -> Response:
    ctx = await authorize(request, POLICY % "show")
    flavorid, key = request.path_params["flavor_id"], request.path_params["key"]
    flavor = await flavors(request).get(ctx, flavorid)
    if key not in flavor.extra_specs:
        raise errors.NotFound(f"Flavor {flavorid} has no extra specs with key {key}.")
    return json_response({key: flavor.extra_specs[key]})


async def delete_extra_spec(request: Request) -> Response:
    """Nova answers 200 with an empty body here (not 204)."""
    ctx = await authorize(request, POLICY % "delete", {})
    await flavors(request).delete_extra_spec(ctx, request.path_params["flavor_id"], request.path_params["key"])
    return Response(status_code=200)


routes = [
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs", list_extra_specs, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs", create_extra_specs, methods=["POST"]),
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", show_extra_spec, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", update_extra_spec, methods=["PUT"]),
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", delete_extra_spec, methods=["DELETE"]),
]
