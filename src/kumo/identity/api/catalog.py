"""``/v3/regions``, ``/v3/services`` and ``/v3/endpoints``: the service catalog.

The three collections behave alike in Keystone (``POST`` 201, ``GET``,
``PATCH``, ``DELETE`` 204, bodies wrapped as ``{"region": ...}`` and so on,
each item with ``links.self``), so their routes are made by one factory.
Regions may also be created with a chosen id by ``PUT /v3/regions/{id}``.
Every change that affects the catalog bumps the identity revision, so tokens
issued afterwards (and ``GET /v3/auth/catalog``) carry the new catalog.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core import errors
from kumo.core.web import empty_response, json_response, parse_body
from kumo.identity.api import schemas
from kumo.identity.api.common import MAX_BODY, authorize, collection, query_dict, service, with_links


@dataclass(frozen=True)
class Collection:
    """One catalog collection: its JSON key (also the policy noun) and body models.

    The service methods follow one naming scheme (``create_region``,
    ``list_regions``...), so :meth:`method` finds them by name.
    """

    key: str
    create_body: type[BaseModel]
    update_body: type[BaseModel]

    @property
    def plural(self) -> str:
        return f"{self.key}s"

    @property
    def id_param(self) -> str:
        return f"{self.key}_id"

    def method(self, request: Request, verb: str) -> Callable[..., Awaitable[Any]]:
        noun = self.plural if verb == "list" else self.key
        return getattr(service(request).catalog, f"{verb}_{noun}")  # type: ignore[no-any-return]


REGIONS = Collection("region", schemas.wrap("region", schemas.RegionCreate), schemas.wrap("region", schemas.RegionUpdate))
SERVICES = Collection("service", schemas.wrap("service", schemas.ServiceCreate),
                      schemas.wrap("service", schemas.ServiceUpdate))
ENDPOINTS = Collection("endpoint", schemas.wrap("endpoint", schemas.EndpointCreate),
                       schemas.wrap("endpoint", schemas.EndpointUpdate))


def _one(request: Request, coll: Collection, item: dict[str, Any], status: int = 200) -> Response:
    return json_response({coll.key: with_links(request, coll.plural, item)}, status=status)


def crud_routes(coll: Collection) -> list[Route]:
    """``POST``/``GET`` on the collection, ``GET``/``PATCH``/``DELETE`` on an item."""

    async def create(request: Request) -> Response:
        body = await parse_body(request, coll.create_body, MAX_BODY)
        fields = getattr(body, coll.key).fields()
        await authorize(request, f"identity:create_{coll.key}", {coll.key: fields})
        return _one(request, coll, await coll.method(request, "create")(fields), 201)

    async def list_items(request: Request) -> Response:
        await authorize(request, f"identity:list_{coll.plural}")
        items = await coll.method(request, "list")(query_dict(request))
        return json_response(collection(request, coll.plural, items))

    async def get(request: Request) -> Response:
        item_id = request.path_params[coll.id_param]
        await authorize(request, f"identity:get_{coll.key}", {coll.key: {"id": item_id}})
        return _one(request, coll, await coll.method(request, "get")(item_id))

    async def update(request: Request) -> Response:
        item_id = request.path_params[coll.id_param]
        body = await parse_body(request, coll.update_body, MAX_BODY)
        await authorize(request, f"identity:update_{coll.key}", {coll.key: {"id": item_id}})
        return _one(request, coll, await coll.method(request, "update")(item_id, getattr(body, coll.key).fields()))

    async def delete(request: Request) -> Response:
        item_id = request.path_params[coll.id_param]
        await authorize(request, f"identity:delete_{coll.key}", {coll.key: {"id": item_id}})
        await coll.method(request, "delete")(item_id)
        return empty_response(204)

    item_path = f"/v3/{coll.plural}/{{{coll.id_param}}}"
    return [
        Route(f"/v3/{coll.plural}", create, methods=["POST"]),
        Route(f"/v3/{coll.plural}", list_items, methods=["GET"]),
        Route(item_path, get, methods=["GET"]),
        Route(item_path, update, methods=["PATCH"]),
        Route(item_path, delete, methods=["DELETE"]),
    ]


async def create_region_with_id(request: Request) -> Response:
    """``PUT /v3/regions/{region_id}``: create a region with the id in the URL (201).

    An ``id`` in the body that differs from the URL's is a 400, as in Keystone.
    """
    region_id = request.path_params["region_id"]
    body = await parse_body(request, REGIONS.create_body, MAX_BODY)
    fields = body.region.fields()  # type: ignore[attr-defined]
    if fields.get("id", region_id) != region_id:
        raise errors.ValidationError(f'Conflicting region IDs specified: "{region_id}" != "{fields["id"]}"')
    fields["id"] = region_id
    await authorize(request, "identity:create_region", {"region": fields})
    return _one(request, REGIONS, await REGIONS.method(request, "create")(fields), 201)


routes = [
    *crud_routes(REGIONS),
    Route("/v3/regions/{region_id}", create_region_with_id, methods=["PUT"]),
    *crud_routes(SERVICES),
    *crud_routes(ENDPOINTS),
]
