"""The Neutron v2.0 REST API, mounted at ``/network``."""

from __future__ import annotations

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from kumo.core.auth import TokenValidator
from kumo.core.policy import Enforcer
from kumo.core.web import service_app
from kumo.network.api import agents, collections, extensions, quotas, tags, versions
from kumo.network.api.common import render_error
from kumo.network.service import Neutron

ROUTE_MODULES = [versions, extensions, quotas, tags, agents, collections]


def is_public(method: str, path: str) -> bool:
    """Only version discovery needs no token."""
    return path in ("/", "/v2.0", "/v2.0/") and method in ("GET", "HEAD")


def create_app(service: Neutron, policy: Enforcer, validator: TokenValidator) -> ASGIApp:
    routes: list[BaseRoute] = [r for module in ROUTE_MODULES for r in module.routes]
    return service_app(routes, renderer=render_error, validator=validator, public=is_public,
                       state={"neutron": service, "policy": policy})
