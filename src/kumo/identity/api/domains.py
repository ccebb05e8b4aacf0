"""``/v3/domains``: domains.

Matches Keystone v3: create 201 (an ``explicit_domain_id`` in the body picks
the id, any other ``id`` is ignored), delete 204, and deleting a domain that is
still enabled is a 403 ("disable it first").
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import empty_response, json_response, parse_body
from kumo.identity.api import schemas
from kumo.identity.api.common import MAX_BODY, authorize, collection, query_dict, service, with_links

DomainCreateBody = schemas.wrap("domain", schemas.DomainCreate)
DomainUpdateBody = schemas.wrap("domain", schemas.DomainUpdate)


def _one(request: Request, domain: dict[str, object], status: int = 200) -> Response:
    return json_response({"domain": with_links(request, "domains", domain)}, status=status)


def _target(domain_id: str) -> dict[str, object]:
    return {"domain": {"id": domain_id}}


async def create_domain(request: Request) -> Response:
    body = await parse_body(request, DomainCreateBody, MAX_BODY)
    fields = body.domain.fields()  # type: ignore[attr-defined]
    fields.pop("id", None)
    explicit = fields.pop("explicit_domain_id", None)
    if explicit:
        fields["id"] = explicit
    await authorize(request, "identity:create_domain", {"domain": fields})
    return _one(request, await service(request).domains.create(fields), 201)


async def list_domains(request: Request) -> Response:
    """Keystone's filters: ``name``, ``enabled`` and ``name__contains`` & co."""
    await authorize(request, "identity:list_domains")
    domains = await service(request).domains.list(query_dict(request))
    return json_response(collection(request, "domains", domains))


async def get_domain(request: Request) -> Response:
    domain_id = request.path_params["domain_id"]
    await authorize(request, "identity:get_domain", _target(domain_id))
    return _one(request, await service(request).domains.get(domain_id))


async def update_domain(request: Request) -> Response:
    """Disabling a domain makes every token of its users and projects invalid."""
    domain_id = request.path_params["domain_id"]
    body = await parse_body(request, DomainUpdateBody, MAX_BODY)
    await authorize(request, "identity:update_domain", _target(domain_id))
    fields = body.domain.fields()  # type: ignore[attr-defined]
    return _one(request, await service(request).domains.update(domain_id, fields))


async def delete_domain(request: Request) -> Response:
    domain_id = request.path_params["domain_id"]
    await authorize(request, "identity:delete_domain", _target(domain_id))
    await service(request).domains.delete(domain_id)
    return empty_response()


routes = [
    Route("/v3/domains", create_domain, methods=["POST"]),
    Route("/v3/domains", list_domains, methods=["GET"]),
    Route("/v3/domains/{domain_id}", get_domain, methods=["GET"]),
    Route("/v3/domains/{domain_id}", update_domain, methods=["PATCH"]),
    Route("/v3/domains/{domain_id}", delete_domain, methods=["DELETE"]),
]
