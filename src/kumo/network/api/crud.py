"""The five routes of a Neutron collection, built from its attribute map and its service.

``GET /v2.0/<collection>`` (filters, tag filters, fields, sorting, paging),
``POST`` (201), ``GET .../{id}`` (``fields``), ``PUT .../{id}`` (200) and
``DELETE .../{id}`` (204; a body is 400). Policy: the action rule
(``create_network``) for every request, plus the attribute rules
(``create_network:shared``) for the admin-only attributes a body carries.
A write that a server database aborts as a deadlock, or whose snapshot the
service found stale (``StaleTransaction``), is retried whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.db import retry_deadlocks
from kumo.core.web import auth_context, empty_response, json_response
from kumo.network.api.common import authorize, body, check_attribute_rules, has_body, neutron
from kumo.network.api.resource import Resource, parse_body, parse_query, select, trim
from kumo.network.common import Caller, Filters
from kumo.network.errors import BadRequest
from kumo.network.service import Neutron
from kumo.network.tags import TAG_FILTERS, matches, tag_filter

Lister = Callable[[Neutron, Caller, Filters], Awaitable[list[dict[str, Any]]]]
Getter = Callable[[Neutron, Caller, str], Awaitable[dict[str, Any]]]
Creator = Callable[[Neutron, Caller, dict[str, Any]], Awaitable[dict[str, Any]]]
Updater = Callable[[Neutron, Caller, str, dict[str, Any]], Awaitable[dict[str, Any]]]
Deleter = Callable[[Neutron, Caller, str], Awaitable[None]]
#: Every write is one transaction, so one a server database broke as a deadlock is simply run again
#: (concurrent port creates on one subnet lock the same index ranges on MariaDB).
DEADLOCK_RETRIES = 10


@dataclass(frozen=True)
class Collection:
    resource: Resource
    path: str  # "/v2.0/networks" (security groups use dashes in URLs)
    list: Lister
    get: Getter
    create: Creator | None = None
    update: Updater | None = None
    delete: Deleter | None = None


def routes(c: Collection) -> list[Route]:
    name = c.resource.name

    async def list_items(request: Request) -> Response:
        who = await authorize(request, f"get_{name}")
        query = parse_query(c.resource, request, extra_filters=TAG_FILTERS)
        tags = tag_filter({k: query.filters.pop(k) for k in TAG_FILTERS if k in query.filters})
        items = await c.list(neutron(request), who, query.filters)
        if tags:
            items = [item for item in items if matches(item.get("tags", []), tags)]
        return json_response(select(c.resource, items, query, request))

    async def create_item(request: Request) -> Response:
        if c.create is None:
            raise BadRequest(f"Creating a {name} is not supported")
        raw = await body(request)
        values = parse_body(c.resource, raw, create=True)
        who = await authorize(request, f"create_{name}")
        await _attribute_rules(request, c.resource, f"create_{name}", values, raw[name], who)
        created = await retry_deadlocks(lambda: c.create(neutron(request), who, values), attempts=DEADLOCK_RETRIES)
        return json_response({name: created}, status=201)

    async def show_item(request: Request) -> Response:
        who = await authorize(request, f"get_{name}")
        item = await c.get(neutron(request), who, request.path_params["id"])
        fields = list(dict.fromkeys(f for f in request.query_params.getlist("fields") if f))
        return json_response({name: trim(item, fields)})

    async def update_item(request: Request) -> Response:
        if c.update is None:
            raise BadRequest(f"Updating a {name} is not supported")
        raw = await body(request)
        values = parse_body(c.resource, raw, create=False)
        who = await authorize(request, f"update_{name}")
        await _attribute_rules(request, c.resource, f"update_{name}", values, raw[name], who)
        updated = await retry_deadlocks(lambda: c.update(neutron(request), who, request.path_params["id"], values),
                                        attempts=DEADLOCK_RETRIES)
        return json_response({name: updated})

    async def delete_item(request: Request) -> Response:
        if await has_body(request):
            raise BadRequest("Request body is not supported in DELETE.")
        if c.delete is None:
            raise BadRequest(f"Deleting a {name} is not supported")
        who = await authorize(request, f"delete_{name}")
        await retry_deadlocks(lambda: c.delete(neutron(request), who, request.path_params["id"]),
                              attempts=DEADLOCK_RETRIES)
        return empty_response(204)

    return [Route(c.path, list_items, methods=["GET"]), Route(c.path, create_item, methods=["POST"]),
            Route(c.path + "/{id}", show_item, methods=["GET"]), Route(c.path + "/{id}", update_item, methods=["PUT"]),
            Route(c.path + "/{id}", delete_item, methods=["DELETE"])]


async def _attribute_rules(request: Request, resource: Resource, action: str, values: dict[str, Any],
                           given: dict[str, Any], who: Caller) -> None:
    """The per-attribute rules, and Neutron's rule that only admins act for another project.

    As Neutron's ``_is_attribute_explicitly_set``, a rule applies only to an
    attribute the body sets to something else than its default.
    """
    guarded = [k for k in given if resource.attrs[k].policy and values[k] != resource.attrs[k].default]
    ctx = await auth_context(request)
    if guarded:
        check_attribute_rules(request, ctx.policy_creds(), action, guarded)
    project, tenant = values.get("project_id"), values.get("tenant_id")
    if project and tenant and project != tenant:
        raise BadRequest("'project_id' and 'tenant_id' do not match")
    if (project or tenant) not in (None, who.project_id) and not who.is_admin:
        raise BadRequest("Specifying 'project_id' other than the authenticated project in request is not allowed "
                         "for the current user.")
