"""``/v3/roles``, implied roles and ``/v3/role_assignments``.

* Roles: global ones, and domain-specific ones (``domain_id`` set), which
  Keystone guards with the ``*_domain_role`` policy actions.
* Implied roles: ``/v3/roles/{prior}/implies/{implied}`` and
  ``/v3/role_inferences``, rendered as Keystone's ``role_inference`` bodies
  (each role as ``{"id", "name", "links"}``).
* ``GET /v3/role_assignments``: the grants (or, with ``effective``, their
  effect on users), as ``openstack role assignment list`` reads them.

Grants themselves (``PUT /v3/projects/{p}/users/{u}/roles/{r}``...) live in
:mod:`kumo.identity.api.grants`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import empty_response, json_response, parse_body
from kumo.identity.api import schemas
from kumo.identity.api.common import MAX_BODY, authorize, base_url, collection, query_dict, service, with_links

RoleCreateBody = schemas.wrap("role", schemas.RoleCreate)
RoleUpdateBody = schemas.wrap("role", schemas.RoleUpdate)


def _one(request: Request, role: dict[str, Any], status: int = 200) -> Response:
    return json_response({"role": with_links(request, "roles", role)}, status=status)


def _action(verb: str, role: dict[str, Any]) -> str:
    """Keystone checks ``identity:<verb>_domain_role`` for domain-specific roles."""
    return f"identity:{verb}_domain_role" if role.get("domain_id") else f"identity:{verb}_role"


# -- roles ------------------------------------------------------------------------
async def create_role(request: Request) -> Response:
    body = await parse_body(request, RoleCreateBody, MAX_BODY)
    fields = body.role.fields()  # type: ignore[attr-defined]
    await authorize(request, _action("create", fields), {"role": fields})
    return _one(request, await service(request).roles.create(fields), 201)


async def list_roles(request: Request) -> Response:
    """``GET /v3/roles``: global roles, or a domain's roles with ``?domain_id=``; ``name`` filters."""
    query = query_dict(request)
    await authorize(request, "identity:list_domain_roles" if query.get("domain_id") else "identity:list_roles",
                    {"domain": {"id": query.get("domain_id")}})
    return json_response(collection(request, "roles", await service(request).roles.list(query)))


async def get_role(request: Request) -> Response:
    role = await service(request).roles.get(request.path_params["role_id"])
    await authorize(request, _action("get", role), {"role": role})
    return _one(request, role)


async def update_role(request: Request) -> Response:
    role_id = request.path_params["role_id"]
    body = await parse_body(request, RoleUpdateBody, MAX_BODY)
    role = await service(request).roles.get(role_id)
    await authorize(request, _action("update", role), {"role": role})
    return _one(request, await service(request).roles.update(role_id, body.role.fields()))  # type: ignore[attr-defined]


async def delete_role(request: Request) -> Response:
    role_id = request.path_params["role_id"]
    role = await service(request).roles.get(role_id)
    await authorize(request, _action("delete", role), {"role": role})
    await service(request).roles.delete(role_id)
    return empty_response(204)


# -- implied roles --------------------------------------------------------------------
def _ref(request: Request, role: dict[str, Any]) -> dict[str, Any]:
    """A role as an inference rule shows it: ``{"id", "name", "links": {"self"}}``."""
    return {"id": role["id"], "name": role["name"],
            "links": {"self": f"{base_url(request)}/v3/roles/{role['id']}"}}


def _rule(request: Request, prior: dict[str, Any], implies: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    rendered = [_ref(request, r) for r in implies] if isinstance(implies, list) else _ref(request, implies)
    return {"prior_role": _ref(request, prior), "implies": rendered}


def _ids(request: Request) -> tuple[str, str, dict[str, Any]]:
    prior_id, implied_id = request.path_params["prior_role_id"], request.path_params["implied_role_id"]
    return prior_id, implied_id, {"prior_role": {"id": prior_id}, "implied_role": {"id": implied_id}}


def _inference_body(request: Request, prior: dict[str, Any], implied: dict[str, Any]) -> dict[str, Any]:
    url = f"{base_url(request)}/v3/roles/{prior['id']}/implies/{implied['id']}"
    return {"role_inference": _rule(request, prior, implied), "links": {"self": url}}


async def create_implied_role(request: Request) -> Response:
    """``PUT /v3/roles/{prior}/implies/{implied}``: 201; a rule that would make a loop is 403."""
    prior_id, implied_id, target = _ids(request)
    await authorize(request, "identity:create_implied_role", target)
    prior, implied = await service(request).roles.create_implied(prior_id, implied_id)
    return json_response(_inference_body(request, prior, implied), status=201)


async def get_implied_role(request: Request) -> Response:
    prior_id, implied_id, target = _ids(request)
    await authorize(request, "identity:get_implied_role", target)
    prior, implied = await service(request).roles.get_implied(prior_id, implied_id)
    return json_response(_inference_body(request, prior, implied))


async def check_implied_role(request: Request) -> Response:
    prior_id, implied_id, target = _ids(request)
    await authorize(request, "identity:check_implied_role", target)
    await service(request).roles.get_implied(prior_id, implied_id)
    return empty_response(204)


async def delete_implied_role(request: Request) -> Response:
    prior_id, implied_id, target = _ids(request)
    await authorize(request, "identity:delete_implied_role", target)
    await service(request).roles.delete_implied(prior_id, implied_id)
    return empty_response(204)


async def list_implied_roles(request: Request) -> Response:
    """``GET /v3/roles/{prior}/implies``: the roles one role implies directly."""
    prior_id = request.path_params["prior_role_id"]
    await authorize(request, "identity:list_implied_roles", {"prior_role": {"id": prior_id}})
    [(prior, implies)] = await service(request).roles.list_implied(prior_id)
    return json_response({"role_inference": _rule(request, prior, implies),
                          "links": {"self": f"{base_url(request)}/v3/roles/{prior_id}/implies"}})


async def list_role_inferences(request: Request) -> Response:
    """``GET /v3/role_inferences``: every inference rule, grouped by prior role."""
    await authorize(request, "identity:list_role_inference_rules")
    rules = await service(request).roles.list_implied()
    return json_response({"role_inferences": [_rule(request, prior, implies) for prior, implies in rules],
                          "links": {"self": f"{base_url(request)}/v3/role_inferences"}})


# -- role assignments ----------------------------------------------------------------
async def list_role_assignments(request: Request) -> Response:
    """``GET /v3/role_assignments`` with Keystone's filters, ``effective`` and ``include_names``."""
    await authorize(request, "identity:list_role_assignments")
    url = f"{base_url(request)}/v3/role_assignments"
    entries = await service(request).assignments.list(query_dict(request), base_url(request))
    return json_response({"role_assignments": entries,
                          "links": {"self": f"{url}?{request.url.query}" if request.url.query else url,
                                    "previous": None, "next": None}})


IMPLIES = "/v3/roles/{prior_role_id}/implies/{implied_role_id}"

routes = [
    Route("/v3/roles", create_role, methods=["POST"]),
    Route("/v3/roles", list_roles, methods=["GET"]),
    Route("/v3/roles/{role_id}", get_role, methods=["GET"]),
    Route("/v3/roles/{role_id}", update_role, methods=["PATCH"]),
    Route("/v3/roles/{role_id}", delete_role, methods=["DELETE"]),
    Route("/v3/roles/{prior_role_id}/implies", list_implied_roles, methods=["GET"]),
    Route(IMPLIES, create_implied_role, methods=["PUT"]),
    Route(IMPLIES, check_implied_role, methods=["HEAD"]),  # before GET, which also answers HEAD
    Route(IMPLIES, get_implied_role, methods=["GET"]),
    Route(IMPLIES, delete_implied_role, methods=["DELETE"]),
    Route("/v3/role_inferences", list_role_inferences, methods=["GET"]),
    Route("/v3/role_assignments", list_role_assignments, methods=["GET"]),
]
