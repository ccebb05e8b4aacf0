"""Helpers every identity route uses: policy, links, collections, errors."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.policy import Enforcer
from kumo.core.web import JSONResponse, auth_context
from kumo.identity.service import IdentityService

MAX_BODY = 114688  # Keystone's max_request_body_size


def service(request: Request) -> IdentityService:
    return request.app.state.identity  # type: ignore[no-any-return]


def base_url(request: Request) -> str:
    """``http://host:port/identity``: where this API is, as the client reached it."""
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


async def authorize(request: Request, action: str, target: dict[str, Any] | None = None) -> AuthContext:
    """The caller's context, after the policy allowed ``action`` on ``target``."""
    ctx = await auth_context(request)
    enforcer: Enforcer = request.app.state.policy
    enforcer.enforce(action, ctx.policy_creds(), {"target": target or {}})
    return ctx


def with_links(request: Request, collection: str, item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "links": {"self": f"{base_url(request)}/v3/{collection}/{item['id']}"}}


def collection(request: Request, key: str, items: list[dict[str, Any]], path: str | None = None,
               collection_path: str | None = None) -> dict[str, Any]:
    """Keystone's list body: ``{key: [...], "links": {"self", "previous", "next"}}``."""
    item_path = collection_path or key
    self_url = f"{base_url(request)}/v3/{path or key}"
    if request.url.query:
        self_url += f"?{request.url.query}"
    return {key: [with_links(request, item_path, i) for i in items],
            "links": {"self": self_url, "previous": None, "next": None}}


def render_error(err: errors.KumoError, request: Request) -> Response:
    """Keystone's error body: ``{"error": {"code", "title", "message"}}``."""
    headers = dict(err.headers)
    if err.status == 401 and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = www_authenticate(request)
    body = {"error": {"code": err.status, "title": err.title, "message": err.message}}
    return JSONResponse(body, status_code=err.status, headers=headers)


def www_authenticate(request: Request) -> str:
    return f'Keystone uri="{base_url(request)}"'


def query_dict(request: Request) -> dict[str, str]:
    return dict(request.query_params)
