"""Helpers every image route uses: services, policy, Glance's error body, time format."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.policy import Enforcer
from kumo.core.web import JSONResponse, auth_context
from kumo.image.data import ImageData
from kumo.image.members import MemberService
from kumo.image.service import ImageService

MAX_BODY = 65536


def images(request: Request) -> ImageService:
    return request.app.state.images  # type: ignore[no-any-return]


def data(request: Request) -> ImageData:
    return request.app.state.data  # type: ignore[no-any-return]


def members(request: Request) -> MemberService:
    return request.app.state.members  # type: ignore[no-any-return]


async def authorize(request: Request, action: str, target: dict[str, Any] | None = None) -> AuthContext:
    ctx = await auth_context(request)
    enforcer: Enforcer = request.app.state.policy
    enforcer.enforce(action, ctx.policy_creds(), {"target": target or {"project_id": ctx.project_id}})
    return ctx


def isotime(value: dt.datetime | None) -> str | None:
    """Glance's timestamps: ``2015-11-29T22:21:42Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def render_error(err: errors.KumoError, request: Request) -> Response:
    """Glance answers with webob's JSON error: ``{"code": "404 Not Found", "title", "message"}``."""
    status = 413 if isinstance(err, errors.OverQuota) else err.status
    body = {"code": f"{status} {err.title}", "title": err.title, "message": err.message}
    return JSONResponse(body, status_code=status, headers=err.headers)
