"""``/v3/users``: users, self-service password change, a user's groups and projects.

Matches Keystone v3: create answers 201, delete 204, password change 204; a
user may read themself (and their groups and projects) but nobody else; no
response ever carries a password or its hash.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import empty_response, json_response, parse_body
from kumo.identity.api import schemas
from kumo.identity.api.common import MAX_BODY, authorize, collection, query_dict, service, with_links

UserCreateBody = schemas.wrap("user", schemas.UserCreate)
UserUpdateBody = schemas.wrap("user", schemas.UserUpdate)
PasswordChangeBody = schemas.wrap("user", schemas.PasswordChange)


def _one(request: Request, user: dict[str, object], status: int = 200) -> Response:
    return json_response({"user": with_links(request, "users", user)}, status=status)


def _target(user_id: str) -> dict[str, object]:
    return {"user": {"id": user_id}}


async def create_user(request: Request) -> Response:
    body = await parse_body(request, UserCreateBody, MAX_BODY)
    fields = body.user.fields()  # type: ignore[attr-defined]
    await authorize(request, "identity:create_user", {"user": {k: v for k, v in fields.items() if k != "password"}})
    return _one(request, await service(request).users.create(fields), 201)


async def list_users(request: Request) -> Response:
    """Keystone's filters: ``name``, ``domain_id``, ``enabled`` and ``name__contains`` & co."""
    await authorize(request, "identity:list_users")
    users = await service(request).users.list(query_dict(request))
    return json_response(collection(request, "users", users))


async def get_user(request: Request) -> Response:
    user_id = request.path_params["user_id"]
    await authorize(request, "identity:get_user", _target(user_id))
    return _one(request, await service(request).users.get(user_id))


async def update_user(request: Request) -> Response:
    """An admin may reset the password here; that revokes the user's tokens (Keystone)."""
    user_id = request.path_params["user_id"]
    body = await parse_body(request, UserUpdateBody, MAX_BODY)
    await authorize(request, "identity:update_user", _target(user_id))
    return _one(request, await service(request).users.update(user_id, body.user.fields()))  # type: ignore[attr-defined]


async def delete_user(request: Request) -> Response:
    user_id = request.path_params["user_id"]
    await authorize(request, "identity:delete_user", _target(user_id))
    await service(request).users.delete(user_id)
    return empty_response()


async def change_password(request: Request) -> Response:
    """``POST /v3/users/{id}/password``: the original password is the proof; 204.

    As in Keystone this needs no token, so a user whose password expired
    (and who therefore cannot log in) can still change it.
    """
    user_id = request.path_params["user_id"]
    body = await parse_body(request, PasswordChangeBody, MAX_BODY)
    change = body.user  # type: ignore[attr-defined]
    await service(request).users.change_own_password(user_id, change.original_password, change.password)
    return empty_response()


async def list_user_groups(request: Request) -> Response:
    user_id = request.path_params["user_id"]
    await authorize(request, "identity:list_groups_for_user", _target(user_id))
    groups = await service(request).groups.list(query_dict(request), user_id=user_id)
    return json_response(collection(request, "groups", groups, path=f"users/{user_id}/groups"))


async def list_user_projects(request: Request) -> Response:
    """The enabled projects the user holds a role on, directly, through groups or inherited."""
    user_id = request.path_params["user_id"]
    await authorize(request, "identity:list_user_projects", _target(user_id))
    await service(request).users.get(user_id)  # 404 for an unknown user
    projects = await service(request).projects_for_user(user_id)
    return json_response(collection(request, "projects", projects, path=f"users/{user_id}/projects"))


routes = [
    Route("/v3/users", create_user, methods=["POST"]),
    Route("/v3/users", list_users, methods=["GET"]),
    Route("/v3/users/{user_id}", get_user, methods=["GET"]),
    Route("/v3/users/{user_id}", update_user, methods=["PATCH"]),
    Route("/v3/users/{user_id}", delete_user, methods=["DELETE"]),
    Route("/v3/users/{user_id}/password", change_password, methods=["POST"]),
    Route("/v3/users/{user_id}/groups", list_user_groups, methods=["GET"]),
    Route("/v3/users/{user_id}/projects", list_user_projects, methods=["GET"]),
]
