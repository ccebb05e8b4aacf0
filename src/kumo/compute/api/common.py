"""What every compute route shares: Nova's error body, microversions, policy, links.

* :func:`render_error` writes Nova's fault body, ``{"itemNotFound": {"code":
  404, "message": ...}}``, keyed by status as ``nova/api/openstack/wsgi.py``'s
  ``Fault`` does. Quota errors are 403 ``forbidden`` (Nova raises
  ``HTTPForbidden`` for them).
* :class:`MicroversionMiddleware` negotiates the version of every request
  under ``/v2.1`` (``OpenStack-API-Version: compute 2.x`` or the legacy
  ``X-OpenStack-Nova-API-Version``) and echoes it on every response, errors
  included, with ``Vary``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.compute.context import RequestContext
from kumo.compute.deps import ComputeDeps
from kumo.compute.flavors import FlavorService
from kumo.compute.keypairs import KeypairService
from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.microversion import APIVersion, negotiate, response_headers
from kumo.core.policy import Enforcer
from kumo.core.web import JSONResponse, auth_context, read_json

SERVICE_TYPE = "compute"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
MIN_VERSION = APIVersion(2, 1)
#: The highest microversion served; every change up to it is implemented for the routes that exist.
MAX_VERSION = APIVersion(2, 96)
VERSION_PREFIX = "/v2.1"
#: Nova's ``[api] max_limit``: the most items one list page returns.
MAX_LIMIT = 1000
#: Nova's (oslo.middleware sizelimit) largest request body.
MAX_BODY = 114688

VERSION_KEY = "kumo.compute.version"

FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
               501: "notImplemented", 503: "serviceUnavailable"}


def render_error(err: errors.KumoError, request: Request) -> Response:
    status = 403 if isinstance(err, errors.OverQuota) else err.status
    name = FAULT_NAMES.get(status, "computeFault")
    headers = dict(err.headers)
    if status == 401 and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = www_authenticate(request)
    return JSONResponse({name: {"code": status, "message": err.message}}, status_code=status, headers=headers)


def www_authenticate(request: Request) -> str:
    """Where to get a token, as keystonemiddleware says it (the identity service of this node)."""
    return f'Keystone uri="{request.url.scheme}://{request.url.netloc}/identity"'


class MicroversionMiddleware:
    """Negotiates the compute microversion and adds the version headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _versioned(scope):
            await self.app(scope, receive, send)
            return
        try:
            version = negotiate(Headers(scope=scope), SERVICE_TYPE, MIN_VERSION, MAX_VERSION, LEGACY_HEADER)
        except errors.KumoError as err:
            await render_error(err, Request(scope))(scope, receive, send)
            return
        scope[VERSION_KEY] = version
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                 for k, v in response_headers(SERVICE_TYPE, version, LEGACY_HEADER).items()]

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_version)


def _versioned(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path == VERSION_PREFIX or path.startswith(VERSION_PREFIX + "/")


# ----------------------------------------------------------------------------- request helpers

def version(request: Request) -> APIVersion:
    """The negotiated microversion of this request."""
    return request.scope.get(VERSION_KEY, MIN_VERSION)  # type: ignore[no-any-return]


def at_least(request: Request, text: str) -> bool:
    """Nova's ``api_version_request.is_supported(req, '2.x')``."""
    return version(request) >= APIVersion.parse(text)


def require_version(request: Request, text: str) -> None:
    """A route that exists only from ``text`` is a 404 below it (Nova's VersionNotFoundForAPIMethod)."""
    if not at_least(request, text):
        raise errors.NotFound("The resource could not be found.")


def deps(request: Request) -> ComputeDeps:
    """The node's compute collaborators (database, bus stubs, image client, settings)."""
    return request.app.state.deps  # type: ignore[no-any-return]


def request_context(request: Request, ctx: AuthContext) -> RequestContext:
    """The bus form of the caller, with this request's id (what instance actions are keyed by)."""
    return RequestContext.from_auth(ctx, request.scope.get("state", {}).get("request_id"))


def flavors(request: Request) -> FlavorService:
    return request.app.state.flavors  # type: ignore[no-any-return]


def keypairs(request: Request) -> KeypairService:
    return request.app.state.keypairs  # type: ignore[no-any-return]


async def authorize(request: Request, action: str, target: Mapping[str, Any] | None = None) -> AuthContext:
    """Policy check with Nova's target (``{"project_id": ...}`` or ``{"user_id": ...}``)."""
    ctx = await auth_context(request)
    enforcer: Enforcer = request.app.state.policy
    enforcer.enforce(action, ctx.policy_creds(), {"target": dict(target or {"project_id": ctx.project_id})})
    return ctx


def allowed(request: Request, ctx: AuthContext, action: str, target: Mapping[str, Any]) -> bool:
    """A non-fatal policy check (Nova's ``context.can(..., fatal=False)``)."""
    enforcer: Enforcer = request.app.state.policy
    return enforcer.check(action, ctx.policy_creds(), {"target": dict(target)})


def check_query(request: Request, allowed_params: set[str], strict_from: str = "2.75") -> None:
    """From 2.75 Nova refuses query parameters it does not know (400); below, it ignores them."""
    if not at_least(request, strict_from):
        return
    for name in request.query_params:
        if name not in allowed_params:
            raise errors.BadRequest(f"Additional properties are not allowed ('{name}' was unexpected)")


def query_one(request: Request, name: str, choices: Sequence[str] | None = None) -> str | None:
    """The last value of ``name``, checked against ``choices`` (Nova's query schema enums)."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    value = values[-1]
    if choices is not None and value not in choices:
        raise errors.BadRequest(f"Invalid input for query parameters {name}. Value: {value}. "
                                f"'{value}' is not one of {list(choices)}")
    return value


def page_offset(request: Request) -> int:
    """Nova's ``limited``: ``offset`` is a non-negative integer (the last one given)."""
    values = request.query_params.getlist("offset")
    if not values:
        return 0
    raw = values[-1].strip()
    if not raw.isdigit():
        raise errors.BadRequest(f"Invalid input for query parameters offset. Value: {raw}. "
                                f"'{raw}' does not match '^[0-9]*$'")
    return int(raw)


def page_limit(request: Request) -> tuple[int, str | None]:
    """Nova's ``get_limit_and_marker``: ``limit`` capped at :data:`MAX_LIMIT`, which is also the default."""
    values = request.query_params.getlist("limit")
    limit = MAX_LIMIT
    if values:
        raw = values[-1].strip()
        if not raw.isdigit():
            raise errors.BadRequest(f"Invalid input for query parameters limit. Value: {raw}. "
                                    f"'{raw}' does not match '^[0-9]*$'")
        limit = min(MAX_LIMIT, int(raw))
    markers = request.query_params.getlist("marker")
    return limit, (markers[-1] if markers else None)


# ----------------------------------------------------------------------------- links

def api_root(request: Request) -> str:
    """``http://host/compute``: the mount point, without the version."""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


def links(request: Request, collection: str, identifier: str) -> list[dict[str, str]]:
    """Nova's ``self`` (versioned) and ``bookmark`` (unversioned) links of a resource."""
    root = api_root(request)
    return [{"rel": "self", "href": f"{root}{VERSION_PREFIX}/{collection}/{identifier}"},
            {"rel": "bookmark", "href": f"{root}/{collection}/{identifier}"}]


def collection_links(request: Request, items: Sequence[Mapping[str, Any]], collection: str, id_key: str,
                     limit: int) -> list[dict[str, str]]:
    """Nova's ``_get_collection_links``: a ``next`` link when the page is full.

    The next URL repeats the request's query parameters (sorted, one value
    each, as Nova's ``_get_next_link``) with ``marker`` moved to the last item.
    """
    if not limit or len(items) != limit:
        return []
    params = dict(sorted(request.query_params.items()))
    params["marker"] = str(items[-1][id_key])
    href = f"{api_root(request)}{VERSION_PREFIX}/{collection}?{urlencode(params)}"
    return [{"rel": "next", "href": href}]


async def action_body(request: Request) -> tuple[str, Any]:
    """``(action, value)`` of an ``/action`` body; Nova's "Malformed request body" unless it is one JSON key.

    Nova's ``action_peek``: the key picks the action before anything is looked up.
    """
    try:
        body = await read_json(request, MAX_BODY)
    except errors.PayloadTooLarge:
        raise
    except errors.BadRequest:
        raise errors.BadRequest("Malformed request body") from None
    if not isinstance(body, dict) or len(body) != 1:
        raise errors.BadRequest("Malformed request body")
    key = next(iter(body))
    return key, body[key]
