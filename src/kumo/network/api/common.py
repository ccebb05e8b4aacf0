"""What every network route shares: the caller, the services, policy, Neutron's error body."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kumo.core import errors
from kumo.core.policy import Enforcer
from kumo.core.web import JSONResponse, auth_context, read_json
from kumo.network.common import Caller
from kumo.network.errors import BadRequest, NeutronError, PolicyNotAuthorized
from kumo.network.service import Neutron

MAX_BODY = 1 << 20  # Neutron's api max_request_body_size default (1 MiB)
DEFAULT_TYPES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden", 404: "HTTPNotFound",
                 405: "HTTPMethodNotAllowed", 409: "HTTPConflict", 413: "HTTPRequestEntityTooLarge",
                 415: "HTTPUnsupportedMediaType"}


def render_error(err: errors.KumoError, request: Request) -> Response:
    """``{"NeutronError": {"type", "message", "detail"}}`` with Neutron's type names."""
    if isinstance(err, errors.PolicyDenied):
        err = PolicyNotAuthorized(f"rule:{err.action}")
    status = err.status
    kind = err.neutron_type if isinstance(err, NeutronError) else DEFAULT_TYPES.get(status, "NeutronException")
    message = err.message if status < 500 else "Request Failed: internal server error while processing your request."
    return JSONResponse({"NeutronError": {"type": kind, "message": message, "detail": ""}}, status_code=status,
                        headers=err.headers)


def neutron(request: Request) -> Neutron:
    return request.app.state.neutron  # type: ignore[no-any-return]


async def caller(request: Request) -> Caller:
    return Caller.of(await auth_context(request))


async def authorize(request: Request, action: str, target: dict[str, Any] | None = None) -> Caller:
    """Enforce ``action`` (Neutron's rule names: ``create_network`` ...) on the caller's project."""
    ctx = await auth_context(request)
    enforcer: Enforcer = request.app.state.policy
    enforcer.enforce(action, ctx.policy_creds(), {"target": target or {"project_id": ctx.project_id}})
    return Caller.of(ctx)


def check_attribute_rules(request: Request, ctx_creds: dict[str, Any], action: str, keys: list[str]) -> None:
    """Neutron's per-attribute rules (``create_network:shared``): one composed message for the denied ones."""
    enforcer: Enforcer = request.app.state.policy
    denied = [k for k in keys if not enforcer.check(f"{action}:{k}", ctx_creds, {})]
    if denied:
        rules = " and ".join([f"rule:{action}", *(f"rule:{action}:{k}" for k in denied)])
        raise PolicyNotAuthorized(f"({rules})")


async def body(request: Request) -> Any:
    """The JSON body, read under the size cap; an empty one is ``None`` ("Resource body required" upstream)."""
    try:
        return await read_json(request, MAX_BODY, allow_empty=True)
    except errors.PayloadTooLarge:
        raise
    except errors.BadRequest:
        raise BadRequest("Body contains invalid data") from None


async def has_body(request: Request) -> bool:
    """Whether the request carries any bytes, reading no further than the first non-empty chunk."""
    async for chunk in request.stream():
        if chunk.strip():
            return True
    return False
