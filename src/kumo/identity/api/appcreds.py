"""``/v3/users/{user_id}/application_credentials``: a user's application credentials.

Matches Keystone v3: create answers 201 with the ``secret`` (the only time it
is shown), list/get never show it, delete 204. Only the user creates their
own credentials, from a project-scoped token; a token made from a restricted
credential may not create or delete credentials (403).
"""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import empty_response, json_response, parse_body
from kumo.identity.api import schemas
from kumo.identity.api.common import MAX_BODY, authorize, collection, query_dict, service, with_links

AppCredCreateBody = schemas.wrap("application_credential", schemas.AppCredCreate)


def _path(user_id: str) -> str:
    return f"users/{user_id}/application_credentials"


def _one(request: Request, user_id: str, cred: dict[str, object], status: int = 200) -> Response:
    return json_response({"application_credential": with_links(request, _path(user_id), cred)}, status=status)


def _target(user_id: str) -> dict[str, object]:
    return {"user": {"id": user_id}}


async def create_appcred(request: Request) -> Response:
    user_id = request.path_params["user_id"]
    body = await parse_body(request, AppCredCreateBody, MAX_BODY)
    ctx = await authorize(request, "identity:create_application_credential", _target(user_id))
    fields = body.application_credential.fields()  # type: ignore[attr-defined]
    expires_at: dt.datetime | None = fields.get("expires_at")
    if expires_at is not None and expires_at.tzinfo is None:
        fields["expires_at"] = expires_at.replace(tzinfo=dt.UTC)  # Keystone reads a naive time as UTC
    return _one(request, user_id, await service(request).appcreds.create(ctx, user_id, fields), 201)


async def list_appcreds(request: Request) -> Response:
    """Filter: ``name``."""
    user_id = request.path_params["user_id"]
    await authorize(request, "identity:list_application_credentials", _target(user_id))
    creds = await service(request).appcreds.list(user_id, query_dict(request))
    return json_response(collection(request, "application_credentials", creds, path=_path(user_id),
                                    collection_path=_path(user_id)))


async def get_appcred(request: Request) -> Response:
    user_id, cred_id = request.path_params["user_id"], request.path_params["cred_id"]
    await authorize(request, "identity:get_application_credential", _target(user_id))
    return _one(request, user_id, await service(request).appcreds.get(user_id, cred_id))


async def delete_appcred(request: Request) -> Response:
    """Deleting a credential revokes every token made from it."""
    user_id, cred_id = request.path_params["user_id"], request.path_params["cred_id"]
    ctx = await authorize(request, "identity:delete_application_credential", _target(user_id))
    await service(request).appcreds.delete(ctx, user_id, cred_id)
    return empty_response()


routes = [
    Route("/v3/users/{user_id}/application_credentials", create_appcred, methods=["POST"]),
    Route("/v3/users/{user_id}/application_credentials", list_appcreds, methods=["GET"]),
    Route("/v3/users/{user_id}/application_credentials/{cred_id}", get_appcred, methods=["GET"]),
    Route("/v3/users/{user_id}/application_credentials/{cred_id}", delete_appcred, methods=["DELETE"]),
]
