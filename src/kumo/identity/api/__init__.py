"""The Keystone v3 REST API, mounted at ``/identity``.

Each module holds the routes of one collection; handlers are thin: parse
and validate the body, check policy, call :class:`IdentityService`, render
Keystone's JSON.
"""

from __future__ import annotations

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from kumo.core.policy import Enforcer
from kumo.core.web import service_app
from kumo.identity.api import appcreds, auth, catalog, domains, grants, groups, projects, roles, users, versions
from kumo.identity.api.common import render_error, www_authenticate
from kumo.identity.service import IdentityService

ROUTE_MODULES = [versions, auth, projects, domains, users, groups, appcreds, roles, grants, catalog]

PUBLIC = {("GET", "/"), ("HEAD", "/"), ("GET", "/v3"), ("HEAD", "/v3"), ("GET", "/v3/"), ("HEAD", "/v3/"),
          ("POST", "/v3/auth/tokens")}


def is_public(method: str, path: str) -> bool:
    """Version documents, token issue and password change need no token; everything else does."""
    if method == "POST" and path.startswith("/v3/users/") and path.endswith("/password"):
        return path.count("/") == 4
    return (method, path) in PUBLIC


def create_app(identity: IdentityService, policy: Enforcer) -> ASGIApp:
    routes: list[BaseRoute] = [r for module in ROUTE_MODULES for r in module.routes]
    return service_app(routes, renderer=render_error, validator=identity.validator, public=is_public,
                       www_authenticate=www_authenticate, state={"identity": identity, "policy": policy})
