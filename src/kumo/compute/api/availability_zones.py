"""``/v2.1/os-availability-zone``: Nova's ``AvailabilityZoneController``.

* ``GET /os-availability-zone``: zones with an enabled service are
  available, zones whose services are all disabled are not; the
  ``internal`` zone (conductor, scheduler) is hidden; ``hosts`` is null.
* ``GET /os-availability-zone/detail`` (admin): every zone, ``internal``
  included, with ``{host: {binary: {available, active, updated_at}}}`` for
  the enabled services of available zones (``available`` is up/down).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import authorize, deps
from kumo.compute.api.views import nova_time
from kumo.compute.host_services import INTERNAL_ZONE, HostServices
from kumo.core.web import json_response

POLICY = "os_compute_api:os-availability-zone:%s"


def _services(request: Request) -> HostServices:
    d = deps(request)
    return HostServices(d.db, d.service_down_time, d.options.default_availability_zone)


def _zone(name: str, available: bool, hosts: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"zoneName": name, "zoneState": {"available": available}, "hosts": hosts}


async def list_zones(request: Request) -> Response:
    await authorize(request, POLICY % "list", {})
    available, unavailable, _services_seen = await _services(request).zones()
    info = [_zone(z, True) for z in available if z != INTERNAL_ZONE]
    info += [_zone(z, False) for z in unavailable if z != INTERNAL_ZONE]
    return json_response({"availabilityZoneInfo": info})


async def list_zones_detail(request: Request) -> Response:
    await authorize(request, POLICY % "detail", {})
    available, unavailable, services = await _services(request).zones()
    hosts: dict[str, dict[str, dict[str, Any]]] = {}
    for sv in services:
        if sv.disabled:
            continue
        entry = hosts.setdefault(sv.zone, {}).setdefault(sv.host, {})
        entry[sv.binary] = {"available": sv.up, "active": True, "updated_at": nova_time(sv.updated_at)}
    info = [_zone(z, True, hosts.get(z, {})) for z in available]
    info += [_zone(z, False) for z in unavailable]
    return json_response({"availabilityZoneInfo": info})


routes = [
    Route("/v2.1/os-availability-zone", list_zones, methods=["GET"]),
    Route("/v2.1/os-availability-zone/detail", list_zones_detail, methods=["GET"]),
]
