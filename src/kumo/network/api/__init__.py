"""The Neutron v2.0 REST API, mounted at ``/network``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.core.auth import TokenValidator
from kumo.core.policy import Enforcer
from kumo.core.web import service_app
from kumo.network.api import agents, collections, extensions, ip_availability, quotas, tags, versions
from kumo.network.api.common import render_error
from kumo.network.service import Neutron

ROUTE_MODULES = [versions, extensions, quotas, tags, agents, ip_availability, collections]


def is_public(method: str, path: str) -> bool:
    """Only version discovery needs no token."""
    return path in ("/", "/v2.0", "/v2.0/") and method in ("GET", "HEAD")


def create_app(service: Neutron, policy: Enforcer, validator: TokenValidator,
               on_change: Callable[[], Awaitable[None]] | None = None) -> ASGIApp:
    """The API; ``on_change`` runs after every successful write (it tells the network agents to sync)."""
    routes: list[BaseRoute] = [r for module in ROUTE_MODULES for r in module.routes]
    app = service_app(routes, renderer=render_error, validator=validator, public=is_public,
                      state={"neutron": service, "policy": policy})
    return app if on_change is None else _Notifying(app, on_change)


class _Notifying:
    """Calls ``on_change`` once a POST/PUT/DELETE has answered 2xx (the response is already on its way)."""

    def __init__(self, app: ASGIApp, on_change: Callable[[], Awaitable[None]]) -> None:
        self.app = app
        self.on_change = on_change

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if 200 <= status < 300:
            await self.on_change()
