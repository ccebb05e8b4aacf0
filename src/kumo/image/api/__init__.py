"""The Glance v2 REST API, mounted at ``/image``."""

from __future__ import annotations

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from kumo.core.auth import TokenValidator
from kumo.core.policy import Enforcer
from kumo.core.web import service_app
from kumo.image.api import data, images, members, schemas, versions
from kumo.image.api.common import render_error
from kumo.image.data import ImageData
from kumo.image.members import MemberService
from kumo.image.service import ImageService

ROUTE_MODULES = [versions, images, data, members, schemas]


def is_public(method: str, path: str) -> bool:
    """Only version discovery needs no token."""
    return path in ("/", "/v2", "/v2/") and method in ("GET", "HEAD")


def create_app(service: ImageService, image_data: ImageData, policy: Enforcer, validator: TokenValidator) -> ASGIApp:
    routes: list[BaseRoute] = [r for module in ROUTE_MODULES for r in module.routes]
    state = {"images": service, "data": image_data, "members": MemberService(service), "policy": policy}
    return service_app(routes, renderer=render_error, validator=validator, public=is_public, state=state)
