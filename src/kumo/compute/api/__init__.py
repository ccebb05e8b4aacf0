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

from kumo.compute.api import (
    aggregates,
    availability_zones,
    flavor_access,
    flavor_extra_specs,
    flavors,
    hypervisors,
    instance_actions,
    interfaces,
    keypairs,
    limits,
    os_services,
    quota_sets,
    remote_consoles,
    security_groups,
    server_actions,
    server_groups,
    server_metadata,
    server_tags,
    servers,
    usage,
    versions,
)
from kumo.compute.api.common import VERSION_PREFIX, MicroversionMiddleware, render_error, www_authenticate
from kumo.compute.deps import ComputeDeps
from kumo.core.auth import TokenValidator
from kumo.core.policy import Enforcer
from kumo.core.web import service_app

ROUTE_MODULES = [versions, flavors, flavor_extra_specs, flavor_access, keypairs, servers, server_actions,
                 server_metadata, server_tags, instance_actions, server_groups, os_services, hypervisors,
                 availability_zones, aggregates, quota_sets, limits, usage, remote_consoles,
                 security_groups, interfaces]
PUBLIC_PATHS = {"/", VERSION_PREFIX, VERSION_PREFIX + "/"}


def is_public(method: str, path: str) -> bool:
    """Only version discovery needs no token."""
    return path in PUBLIC_PATHS and method in ("GET", "HEAD")


def create_app(deps: ComputeDeps, policy: Enforcer, validator: TokenValidator,
               project_exists: Callable[[str], Awaitable[bool]] | None = None) -> ASGIApp:
    """The compute API. ``project_exists`` lets flavor access and quotas refuse unknown projects (Nova asks Keystone)."""
    routes: list[BaseRoute] = [r for module in ROUTE_MODULES for r in module.routes]
    state = {"deps": deps, "flavors": deps.flavors, "keypairs": deps.keypairs, "policy": policy,
             "project_exists": project_exists}
    app = service_app(routes, renderer=render_error, validator=validator, public=is_public,
                      www_authenticate=www_authenticate, state=state)
    return MicroversionMiddleware(app)
