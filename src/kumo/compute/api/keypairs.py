"""``/v2.1/os-keypairs``: Nova's ``KeypairController`` across microversions.

* 2.2: ``type`` (ssh/x509); create answers 201 instead of 200, delete 204 instead of 202.
* 2.10: admins may act on another user's key pairs with ``user_id``.
* 2.35: ``limit``/``marker`` paging with ``keypairs_links``.
* 2.75: unknown query parameters are a 400.
* 2.92: ``public_key`` is required (no more server-side generation); names may contain ``@`` and ``.``.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api import views
from kumo.compute.api.common import at_least, authorize, check_query, collection_links, keypairs, page_limit
from kumo.compute.api.schemas import KeypairCreateBody, reject_newer_fields
from kumo.compute.api.validation import parse_body
from kumo.core import errors
from kumo.core.web import auth_context, empty_response, json_response

POLICY = "os_compute_api:os-keypairs:%s"
NAME_PATTERN = r"^[_\- a-zA-Z0-9]+$"
NAME_PATTERN_V292 = r"^[_\-\@\. a-zA-Z0-9]+$"


async def _target_user(request: Request, action: str) -> tuple[str | None, str]:
    """``(caller's project, user whose key pairs these are)`` after the policy check.

    From 2.10 ``?user_id=`` names another user (Nova takes the first value);
    policy lets only admins use it for someone else.
    """
    check_query(request, {"user_id", "limit", "marker"} if action == "index" else {"user_id"})
    ctx = await auth_context(request)
    requested = request.query_params.getlist("user_id") if at_least(request, "2.10") else []
    user_id = requested[0] if requested else ctx.user_id
    await authorize(request, POLICY % action, {"user_id": user_id})
    return ctx.project_id, user_id


async def list_keypairs(request: Request) -> Response:
    _project, user_id = await _target_user(request, "index")
    paged = at_least(request, "2.35")
    limit, marker = page_limit(request) if paged else (None, None)
    found = await keypairs(request).list(user_id, limit, marker)
    body: dict[str, object] = {"keypairs": [views.keypair_brief(request, k) for k in found]}
    if paged and limit is not None:
        next_links = collection_links(request, [{"name": k.name} for k in found], "os-keypairs", "name", limit)
        if next_links:
            body["keypairs_links"] = next_links
    return json_response(body)


async def create_keypair(request: Request) -> Response:
    ctx = await auth_context(request)
    body = (await parse_body(request, KeypairCreateBody)).keypair
    reject_newer_fields(body, {"type": at_least(request, "2.2"), "user_id": at_least(request, "2.10")})
    v292 = at_least(request, "2.92")
    pattern = NAME_PATTERN_V292 if v292 else NAME_PATTERN
    if not re.match(pattern, body.name):
        raise errors.ValidationError(f"Invalid input for field/attribute name. Value: {body.name}. "
                                     f"'{body.name}' does not match '{pattern}'")
    if v292 and body.public_key is None:
        raise errors.ValidationError("'public_key' is a required property")
    user_id = body.user_id or ctx.user_id
    await authorize(request, POLICY % "create", {"user_id": user_id})
    service = keypairs(request)
    if body.public_key is not None:
        keypair = await service.import_keypair(ctx.project_id, user_id, body.name, body.public_key, body.type)
        private_key = None
    else:
        keypair, private_key = await service.generate_keypair(ctx.project_id, user_id, body.name, body.type)
    status = 201 if at_least(request, "2.2") else 200
    return json_response(views.keypair_created(request, keypair, private_key), status=status)


async def show_keypair(request: Request) -> Response:
    _project, user_id = await _target_user(request, "show")
    keypair = await keypairs(request).get(user_id, request.path_params["name"])
    return json_response(views.keypair_full(request, keypair))


async def delete_keypair(request: Request) -> Response:
    _project, user_id = await _target_user(request, "delete")
    await keypairs(request).delete(user_id, request.path_params["name"])
    return empty_response(204 if at_least(request, "2.2") else 202)


routes = [
    Route("/v2.1/os-keypairs", list_keypairs, methods=["GET"]),
    Route("/v2.1/os-keypairs", create_keypair, methods=["POST"]),
    Route("/v2.1/os-keypairs/{name}", show_keypair, methods=["GET"]),
    Route("/v2.1/os-keypairs/{name}", delete_keypair, methods=["DELETE"]),
]
