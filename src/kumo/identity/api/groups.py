"""``/v3/groups``: groups and their members.

Matches Keystone v3: create 201, delete 204; membership is
``PUT``/``HEAD``/``DELETE /v3/groups/{g}/users/{u}``, each 204, with 404 for an
unknown group, user or (on check/remove) membership.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import empty_response, json_response, parse_body
from kumo.identity.api import schemas
from kumo.identity.api.common import MAX_BODY, authorize, collection, query_dict, service, with_links

GroupCreateBody = schemas.wrap("group", schemas.GroupCreate)
GroupUpdateBody = schemas.wrap("group", schemas.GroupUpdate)


def _one(request: Request, group: dict[str, object], status: int = 200) -> Response:
    return json_response({"group": with_links(request, "groups", group)}, status=status)


def _target(group_id: str) -> dict[str, object]:
    return {"group": {"id": group_id}}


async def create_group(request: Request) -> Response:
    body = await parse_body(request, GroupCreateBody, MAX_BODY)
    fields = body.group.fields()  # type: ignore[attr-defined]
    await authorize(request, "identity:create_group", {"group": fields})
    return _one(request, await service(request).groups.create(fields), 201)


async def list_groups(request: Request) -> Response:
    """Keystone's filters: ``name``, ``domain_id`` and ``name__contains`` & co."""
    await authorize(request, "identity:list_groups")
    groups = await service(request).groups.list(query_dict(request))
    return json_response(collection(request, "groups", groups))


async def get_group(request: Request) -> Response:
    group_id = request.path_params["group_id"]
    await authorize(request, "identity:get_group", _target(group_id))
    return _one(request, await service(request).groups.get(group_id))


async def update_group(request: Request) -> Response:
    group_id = request.path_params["group_id"]
    body = await parse_body(request, GroupUpdateBody, MAX_BODY)
    await authorize(request, "identity:update_group", _target(group_id))
    fields = body.group.fields()  # type: ignore[attr-defined]
    return _one(request, await service(request).groups.update(group_id, fields))


async def delete_group(request: Request) -> Response:
    group_id = request.path_params["group_id"]
    await authorize(request, "identity:delete_group", _target(group_id))
    await service(request).groups.delete(group_id)
    return empty_response()


async def list_members(request: Request) -> Response:
    """``GET /v3/groups/{g}/users``: the members, with the same filters as ``/v3/users``."""
    group_id = request.path_params["group_id"]
    await authorize(request, "identity:list_users_in_group", _target(group_id))
    ids = await service(request).groups.member_ids(group_id)
    users = await service(request).users.list(query_dict(request), ids=ids)
    return json_response(collection(request, "users", users, path=f"groups/{group_id}/users"))


def _membership(request: Request) -> tuple[str, str, dict[str, object]]:
    group_id, user_id = request.path_params["group_id"], request.path_params["user_id"]
    return group_id, user_id, {"group": {"id": group_id}, "user": {"id": user_id}}


async def add_member(request: Request) -> Response:
    group_id, user_id, target = _membership(request)
    await authorize(request, "identity:add_user_to_group", target)
    await service(request).groups.add_user(group_id, user_id)
    return empty_response()


async def check_member(request: Request) -> Response:
    group_id, user_id, target = _membership(request)
    await authorize(request, "identity:check_user_in_group", target)
    await service(request).groups.check_user(group_id, user_id)
    return empty_response()


async def remove_member(request: Request) -> Response:
    """Removing a member revokes the user's tokens (their group roles may be gone)."""
    group_id, user_id, target = _membership(request)
    await authorize(request, "identity:remove_user_from_group", target)
    await service(request).groups.remove_user(group_id, user_id)
    return empty_response()


routes = [
    Route("/v3/groups", create_group, methods=["POST"]),
    Route("/v3/groups", list_groups, methods=["GET"]),
    Route("/v3/groups/{group_id}", get_group, methods=["GET"]),
    Route("/v3/groups/{group_id}", update_group, methods=["PATCH"]),
    Route("/v3/groups/{group_id}", delete_group, methods=["DELETE"]),
    Route("/v3/groups/{group_id}/users", list_members, methods=["GET"]),
    Route("/v3/groups/{group_id}/users/{user_id}", add_member, methods=["PUT"]),
    Route("/v3/groups/{group_id}/users/{user_id}", check_member, methods=["GET", "HEAD"]),
    Route("/v3/groups/{group_id}/users/{user_id}", remove_member, methods=["DELETE"]),
]
