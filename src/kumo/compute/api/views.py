"""Flavors and key pairs as Nova shows them, per microversion (``nova/api/openstack/compute/views``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request

from kumo.compute.api.common import at_least, links
from kumo.compute.flavors import FlavorRecord
from kumo.compute.keypairs import KeypairRecord


def flavor_brief(request: Request, flavor: FlavorRecord) -> dict[str, Any]:
    """``GET /flavors`` items: id, name, links (+ description from 2.55)."""
    view: dict[str, Any] = {"id": flavor.flavorid, "name": flavor.name,
                            "links": links(request, "flavors", flavor.flavorid)}
    if at_least(request, "2.55"):
        view["description"] = flavor.description
    return view


def flavor_full(request: Request, flavor: FlavorRecord, include_extra_specs: bool = False) -> dict[str, Any]:
    """The full flavor: ``swap`` is ``""`` when 0 below 2.75 (then 0), ``description`` from 2.55,
    ``extra_specs`` from 2.61 when policy lets the caller read them."""
    view: dict[str, Any] = {
        "id": flavor.flavorid,
        "name": flavor.name,
        "ram": flavor.memory_mb,
        "disk": flavor.root_gb,
        "swap": flavor.swap or (0 if at_least(request, "2.75") else ""),
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": flavor.disabled,
        "vcpus": flavor.vcpus,
        "os-flavor-access:is_public": flavor.is_public,
        "rxtx_factor": flavor.rxtx_factor or "",
        "links": links(request, "flavors", flavor.flavorid),
    }
    if at_least(request, "2.55"):
        view["description"] = flavor.description
    if include_extra_specs:
        view["extra_specs"] = dict(flavor.extra_specs)
    return view


def flavor_access(flavorid: str, projects: list[str]) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavorid, "tenant_id": p} for p in projects]}


def nova_time(value: dt.datetime | None) -> str | None:
    """Nova's primitive datetimes: ``2014-05-07T12:06:13.681238`` (UTC, no zone suffix)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def keypair_brief(request: Request, keypair: KeypairRecord) -> dict[str, Any]:
    """``GET /os-keypairs`` items (``type`` from 2.2)."""
    view: dict[str, Any] = {"name": keypair.name, "public_key": keypair.public_key,
                            "fingerprint": keypair.fingerprint}
    if at_least(request, "2.2"):
        view["type"] = keypair.type
    return {"keypair": view}


def keypair_created(request: Request, keypair: KeypairRecord, private_key: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {}
    if private_key is not None:
        view["private_key"] = private_key
    if at_least(request, "2.2"):
        view["type"] = keypair.type
    view.update(name=keypair.name, public_key=keypair.public_key, fingerprint=keypair.fingerprint,
                user_id=keypair.user_id)
    return {"keypair": view}


def keypair_full(request: Request, keypair: KeypairRecord) -> dict[str, Any]:
    """``GET /os-keypairs/{name}``: with Nova's (always empty) soft-delete fields."""
    view: dict[str, Any] = {"name": keypair.name, "public_key": keypair.public_key,
                            "fingerprint": keypair.fingerprint, "user_id": keypair.user_id,
                            "created_at": nova_time(keypair.created_at), "deleted": False, "deleted_at": None,
                            "id": keypair.id, "updated_at": nova_time(keypair.updated_at)}
    if at_least(request, "2.2"):
        view["type"] = keypair.type
    return {"keypair": view}
