"""The server JSON per microversion (Nova's ``views/servers.py``).

:func:`server_detail` is Nova's ``ViewBuilder.show``; its :class:`Parts`
are the ``show_*`` switches Nova's handlers pass: ``GET`` shows
everything, while ``PUT /servers/{id}`` and ``rebuild`` below 2.75 leave
out the availability zone, config drive, key name (rebuild shows it from
2.54), usage times, security groups, extended status and volumes, and the
admin-only extended attributes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from kumo.compute.api.common import api_root, at_least, links
from kumo.compute.api.views import nova_time
from kumo.compute.network import addresses
from kumo.compute.server_query import HOST_UNKNOWN, ServerRecord

PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")
FAULT_STATUSES = ("ERROR", "DELETED")


@dataclass(frozen=True)
class Parts:
    """Which optional groups of fields to render (Nova's ``show_*`` arguments)."""

    full: bool = True
    keypair: bool = True
    server_groups: bool = False
    user_data: bool = True


@dataclass(frozen=True)
class Visibility:
    """What policy lets this caller see: flavor extra specs (2.47), extended attributes, host status (2.16).

    ``host_status`` is None when hidden, ``"unknown-only"`` when only UNKNOWN may be shown, else ``"all"``.
    """

    extra_specs: bool = False
    extended: bool = False
    host_status: str | None = None


def isotime(value: dt.datetime | None) -> str | None:
    """Nova's ``utils.isotime``: ``2012-08-20T21:11:09Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def host_id(project_id: str, host: str | None) -> str:
    """Nova's ``generate_hostid``: sha224 of project + host, so projects cannot correlate hosts."""
    return hashlib.sha224((project_id + host).encode("utf-8")).hexdigest() if host else ""


def server_created(request: Request, uuid: str, security_groups: list[dict[str, str]] | None,
                   admin_pass: str, disk_config: str) -> dict[str, Any]:
    """``POST /servers``: id, links, disk config, the requested security groups, the password."""
    return {"server": {"id": uuid, "links": links(request, "servers", uuid), "OS-DCF:diskConfig": disk_config,
                       "security_groups": security_groups or [{"name": "default"}], "adminPass": admin_pass}}


def server_brief(request: Request, rec: ServerRecord) -> dict[str, Any]:
    return {"id": rec.uuid, "name": rec.name, "links": links(request, "servers", rec.uuid)}


def _image(request: Request, rec: ServerRecord) -> dict[str, Any] | str:
    if not rec.image_ref:
        return ""
    image_id = rec.image_ref.rstrip("/").split("/")[-1]
    return {"id": image_id, "links": [{"rel": "bookmark", "href": f"{api_root(request)}/images/{image_id}"}]}


def _flavor(request: Request, rec: ServerRecord, extra_specs: bool) -> dict[str, Any]:
    flavor = rec.flavor
    if not flavor:
        return {}
    if at_least(request, "2.47"):
        view = {"vcpus": flavor.get("vcpus"), "ram": flavor.get("memory_mb"), "disk": flavor.get("root_gb"),
                "ephemeral": flavor.get("ephemeral_gb"), "swap": flavor.get("swap"),
                "original_name": flavor.get("name")}
        if extra_specs:
            view["extra_specs"] = dict(flavor.get("extra_specs") or {})
        return view
    flavor_id = str(flavor.get("flavorid"))
    return {"id": flavor_id, "links": [{"rel": "bookmark", "href": f"{api_root(request)}/flavors/{flavor_id}"}]}


def _fault(rec: ServerRecord, is_admin: bool) -> dict[str, Any] | None:
    """Details only for admins, or when the fault is not a 500 (it may hold a traceback)."""
    if rec.fault is None:
        return None
    fault: dict[str, Any] = {"code": rec.fault.code, "created": isotime(rec.fault.created_at),
                             "message": rec.fault.message}
    if rec.fault.details and (is_admin or rec.fault.code != 500):
        fault["details"] = rec.fault.details
    return fault


def _extended_attributes(request: Request, rec: ServerRecord, parts: Parts) -> dict[str, Any]:
    meta = rec.system_metadata
    attrs: dict[str, Any] = {"OS-EXT-SRV-ATTR:host": rec.host,
                             "OS-EXT-SRV-ATTR:instance_name": meta.get("instance_name") or f"instance-{rec.uuid}",
                             "OS-EXT-SRV-ATTR:hypervisor_hostname": rec.node}
    if at_least(request, "2.3"):
        attrs.update({"OS-EXT-SRV-ATTR:hostname": rec.hostname, "OS-EXT-SRV-ATTR:kernel_id": meta.get("kernel_id", ""),
                      "OS-EXT-SRV-ATTR:launch_index": rec.launch_index,
                      "OS-EXT-SRV-ATTR:ramdisk_id": meta.get("ramdisk_id", ""),
                      "OS-EXT-SRV-ATTR:reservation_id": rec.reservation_id,
                      "OS-EXT-SRV-ATTR:root_device_name": meta.get("root_device_name")})
        if parts.user_data:
            attrs["OS-EXT-SRV-ATTR:user_data"] = rec.user_data
    return attrs


def server_detail(request: Request, rec: ServerRecord, seen: Visibility, *, is_admin: bool,
                  parts: Parts = Parts()) -> dict[str, Any]:
    """Nova's ``ViewBuilder.show`` for one server (no ``{"server": ...}`` wrapper)."""
    view: dict[str, Any] = {
        "accessIPv4": rec.access_ip_v4 or "", "accessIPv6": rec.access_ip_v6 or "",
        "addresses": addresses(rec.network_info), "created": isotime(rec.created_at), "flavor": _flavor(request, rec, seen.extra_specs),
        "hostId": host_id(rec.project_id, rec.host), "id": rec.uuid, "image": _image(request, rec),
        "links": links(request, "servers", rec.uuid), "metadata": dict(rec.metadata), "name": rec.name,
        "status": rec.status, "tenant_id": rec.project_id, "user_id": rec.user_id,
        "updated": isotime(rec.updated_at or rec.created_at),
        "OS-DCF:diskConfig": "AUTO" if rec.system_metadata.get("auto_disk_config") else "MANUAL",
    }
    if view["status"] in FAULT_STATUSES and (fault := _fault(rec, is_admin)) is not None:
        view["fault"] = fault
    if view["status"] in PROGRESS_STATUSES:
        view["progress"] = rec.progress
    if parts.full:
        view["OS-EXT-AZ:availability_zone"] = rec.availability_zone or ""
        view["config_drive"] = "True" if rec.config_drive else ""
    if parts.keypair:
        view["key_name"] = rec.key_name
    if parts.full:
        view["OS-SRV-USG:launched_at"] = nova_time(rec.launched_at)
        view["OS-SRV-USG:terminated_at"] = nova_time(rec.terminated_at)
        view["security_groups"] = [{"name": n} for n in rec.system_metadata.get("security_groups") or ["default"]]
        if seen.extended:
            view.update(_extended_attributes(request, rec, parts))
        view["OS-EXT-STS:task_state"] = rec.task_state
        view["OS-EXT-STS:vm_state"] = rec.vm_state
        view["OS-EXT-STS:power_state"] = rec.power_state
        view["os-extended-volumes:volumes_attached"] = []
    if at_least(request, "2.9"):
        view["locked"] = bool(rec.locked)
    if at_least(request, "2.16") and parts.full and seen.host_status is not None:
        if seen.host_status == "all" or rec.host_status == HOST_UNKNOWN:
            view["host_status"] = rec.host_status
    if at_least(request, "2.19"):
        view["description"] = rec.description
    if at_least(request, "2.26"):
        view["tags"] = list(rec.tags)
    if at_least(request, "2.63"):
        view["trusted_image_certificates"] = None
    if parts.server_groups:
        view["server_groups"] = list(rec.server_groups)
    if at_least(request, "2.73"):
        view["locked_reason"] = rec.locked_reason
    if at_least(request, "2.90") and not (parts.full and seen.extended):
        view["OS-EXT-SRV-ATTR:hostname"] = rec.hostname
    if parts.full and at_least(request, "2.96"):
        view["pinned_availability_zone"] = rec.system_metadata.get("requested_availability_zone")
    return view
