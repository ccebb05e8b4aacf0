"""``/v2.1/os-services``: Nova's ``ServiceController`` across microversions.

* 2.11: ``forced_down`` in every service, and the ``force-down`` action.
* Below 2.53: ``PUT /os-services/{enable,disable,disable-log-reason,force-down}``
  with ``{"host", "binary", ...}``, answered with the body's fields; ids are
  integers.
* 2.53: ids are uuids; ``PUT /os-services/{uuid}`` with ``status``,
  ``disabled_reason`` and/or ``forced_down`` answers the whole service.
* 2.75: unknown query parameters are a 400.
* Only ``nova-compute`` services can be updated; ``DELETE`` refuses (409) a
  compute service that still hosts instances.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import at_least, authorize, check_query, deps
from kumo.compute.api.schemas import Strict
from kumo.compute.api.validation import NovaBool, invalid, parse_body
from kumo.compute.api.views import nova_time
from kumo.compute.host_services import HostServices, ServiceInfo, is_uuid_like
from kumo.core import errors
from kumo.core.web import empty_response, json_response

POLICY = "os_compute_api:os-services:%s"


def _fqdn(value: Any) -> str:
    """Nova's ``parameter_types.fqdn``: 1-255 of ``[a-zA-Z0-9-._]``."""
    if not isinstance(value, str):
        raise invalid(f"{value!r} is not of type 'string'")
    if not value:
        raise invalid("'' is too short")
    if len(value) > 255:
        raise invalid(f"'{value}' is too long")
    if not all(c.isascii() and (c.isalnum() or c in "-._") for c in value):
        raise invalid(f"'{value}' does not match '^[a-zA-Z0-9-._]*$'")
    return value


def _text255(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(f"{value!r} is not of type 'string'")
    if not value:
        raise invalid("'' is too short")
    if len(value) > 255:
        raise invalid(f"'{value}' is too long")
    return value


def _status(value: Any) -> str:
    if value not in ("enabled", "disabled"):
        shown = f"'{value}'" if isinstance(value, str) else repr(value)
        raise invalid(f"{shown} is not one of ['enabled', 'disabled']")
    return str(value)


Host = Annotated[str, BeforeValidator(_fqdn)]
Text255 = Annotated[str, BeforeValidator(_text255)]
Status = Annotated[Literal["enabled", "disabled"], BeforeValidator(_status)]


class LegacyServiceUpdate(Strict):
    """Nova's ``update`` / ``update_v211`` schemas (below 2.53)."""

    host: Host
    binary: Text255
    disabled_reason: Text255 | None = None
    forced_down: NovaBool | None = None  # 2.11+


class ServiceUpdate(Strict):
    """Nova's ``update_v253`` schema: nothing required, checked in code."""

    status: Status | None = None
    disabled_reason: Text255 | None = None
    forced_down: NovaBool | None = None


def _services(request: Request) -> HostServices:
    d = deps(request)
    return HostServices(d.db, d.service_down_time, d.options.default_availability_zone)


def service_view(request: Request, sv: ServiceInfo) -> dict[str, Any]:
    """Nova's ``_get_service_detail`` (``forced_down`` from 2.11, uuid ids from 2.53)."""
    view: dict[str, Any] = {
        "binary": sv.binary, "host": sv.host,
        "id": sv.uuid if at_least(request, "2.53") else sv.legacy_id,
        "zone": sv.zone, "status": "disabled" if sv.disabled else "enabled",
        "state": "up" if sv.up else "down", "updated_at": nova_time(sv.updated_at),
        "disabled_reason": sv.disabled_reason,
    }
    if at_least(request, "2.11"):
        view["forced_down"] = sv.forced_down
    return view


async def list_services(request: Request) -> Response:
    await authorize(request, POLICY % "list", {})
    check_query(request, {"host", "binary"})
    host = request.query_params.get("host") or None
    binary = request.query_params.get("binary") or None
    found = await _services(request).list(host=host, binary=binary)
    return json_response({"services": [service_view(request, sv) for sv in found]})


async def update_service(request: Request) -> Response:
    if at_least(request, "2.53"):
        return await _update_v253(request)
    return await _update_legacy(request)


async def _update_legacy(request: Request) -> Response:
    """``PUT /os-services/<action>`` with the service named by host and binary."""
    body = await parse_body(request, LegacyServiceUpdate)
    if body.forced_down is not None and not at_least(request, "2.11"):
        raise errors.ValidationError("Additional properties are not allowed ('forced_down' was unexpected)")
    await authorize(request, POLICY % "update", {})
    action = request.path_params["service_id"]
    actions = {"enable", "disable", "disable-log-reason"} | ({"force-down"} if at_least(request, "2.11") else set())
    if action not in actions:
        raise errors.NotFound("Unknown action")
    services = _services(request)
    result: dict[str, Any] = {"host": body.host, "binary": body.binary}
    if action == "force-down":
        if body.forced_down is None:
            raise errors.BadRequest("Missing forced_down field")
        await services.update_by_host(body.host, body.binary, forced_down=body.forced_down)
        result["forced_down"] = body.forced_down
        return json_response({"service": result})
    reason: str | None = None
    if action == "disable-log-reason":
        if body.disabled_reason is None:
            raise errors.BadRequest("Missing disabled reason field")
        reason = body.disabled_reason
    disabled = action != "enable"
    result["status"] = "disabled" if disabled else "enabled"
    if reason:
        result["disabled_reason"] = reason
    await services.update_by_host(body.host, body.binary, disabled=disabled, disabled_reason=reason)
    return json_response({"service": result})


async def _update_v253(request: Request) -> Response:
    """``PUT /os-services/{uuid}``: status and/or forced_down; the whole service back."""
    body = await parse_body(request, ServiceUpdate)
    service_id = request.path_params["service_id"]
    if not is_uuid_like(service_id):
        raise errors.BadRequest(f"Invalid uuid {service_id}")
    await authorize(request, POLICY % "update", {})
    values: dict[str, Any] = {}
    if body.status == "enabled":
        if body.disabled_reason:
            raise errors.BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
        values.update(disabled=False, disabled_reason=None)
    elif body.status == "disabled":
        values.update(disabled=True, disabled_reason=body.disabled_reason)
    if body.forced_down is not None:
        values["forced_down"] = body.forced_down
    updated = await _services(request).update(service_id, by_uuid=True, **values)
    return json_response({"service": service_view(request, updated)})


async def delete_service(request: Request) -> Response:
    await authorize(request, POLICY % "delete", {})
    service_id = request.path_params["service_id"]
    by_uuid = at_least(request, "2.53")
    if by_uuid and not is_uuid_like(service_id):
        raise errors.BadRequest(f"Invalid uuid {service_id}")
    if not by_uuid and not _is_integer(service_id):
        raise errors.BadRequest("Invalid input received: id must be an integer")
    await _services(request).delete(service_id, by_uuid=by_uuid)
    return empty_response(204)


def _is_integer(value: str) -> bool:
    """oslo's ``strutils.validate_integer``: ``int()`` must accept it."""
    try:
        int(value)
    except ValueError:
        return False
    return True


routes = [
    Route("/v2.1/os-services", list_services, methods=["GET"]),
    Route("/v2.1/os-services/{service_id}", update_service, methods=["PUT"]),
    Route("/v2.1/os-services/{service_id}", delete_service, methods=["DELETE"]),
]
