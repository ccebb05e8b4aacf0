"""``POST /v2.1/servers/{id}/action``: Nova's action controllers behind one route.

The body's single key picks the action, as Nova's ``action_peek``: not
JSON or not exactly one key is 400 "Malformed request body", an unknown key
400 "There is no such action: X" (both before the server is looked up).
Then, as in Nova: validate the action's body, find the server (404 for
other projects), check its policy on the server's project (403), act.

Answers are Nova's: 202 and no body, except ``confirmResize`` (204),
``createImage`` (``Location`` below 2.45, ``{"image_id"}`` from 2.45),
``os-getConsoleOutput`` (200 ``{"output"}``) and ``rebuild`` (the servers
module's). ``lock`` takes ``locked_reason`` from 2.73.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import action_body, at_least, authorize, deps, request_context
from kumo.compute.api.remote_consoles import LEGACY_ACTIONS
from kumo.compute.api.schemas import Strict
from kumo.compute.api.security_groups import add_security_group, remove_security_group
from kumo.compute.api.validation import Name, detail, invalid, one_of, parse
from kumo.compute.context import RequestContext
from kumo.compute.server_actions import InstanceRef, ServerActions, is_expected_locked_by
from kumo.core import errors
from kumo.core.web import auth_context, empty_response, json_response

SERVERS = "os_compute_api:servers:%s"
REBOOT_TYPES = ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]
_METADATA_KEY = re.compile(r"[a-zA-Z0-9-_:. ]{1,255}")


# ----------------------------------------------------------------------------- bodies

def _flavor_ref(value: Any) -> str:
    """``parameter_types.flavor_ref``: a non-empty string or an integer."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid(f"{value!r} is not of type 'string', 'integer'")
    if value == "":
        raise invalid("'' is too short")
    return str(value)


def _metadata(value: Any) -> dict[str, str]:
    """``parameter_types.metadata``: keys ``[a-zA-Z0-9-_:. ]{1,255}``, string values up to 255."""
    if not isinstance(value, dict):
        raise invalid(f"{value!r} is not of type 'object'")
    for key, item in value.items():
        if not _METADATA_KEY.fullmatch(key):
            raise detail(f"Additional properties are not allowed ('{key}' was unexpected)")
        if not isinstance(item, str):
            raise invalid(f"{item!r} is not of type 'string'")
        if len(item) > 255:
            raise invalid(f"'{item}' is too long")
    return dict(value)


def _length(value: Any) -> int | None:
    """Console ``length``: an integer (or digit string, may be negative) of at least -1, or null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise invalid(f"{value!r} is not of type 'integer', 'string', 'null'")
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]+", value):
            raise invalid(f"'{value}' does not match '^-?[0-9]+$'")
        value = int(value)
    if value < -1:
        raise invalid(f"{value} is less than the minimum of -1")
    return int(value)


def _reason(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(f"{value!r} is not of type 'string'")
    if not 1 <= len(value) <= 255:
        raise invalid(f"'{value}' is too {'short' if not value else 'long'}")
    return value


class Reboot(Strict):
    type: Annotated[str, one_of(REBOOT_TYPES)]


class Resize(Strict):
    flavorRef: Annotated[str, BeforeValidator(_flavor_ref)]  # Nova's field name
    disk_config: Annotated[str | None, one_of(["AUTO", "MANUAL"])] = Field(None, alias="OS-DCF:diskConfig")


class CreateImage(Strict):
    name: Name
    metadata: Annotated[dict[str, str], BeforeValidator(_metadata)] = Field(default_factory=dict)


class ConsoleOutput(Strict):
    length: Annotated[int | None, BeforeValidator(_length)] = None


class Lock(Strict):
    locked_reason: Annotated[str | None, BeforeValidator(_reason)] = None


class ResetState(Strict):
    state: Annotated[str, one_of(["active", "error"])]


class RebootBody(Strict):
    reboot: Reboot


class ResizeBody(Strict):
    resize: Resize


class CreateImageBody(Strict):
    create_image: CreateImage = Field(alias="createImage")


class ConsoleOutputBody(Strict):
    console: ConsoleOutput = Field(alias="os-getConsoleOutput")


class LockBody(Strict):
    lock: Lock | None


class ResetStateBody(Strict):
    reset: ResetState = Field(alias="os-resetState")


# ----------------------------------------------------------------------------- handlers

Handler = Callable[[Request, Any], Awaitable[Response]]


async def _target(request: Request, policy: str) -> tuple[RequestContext, InstanceRef, ServerActions]:
    """The server (404 unless visible), then ``policy`` on its project (Nova's order)."""
    ctx = request_context(request, await auth_context(request))
    actions = ServerActions(deps(request))
    inst = await actions.get(ctx, request.path_params["server_id"])
    await authorize(request, policy, {"project_id": inst.project_id, "user_id": inst.user_id})
    return ctx, inst, actions


def _transition(policy: str, name: str) -> Handler:
    """The actions with no arguments: stop, start, pause, unpause, suspend, resume, revertResize."""

    async def handler(request: Request, _value: Any) -> Response:
        ctx, inst, actions = await _target(request, policy)
        await actions.transition(ctx, inst, name)
        return empty_response(202)

    return handler


async def reboot(request: Request, value: Any) -> Response:
    body = parse(RebootBody, {"reboot": value}).reboot
    ctx, inst, actions = await _target(request, SERVERS % "reboot")
    await actions.reboot(ctx, inst, body.type.upper())
    return empty_response(202)


async def confirm_resize(request: Request, _value: Any) -> Response:
    ctx, inst, actions = await _target(request, SERVERS % "confirm_resize")
    await actions.transition(ctx, inst, "confirm_resize")
    return empty_response(204)  # Nova's historical 204 for this one


async def resize(request: Request, value: Any) -> Response:
    body = parse(ResizeBody, {"resize": value}).resize
    auth = await auth_context(request)
    ctx, inst, actions = await _target(request, SERVERS % "resize")
    await actions.resize(ctx, inst, auth, body.flavorRef)
    return empty_response(202)


async def create_image(request: Request, value: Any) -> Response:
    body = parse(CreateImageBody, {"createImage": value}).create_image
    ctx, inst, actions = await _target(request, SERVERS % "create_image")
    image = await actions.create_image(ctx, inst, body.name, body.metadata,
                                       check_metadata_quota=not at_least(request, "2.39"))
    if at_least(request, "2.45"):
        return json_response({"image_id": image["id"]}, status=202)
    location = f"{request.url.scheme}://{request.url.netloc}/image/images/{image['id']}"
    return empty_response(202, headers={"Location": location})


async def console_output(request: Request, value: Any) -> Response:
    body = parse(ConsoleOutputBody, {"os-getConsoleOutput": value}).console
    ctx, inst, actions = await _target(request, "os_compute_api:os-console-output")
    return json_response({"output": await actions.console_output(ctx, inst, body.length)})


async def lock(request: Request, value: Any) -> Response:
    reason = None
    if at_least(request, "2.73"):
        body = parse(LockBody, {"lock": value}).lock
        reason = body.locked_reason if body is not None else None
    ctx, inst, actions = await _target(request, "os_compute_api:os-lock-server:lock")
    await actions.lock(ctx, inst, reason)
    return empty_response(202)


async def unlock(request: Request, _value: Any) -> Response:
    ctx, inst, actions = await _target(request, "os_compute_api:os-lock-server:unlock")
    if not is_expected_locked_by(ctx, inst):
        await authorize(request, "os_compute_api:os-lock-server:unlock:unlock_override",
                        {"project_id": inst.project_id})
    await actions.unlock(ctx, inst)
    return empty_response(202)


async def reset_state(request: Request, value: Any) -> Response:
    body = parse(ResetStateBody, {"os-resetState": value}).reset
    ctx, inst, actions = await _target(request, "os_compute_api:os-admin-actions:reset_state")
    await actions.reset_state(ctx, inst, body.state)
    return empty_response(202)


async def rebuild(request: Request, value: Any) -> Response:
    """Delegated to the servers module (it owns the server view the answer carries)."""
    try:
        from kumo.compute.api.servers import rebuild_server
    except ImportError:
        raise errors.BadRequest("There is no such action: rebuild") from None
    response: Response = await rebuild_server(request, request.path_params["server_id"], value)
    return response


ACTIONS: dict[str, Handler] = {
    "reboot": reboot,
    "os-stop": _transition(SERVERS % "stop", "stop"),
    "os-start": _transition(SERVERS % "start", "start"),
    "pause": _transition("os_compute_api:os-pause-server:pause", "pause"),
    "unpause": _transition("os_compute_api:os-pause-server:unpause", "unpause"),
    "suspend": _transition("os_compute_api:os-suspend-server:suspend", "suspend"),
    "resume": _transition("os_compute_api:os-suspend-server:resume", "resume"),
    "lock": lock,
    "unlock": unlock,
    "resize": resize,
    "confirmResize": confirm_resize,
    "revertResize": _transition(SERVERS % "revert_resize", "revert_resize"),
    "createImage": create_image,
    "os-getConsoleOutput": console_output,
    "os-resetState": reset_state,
    "rebuild": rebuild,
    "addSecurityGroup": add_security_group,
    "removeSecurityGroup": remove_security_group,
    **LEGACY_ACTIONS,
}


async def server_action(request: Request) -> Response:
    key, value = await action_body(request)
    handler = ACTIONS.get(key)
    if handler is None:
        raise errors.BadRequest(f"There is no such action: {key}")
    return await handler(request, value)


routes = [Route("/v2.1/servers/{server_id}/action", server_action, methods=["POST"])]
