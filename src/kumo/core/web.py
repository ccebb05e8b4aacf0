"""Web plumbing shared by every REST API.

* :func:`service_app` builds one service's ASGI app from its routes, its
  error renderer (each OpenStack service has its own historical error body)
  and the token validator, with authentication enforced on every route that
  is not explicitly public.
* :class:`RequestIdMiddleware` gives every response an
  ``x-openstack-request-id`` (as oslo.middleware's request_id does).
* :func:`read_json` / :func:`parse_body` read bodies with a size cap and
  validate them with pydantic, turning every failure into a clear 400/413.
* :func:`root_app` mounts the service apps at their paths (``/identity``...).
"""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
import pydantic
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.core import errors
from kumo.core.auth import AuthContext, TokenValidator

log = logging.getLogger("kumo.web")

ErrorRenderer = Callable[[errors.KumoError, Request], Response]
Handler = Callable[[Request], Awaitable[Response]]
PublicPredicate = Callable[[str, str], bool]
M = TypeVar("M", bound=pydantic.BaseModel)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

AUTH_KEY = "kumo.auth"


class JSONResponse(Response):
    """JSON rendered with orjson (several times faster than the stdlib).

    orjson refuses integers beyond 64 bits, which the API does produce (an
    IPv6 /64's address count); such a body falls back to the stdlib encoder,
    which writes them exactly, as Neutron does.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:
            return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, status_code=status, headers=headers)


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=headers)


class RequestIdMiddleware:
    """Adds ``x-openstack-request-id: req-<uuid>`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        header = (b"x-openstack-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class ErrorMiddleware:
    """Turns any exception into the service's error body; never a traceback.

    Sits inside the service app so that 500s still carry the service's format
    and the request id; the traceback goes to the server log only.
    """

    def __init__(self, app: ASGIApp, renderer: ErrorRenderer) -> None:
        self.app = app
        self.renderer = renderer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if started:
                log.exception("error after response started")
                raise
            err = exc if isinstance(exc, errors.KumoError) else _from_http_exception(exc)
            if err is None:
                log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
                err = errors.KumoError()
            response = self.renderer(err, Request(scope))
            await response(scope, receive, send)


def _from_http_exception(exc: Exception) -> errors.KumoError | None:
    """The router's own 404/405 as Kumo errors, rendered like every other error."""
    if not isinstance(exc, HTTPException):
        return None
    mapped: dict[int, type[errors.KumoError]] = {404: errors.NotFound, 405: errors.MethodNotAllowed}
    return mapped.get(exc.status_code, errors.BadRequest)()


class AuthMiddleware:
    """Validates ``X-Auth-Token`` and puts the :class:`AuthContext` in the scope.

    Routes that ``public(method, path)`` accepts may be called without a
    token (version documents, ``POST /v3/auth/tokens``); a token sent to them
    is still validated lazily by :func:`auth_context`. Everything else gets
    a 401 without a valid token.
    """

    def __init__(self, app: ASGIApp, validator: TokenValidator, public: PublicPredicate, renderer: ErrorRenderer,
                 www_authenticate: Callable[[Request], str] | None = None) -> None:
        self.app = app
        self.validator = validator
        self.public = public
        self.renderer = renderer
        self.www_authenticate = www_authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["kumo.validator"] = self.validator
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        if not self.public(scope["method"], path):
            token = _header(scope, b"x-auth-token")
            try:
                if not token:
                    raise errors.Unauthorized()
                scope[AUTH_KEY] = await self.validator.validate(token)
            except errors.KumoError as exc:
                err = exc if exc.status == 401 else errors.Unauthorized()
                request = Request(scope)
                if self.www_authenticate is not None:
                    err.headers = {**err.headers, "WWW-Authenticate": self.www_authenticate(request)}
                await self.renderer(err, request)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def auth_context(request: Request) -> AuthContext:
    """The caller's validated token; 401 when there is none (for public routes)."""
    ctx = request.scope.get(AUTH_KEY)
    if ctx is not None:
        return ctx  # type: ignore[no-any-return]
    token = request.headers.get("x-auth-token")
    validator: TokenValidator | None = request.scope.get("kumo.validator")
    if not token or validator is None:
        raise errors.Unauthorized()
    try:
        ctx = await validator.validate(token)
    except errors.NotFound as exc:
        raise errors.Unauthorized() from exc
    request.scope[AUTH_KEY] = ctx
    return ctx


async def read_json(request: Request, max_size: int, *, allow_empty: bool = False) -> Any:
    """The request body as JSON: 413 past ``max_size`` bytes, 400 when malformed.

    An empty body is a 400 too, or ``None`` with ``allow_empty`` (for APIs
    that word that case themselves, as Neutron's "Resource body required").
    """
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > max_size:
                raise errors.PayloadTooLarge()
        except ValueError as exc:
            raise errors.BadRequest("Invalid Content-Length header.") from exc
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_size:
            raise errors.PayloadTooLarge()
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        if allow_empty:
            return None
        raise errors.BadRequest("The request body is empty; a JSON document is required.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest("Malformed request body: it is not valid JSON.") from exc


def validation_message(exc: pydantic.ValidationError) -> str:
    """One readable line per problem: ``Invalid input for field 'user.name': ...``."""
    parts = []
    for item in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in item["loc"])
        kind = item.get("type")
        if kind == "missing":
            parts.append(f"'{loc}' is a required property")
        elif kind == "extra_forbidden":
            parts.append(f"Additional properties are not allowed ('{loc}' was unexpected)")
        else:
            parts.append(f"Invalid input for field '{loc}': {item['msg']}")
    return "; ".join(parts) or "Invalid input."


def parse_model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise errors.ValidationError(validation_message(exc)) from exc


async def parse_body(request: Request, model: type[M], max_size: int = 114688) -> M:
    """Read, size-check, parse and validate a JSON body into ``model``."""
    return parse_model(model, await read_json(request, max_size))


class ServiceApp:
    """A service's router plus its ``state`` (what handlers reach as ``request.app.state``).

    Starlette's Router is used directly, without the Starlette application
    wrapper and its two extra middleware layers: errors are handled once, by
    :class:`ErrorMiddleware`, and this is on every request's path.
    """

    def __init__(self, routes: Sequence[BaseRoute], state: dict[str, Any]) -> None:
        self.router = Router(routes=list(routes))
        self.state = State(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self  # makes the router raise HTTPException for 404/405
        await self.router(scope, receive, send)


def service_app(
    routes: Sequence[BaseRoute],
    *,
    renderer: ErrorRenderer,
    validator: TokenValidator,
    public: PublicPredicate,
    www_authenticate: Callable[[Request], str] | None = None,
    state: dict[str, Any] | None = None,
) -> ASGIApp:
    """One service's ASGI app: routes behind auth and error handling."""
    app = ServiceApp(routes, state or {})
    guarded: ASGIApp = AuthMiddleware(app, validator, public, renderer, www_authenticate)
    return ErrorMiddleware(guarded, renderer)


class PathDispatcher:
    """Sends each request to the service mounted at its path prefix.

    Like Starlette's Mount, the prefix moves into ``root_path`` and ``path``
    stays whole; unlike it, there is no per-request routing table to walk.
    """

    def __init__(self, mounts: Iterable[tuple[str, ASGIApp]], root: Handler | None = None) -> None:
        self.mounts = [(prefix.rstrip("/"), app) for prefix, app in mounts]
        self.root = root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        path: str = scope["path"]
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                if path == prefix:
                    scope["path"] = path + "/"
                scope["root_path"] = scope.get("root_path", "") + prefix
                await app(scope, receive, send)
                return
        if self.root is not None and path == "/" and scope["type"] == "http":
            response = await self.root(Request(scope, receive))
        else:
            response = JSONResponse({"error": {"code": 404, "title": "Not Found",
                                               "message": "No service is mounted at this path."}}, status_code=404)
        await response(scope, receive, send)


def root_app(mounts: Iterable[tuple[str, ASGIApp]], root: Handler | None = None) -> ASGIApp:
    """Mount each service at its path and add request ids to everything."""
    return RequestIdMiddleware(PathDispatcher(mounts, root))


class PortDispatcher:
    """One HTTP server, several listening sockets: each request goes to the app of the port it arrived on.

    A node serves its REST APIs, the metadata API (guests' side, Nova's port
    8775) and the console proxy (browsers' side, 6080) on separate ports, so
    each can be firewalled or put behind its own balancer, but in one uvicorn
    server and one event loop.
    """

    def __init__(self, apps: dict[int, ASGIApp]) -> None:
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        server = scope.get("server") or (None, None)
        app = self.apps.get(server[1]) if server else None
        if app is None:
            if scope["type"] == "http":
                await JSONResponse({"error": {"code": 404, "title": "Not Found", "message": "Nothing listens here."}},
                                   status_code=404)(scope, receive, send)
            return
        await app(scope, receive, send)
