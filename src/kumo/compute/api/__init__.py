"""The Nova v2.1 REST API, mounted at ``/compute``.

Each module holds one controller's routes, as Nova's
``nova/api/openstack/compute``; handlers are thin: negotiate the
microversion (middleware), check policy, validate, call the service,
render Nova's JSON for that microversion.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from kumo.compute.api import flavor_access, flavor_extra_specs, flavors, keypairs, versions
from kumo.compute.api.common import VERSION_PREFIX, MicroversionMiddleware, render_error, www_authenticate
from kumo.compute.flavors import FlavorService
from kumo.compute.keypairs import KeypairService
from kumo.core.auth import TokenValidator
from kumo.core.policy import Enforcer
from kumo.core.web import service_app

ROUTE_MODULES = [versions, flavors, flavor_extra_specs, flavor_access, keypairs]
PUBLIC_PATHS = {"/", VERSION_PREFIX, VERSION_PREFIX + "/"}


def is_public(method: str, path: str) -> bool:
    """Only version discovery needs no token."""
    return path in PUBLIC_PATHS and method in ("GET", "HEAD")


def create_app(flavor_service: FlavorService, keypair_service: KeypairService, policy: Enforcer,
               validator: TokenValidator, project_exists: Callable[[str], Awaitable[bool]] | None = None) -> ASGIApp:
    """The compute API. ``project_exists`` lets flavor access refuse unknown projects (Nova asks Keystone)."""
    routes: list[BaseRoute] = [r for module in ROUTE_MODULES for r in module.routes]
    state = {"flavors": flavor_service, "keypairs": keypair_service, "policy": policy,
             "project_exists": project_exists}
    app = service_app(routes, renderer=render_error, validator=validator, public=is_public,
                      www_authenticate=www_authenticate, state=state)
    return MicroversionMiddleware(app)
