"""``/v2.1/os-server-groups``: Nova's ``ServerGroupController`` across microversions.

* create answers 200, delete 204; another project's group is a 404.
* below 2.64 a group shows ``policies`` (a one-item list) and an empty
  ``metadata``; from 2.64 ``policy`` and ``rules`` (``max_server_per_host``,
  anti-affinity only).
* 2.13: ``project_id`` and ``user_id``; 2.15: the soft policies.
* index: ``all_projects`` (admins), ``limit``/``offset`` (Nova's ``limited``);
  2.75 refuses unknown query parameters.
* the ``server_groups`` quota is a 403 "Quota exceeded, too many server groups."
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import MAX_LIMIT, at_least, authorize, deps, page_limit, page_offset, request_context
from kumo.compute.api.schemas import Strict
from kumo.compute.api.validation import Name, PositiveInt, invalid, parse_body
from kumo.compute.server_groups import GroupRecord, ServerGroupService
from kumo.core import errors
from kumo.core.web import auth_context, empty_response, json_response

POLICY = "os_compute_api:os-server-groups:%s"
HARD_POLICIES = ["anti-affinity", "affinity"]
ALL_POLICIES = ["anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"]


def _policy_name(value: Any, choices: list[str]) -> str:
    if not isinstance(value, str):
        raise invalid(f"{value!r} is not of type 'string'")
    if value not in choices:
        raise invalid(f"'{value}' is not one of {choices}")
    return value


def _policies(choices: list[str]) -> BeforeValidator:
    """Nova's ``policies``: exactly one policy name, in a list."""

    def check(value: Any) -> list[str]:
        if not isinstance(value, list):
            raise invalid(f"{value!r} is not of type 'array'")
        if not value:
            raise invalid("[] is too short")
        if len(value) > 1:
            if len(set(map(repr, value))) != len(value):
                raise invalid(f"{value!r} has non-unique elements")
            raise invalid(f"{value!r} is too long")
        return [_policy_name(value[0], choices)]

    return BeforeValidator(check)


class GroupCreate(Strict):
    name: Name
    policies: Annotated[list[str], _policies(HARD_POLICIES)]


class GroupCreateV215(GroupCreate):
    policies: Annotated[list[str], _policies(ALL_POLICIES)]


class Rules(Strict):
    max_server_per_host: PositiveInt | None = None


class GroupCreateV264(Strict):
    name: Name
    policy: Annotated[str, BeforeValidator(lambda v: _policy_name(v, ALL_POLICIES))]
    rules: Rules | None = None


class GroupCreateBody(Strict):
    server_group: GroupCreate


class GroupCreateBodyV215(GroupCreateBody):
    server_group: GroupCreateV215


class GroupCreateBodyV264(Strict):
    server_group: GroupCreateV264


def _service(request: Request) -> ServerGroupService:
    return ServerGroupService(deps(request).db)


def _view(request: Request, group: GroupRecord) -> dict[str, Any]:
    view: dict[str, Any] = {"id": group.uuid, "name": group.name}
    if at_least(request, "2.64"):
        view["policy"] = group.policy
        view["rules"] = dict(group.rules)
    else:
        view["policies"] = [group.policy]
        view["metadata"] = {}
    view["members"] = list(group.members)
    if at_least(request, "2.13"):
        view["project_id"] = group.project_id
        view["user_id"] = group.user_id
    return view


async def list_groups(request: Request) -> Response:
    ctx = await authorize(request, POLICY % "index")
    if at_least(request, "2.75"):
        for name in request.query_params:
            if name not in ("all_projects", "limit", "offset"):
                raise errors.BadRequest(f"Additional properties are not allowed ('{name}' was unexpected)")
    limit, _marker = page_limit(request)
    offset = page_offset(request)
    all_projects = "all_projects" in request.query_params and ctx.is_admin
    if all_projects:
        await authorize(request, POLICY % "index:all_projects", {"project_id": ctx.project_id})
    groups = await _service(request).list(request_context(request, ctx), all_projects=all_projects,
                                           offset=offset, limit=limit or MAX_LIMIT)
    return json_response({"server_groups": [_view(request, g) for g in groups]})


async def create_group(request: Request) -> Response:
    ctx = await authorize(request, POLICY % "create")
    if at_least(request, "2.64"):
        body = (await parse_body(request, GroupCreateBodyV264)).server_group
        policy = body.policy
        rules = {k: v for k, v in (body.rules.model_dump() if body.rules else {}).items() if v is not None}
        if policy != "anti-affinity" and rules:
            raise errors.BadRequest("Only anti-affinity policy supports rules.")
        name = body.name
    else:
        model: type[GroupCreateBody] = GroupCreateBodyV215 if at_least(request, "2.15") else GroupCreateBody
        legacy = (await parse_body(request, model)).server_group
        name, policy, rules = legacy.name, legacy.policies[0], {}
    group = await _service(request).create(request_context(request, ctx), name, policy, rules)
    return json_response({"server_group": _view(request, group)})


async def show_group(request: Request) -> Response:
    ctx = await auth_context(request)
    group = await _service(request).get(request_context(request, ctx), request.path_params["group_id"])
    await authorize(request, POLICY % "show", {"project_id": group.project_id})
    return json_response({"server_group": _view(request, group)})


async def delete_group(request: Request) -> Response:
    ctx = request_context(request, await auth_context(request))
    service = _service(request)
    group = await service.get(ctx, request.path_params["group_id"])
    await authorize(request, POLICY % "delete", {"project_id": group.project_id})
    await service.delete(ctx, group.uuid)
    return empty_response(204)


routes = [
    Route("/v2.1/os-server-groups", list_groups, methods=["GET"]),
    Route("/v2.1/os-server-groups", create_group, methods=["POST"]),
    Route("/v2.1/os-server-groups/{group_id}", show_group, methods=["GET"]),
    Route("/v2.1/os-server-groups/{group_id}", delete_group, methods=["DELETE"]),
]
