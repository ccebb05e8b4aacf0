"""Remote consoles: ``POST /servers/{id}/remote-consoles`` (2.6+), the old per-type actions (2.1-2.5)
and ``GET /os-console-auth-tokens/{token}`` (2.31+, admin).

Kumo serves ``vnc``/``novnc`` and ``serial``/``serial``. The other
protocols Nova knows (spice, rdp, mks) are valid requests that answer 400
"Unavailable console type", as a Nova whose ``[spice]``/``[mks]`` consoles
are disabled does; a protocol/type pair that does not belong together is
"Invalid console type". Below 2.6 the same consoles come from
``os-getVNCConsole``/``os-getSerialConsole`` (``{"console": {"type", "url"}}``);
from 2.6 those actions are gone (404), as in Nova.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import Field, create_model

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import MAX_BODY, at_least, authorize, deps, request_context
from kumo.compute.api.schemas import Strict
from kumo.compute.api.validation import one_of, parse
from kumo.compute.consoles import find_token
from kumo.compute.server_actions import ServerActions
from kumo.core import errors
from kumo.core.web import auth_context, json_response, read_json

POLICY = "os_compute_api:os-remote-consoles"
TOKEN_POLICY = "os_compute_api:os-console-auth-tokens"
PROTOCOLS = ("vnc", "spice", "serial", "rdp")
TYPES = ("novnc", "xvpvnc", "spice-html5", "serial", "rdp-html5")
#: protocol -> the types that belong to it.
PAIRS = {"vnc": ("novnc", "xvpvnc"), "spice": ("spice-html5", "spice-direct"), "serial": ("serial",),
         "rdp": ("rdp-html5",), "mks": ("webmks",)}
SERVED = {("vnc", "novnc"), ("serial", "serial")}
Handler = Callable[[Request, Any], Awaitable[Response]]


def _remote_console_body(protocols: tuple[str, ...], types: tuple[str, ...]) -> type[Strict]:
    """Nova's ``remote_consoles.create`` schema for one microversion range (the enums grow with 2.8 and 2.99)."""

    class RemoteConsole(Strict):
        protocol: Annotated[str, one_of(list(protocols))]
        type: Annotated[str, one_of(list(types))]

    class Body(Strict):
        remote_console: RemoteConsole

    return Body


BODY_26 = _remote_console_body(PROTOCOLS, TYPES)
BODY_28 = _remote_console_body((*PROTOCOLS, "mks"), (*TYPES, "webmks"))
BODY_299 = _remote_console_body((*PROTOCOLS, "mks"), (*TYPES, "webmks", "spice-direct"))


def _parse(request: Request, body: Any) -> tuple[str, str]:
    model = BODY_299 if at_least(request, "2.99") else BODY_28 if at_least(request, "2.8") else BODY_26
    console = parse(model, body).remote_console  # type: ignore[attr-defined]
    return str(console.protocol), str(console.type)


async def _console_url(request: Request, console_type: str, *, legacy: bool) -> str:
    ctx = request_context(request, await auth_context(request))
    actions = ServerActions(deps(request))
    inst = await actions.get(ctx, request.path_params["server_id"])
    await authorize(request, POLICY, {"project_id": inst.project_id, "user_id": inst.user_id})
    return await actions.remote_console(ctx, inst, console_type,
                                        state_error=errors.Conflict if legacy else errors.BadRequest)


async def create_remote_console(request: Request) -> Response:
    if not at_least(request, "2.6"):
        raise errors.NotFound("The resource could not be found.")
    protocol, console_type = _parse(request, await read_json(request, MAX_BODY))
    if console_type not in PAIRS.get(protocol, ()):
        raise errors.BadRequest(f"Invalid console type {console_type}")
    if (protocol, console_type) not in SERVED:
        raise errors.BadRequest(f"Unavailable console type {console_type if protocol != 'rdp' else 'rdp'}.")
    url = await _console_url(request, console_type, legacy=False)
    return json_response({"remote_console": {"protocol": protocol, "type": console_type, "url": url}})


def _legacy(action: str, allowed: tuple[str, ...], served: tuple[str, ...]) -> Handler:
    """``os-getVNCConsole`` and friends: 2.1-2.5 only; ``{"console": {"type", "url"}}``."""

    class Console(Strict):
        type: Annotated[str, one_of(list(allowed))]

    body_model = create_model(f"{action}Body", __base__=Strict, console=(Console, Field(alias=action)))

    async def handler(request: Request, value: Any) -> Response:
        if at_least(request, "2.6"):
            raise errors.NotFound("The resource could not be found.")
        console_type = str(parse(body_model, {action: value}).console.type)  # type: ignore[attr-defined]
        if console_type not in served:
            raise errors.BadRequest(f"Unavailable console type {console_type}.")
        url = await _console_url(request, console_type, legacy=True)
        return json_response({"console": {"type": console_type, "url": url}})

    return handler


#: The pre-2.6 console actions; ``server_actions`` dispatches them with the other actions.
LEGACY_ACTIONS: dict[str, Handler] = {
    "os-getVNCConsole": _legacy("os-getVNCConsole", ("novnc", "xvpvnc"), ("novnc",)),
    "os-getSerialConsole": _legacy("os-getSerialConsole", ("serial",), ("serial",)),
    "os-getSPICEConsole": _legacy("os-getSPICEConsole", ("spice-html5",), ()),
    "os-getRDPConsole": _legacy("os-getRDPConsole", ("rdp-html5",), ()),
}


async def show_console_auth_token(request: Request) -> Response:
    """Nova's ``console_auth_tokens.show``: where a token leads, for operators (admin)."""
    if not at_least(request, "2.31"):
        raise errors.BadRequest("The requested console type details are not accessible")
    await authorize(request, TOKEN_POLICY, {})
    row = await find_token(deps(request).db, request.path_params["console_token"])
    if row is None:
        raise errors.NotFound("Token not found")
    return json_response({"console": {"instance_uuid": row.instance_uuid, "host": row.host, "port": row.port,
                                      "internal_access_path": row.internal_access_path}})


routes = [
    Route("/v2.1/servers/{server_id}/remote-consoles", create_remote_console, methods=["POST"]),
    Route("/v2.1/os-console-auth-tokens/{console_token}", show_console_auth_token, methods=["GET"]),
]
