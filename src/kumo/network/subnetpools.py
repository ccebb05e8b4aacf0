"""Subnet pools: prefixes a project's subnets are carved from (Neutron's ``subnet_allocation``).

A pool holds one IP version's prefixes, kept merged; a subnet created with
``subnetpool_id`` either names its cidr, which must lie inside the pool and
not overlap another subnet of the pool, or asks for a size (``prefixlen``,
else the pool's ``default_prefixlen``) and gets the lowest free block. The
pool row is locked while a subnet is carved, so two concurrent requests
never get overlapping blocks. Prefixes may only grow; a pool with subnets
cannot be deleted. ``shared`` and ``is_default`` are the admin's (policy);
one default pool per IP version serves ``use_default_subnetpool``.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.db import Database
from kumo.network.common import (
    SUBNETPOOL_COLUMNS,
    Caller,
    Filters,
    drop_tags,
    narrowed,
    standard_view,
    tags_of,
    touch,
)
from kumo.network.errors import Conflict, InUse, Invalid, NotFound, PolicyNotAuthorized
from kumo.network.models import Subnet, SubnetPool

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MIN_PREFIXLEN = {4: 8, 6: 64}  # Neutron's defaults when a pool names none


def parse_prefixes(raw: Any) -> list[IPNetwork]:
    """The pool's prefixes as networks, one IP version, merged (``10.0.0.0/25`` + ``10.0.0.128/25`` = one /24)."""
    if not isinstance(raw, list) or not raw:
        raise Invalid("Empty subnet pool prefix list.", "EmptySubnetPoolPrefixList")
    nets = []
    for item in raw:
        try:
            nets.append(ipaddress.ip_network(str(item), strict=True))
        except ValueError:
            raise Invalid(f"Invalid CIDR {item} given as IP prefix.", "InvalidCIDR") from None
    if len({n.version for n in nets}) > 1:
        raise Invalid("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.", "PrefixVersionMismatch")
    return list(ipaddress.collapse_addresses(nets))  # type: ignore[arg-type]


def check_bounds(version: int, minimum: int, default: int, maximum: int) -> None:
    """0 <= min <= default <= max <= the address width (Neutron's IllegalSubnetPoolPrefixBounds)."""
    width = 32 if version == 4 else 128
    for name, value in (("min_prefixlen", minimum), ("default_prefixlen", default), ("max_prefixlen", maximum)):
        if not 0 <= value <= width:
            raise Invalid(f"Illegal prefix bounds: {name}={value}, max_prefixlen={width}.",
                       "IllegalSubnetPoolPrefixBounds")
    if default < minimum:
        raise Invalid(f"Illegal prefix bounds: default_prefixlen={default}, min_prefixlen={minimum}.",
                   "IllegalSubnetPoolPrefixBounds")
    if maximum < default:
        raise Invalid(f"Illegal prefix bounds: max_prefixlen={maximum}, default_prefixlen={default}.",
                   "IllegalSubnetPoolPrefixBounds")


def carve(prefixes: Iterable[IPNetwork], taken: Iterable[IPNetwork], prefixlen: int) -> IPNetwork | None:
    """The lowest block of ``/prefixlen`` inside ``prefixes`` that overlaps nothing ``taken``."""
    used = sorted(taken, key=lambda n: (int(n.network_address), n.prefixlen))
    for prefix in sorted(prefixes, key=lambda n: int(n.network_address)):
        if prefixlen < prefix.prefixlen:
            continue
        size = 1 << (prefix.max_prefixlen - prefixlen)
        start, end = int(prefix.network_address), int(prefix.broadcast_address)
        candidate = start
        while candidate + size - 1 <= end:
            block = ipaddress.ip_network((candidate, prefixlen))
            clash = next((u for u in used if u.overlaps(block)), None)
            if clash is None:
                return block
            # jump past the clash, to the next block boundary
            after = int(clash.broadcast_address) + 1
            candidate = max(candidate + size, -(-after // size) * size)
    return None


class SubnetPoolService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def visible(self, s: AsyncSession, caller: Caller, pool_id: str, *, lock: bool = False) -> SubnetPool:
        stmt = select(SubnetPool).where(SubnetPool.id == pool_id)
        row = await s.scalar(stmt.with_for_update() if lock else stmt)
        if row is None or not (caller.owns(row.project_id) or row.shared):
            raise NotFound("SubnetPool", pool_id)
        return row

    async def list(self, caller: Caller, filters: Filters | None = None) -> list[dict[str, Any]]:
        stmt = narrowed(select(SubnetPool), SubnetPool, filters, SUBNETPOOL_COLUMNS)
        if not caller.is_admin:
            stmt = stmt.where((SubnetPool.project_id == caller.project_id) | SubnetPool.shared)
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
            tags = await tags_of(s, "subnetpools", [r.id for r in rows])
        return [view(r, tags[r.id]) for r in rows]

    async def get(self, caller: Caller, pool_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await self.visible(s, caller, pool_id)
            return view(row, (await tags_of(s, "subnetpools", [row.id]))[row.id])

    async def create(self, caller: Caller, values: dict[str, Any]) -> dict[str, Any]:
        if values.get("address_scope_id"):
            raise Invalid("Address scopes are not supported by this cloud.", "InvalidInput")
        prefixes = parse_prefixes(values.get("prefixes"))
        version = prefixes[0].version
        minimum = values.get("min_prefixlen", MIN_PREFIXLEN[version])
        maximum = values.get("max_prefixlen", 32 if version == 4 else 128)
        default = values.get("default_prefixlen", minimum)
        check_bounds(version, minimum, default, maximum)
        async with self.db.session() as s:
            row = SubnetPool(id=str(uuid.uuid4()), project_id=values.get("project_id") or values.get("tenant_id")
                             or caller.project_id, name=values.get("name", ""),
                             description=values.get("description", ""), ip_version=version,
                             prefixes=[str(p) for p in prefixes], default_prefixlen=default, min_prefixlen=minimum,
                             max_prefixlen=maximum, shared=values.get("shared", False),
                             is_default=values.get("is_default", False), default_quota=values.get("default_quota"))
            if row.is_default:
                await self._one_default(s, version, None)
            s.add(row)
            await s.flush()
            return view(row, [])

    async def update(self, caller: Caller, pool_id: str, values: dict[str, Any]) -> dict[str, Any]:
        if values.get("address_scope_id"):
            raise Invalid("Address scopes are not supported by this cloud.", "InvalidInput")
        async with self.db.session() as s:
            row = await self.visible(s, caller, pool_id, lock=True)
            if not caller.owns(row.project_id):
                raise PolicyNotAuthorized("rule:update_subnetpool")
            if "prefixes" in values:
                merged = parse_prefixes(values["prefixes"])
                if merged[0].version != row.ip_version:
                    raise Invalid("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.", "PrefixVersionMismatch")
                old = [ipaddress.ip_network(p) for p in row.prefixes]
                if not all(any(o.subnet_of(n) for n in merged) for o in old):  # type: ignore[arg-type]
                    raise Invalid("Illegal update to prefixes: Existing prefixes must be a subset of the new "
                               "prefixes.", "IllegalSubnetPoolPrefixUpdate")
                row.prefixes = [str(p) for p in merged]
            bounds = {k: values.get(k, getattr(row, k)) for k in ("min_prefixlen", "default_prefixlen",
                                                                  "max_prefixlen")}
            check_bounds(row.ip_version, bounds["min_prefixlen"], bounds["default_prefixlen"],
                         bounds["max_prefixlen"])
            for key in ("name", "description", "default_quota", "is_default", *bounds):
                if key in values:
                    setattr(row, key, values[key])
            if values.get("is_default"):
                await self._one_default(s, row.ip_version, row.id)
            touch(row)
            await s.flush()
            return view(row, (await tags_of(s, "subnetpools", [row.id]))[row.id])

    async def delete(self, caller: Caller, pool_id: str) -> None:
        async with self.db.session() as s:
            row = await self.visible(s, caller, pool_id, lock=True)
            if not caller.owns(row.project_id):
                raise PolicyNotAuthorized("rule:delete_subnetpool")
            if await s.scalar(select(func.count()).select_from(Subnet).where(Subnet.subnetpool_id == pool_id)):
                raise InUse(f"Unable to complete operation on subnet pool {pool_id}. Subnets are allocated "
                            "from it.", "SubnetPoolInUse")
            await drop_tags(s, "subnetpools", pool_id)
            await s.delete(row)

    async def default_pool(self, s: AsyncSession, caller: Caller, version: int) -> SubnetPool:
        """``use_default_subnetpool``: the one default pool of the IP version (Neutron's 400 when none)."""
        pool_id = await s.scalar(select(SubnetPool.id).where(SubnetPool.is_default,
                                                             SubnetPool.ip_version == version))
        if pool_id is None:
            raise Invalid(f"No default subnetpool found for IPv{version}", "BadRequest")
        return await self.visible(s, caller, pool_id, lock=True)

    async def allocate(self, s: AsyncSession, pool: SubnetPool, wanted: IPNetwork | None, prefixlen: int | None,
                       ip_version: int | None) -> IPNetwork:
        """A subnet's cidr from ``pool`` (locked by the caller): the asked one if it fits, else the lowest free
        block of ``prefixlen`` (the pool's default size when not given)."""
        if ip_version is not None and ip_version != pool.ip_version:
            raise Invalid(f"Cannot allocate IPv{ip_version} subnet from IPv{pool.ip_version} subnet pool",
                       "BadRequest")
        prefixes = [ipaddress.ip_network(p) for p in pool.prefixes]
        # A locking read: under MariaDB's repeatable read a plain SELECT would still show the snapshot taken
        # before the pool lock was granted, without the block the previous holder just carved.
        taken = [ipaddress.ip_network(c) for c in await s.scalars(
            select(Subnet.cidr).where(Subnet.subnetpool_id == pool.id).with_for_update())]
        if wanted is not None:
            self._check_size(pool, wanted.prefixlen)
            if wanted.version != pool.ip_version or not any(wanted.subnet_of(p) for p in prefixes):  # type: ignore[arg-type]
                raise Conflict("Failed to allocate subnet: Cannot allocate requested subnet from the available "
                               "set of prefixes.", "SubnetAllocationError")
            if any(wanted.overlaps(t) for t in taken):  # type: ignore[arg-type]
                raise Conflict(f"Failed to allocate subnet: Cannot allocate requested subnet {wanted} from the "
                               "available set of prefixes.", "SubnetAllocationError")
            block = wanted
        else:
            size = prefixlen if prefixlen is not None else pool.default_prefixlen
            self._check_size(pool, size)
            found = carve(prefixes, taken, size)
            if found is None:
                raise Conflict(f"Failed to allocate subnet: Insufficient prefix space to allocate subnet size "
                               f"/{size}.", "SubnetAllocationError")
            block = found
        touch(pool)
        return block

    @staticmethod
    def _check_size(pool: SubnetPool, prefixlen: int) -> None:
        if prefixlen < pool.min_prefixlen:
            raise Invalid(f"Unable to allocate subnet with prefix length {prefixlen}, minimum allowed prefix is "
                       f"{pool.min_prefixlen}.", "MinPrefixSubnetAllocationError")
        if prefixlen > pool.max_prefixlen:
            raise Invalid(f"Unable to allocate subnet with prefix length {prefixlen}, maximum allowed prefix is "
                       f"{pool.max_prefixlen}.", "MaxPrefixSubnetAllocationError")

    @staticmethod
    async def _one_default(s: AsyncSession, version: int, skip: str | None) -> None:
        other = await s.scalar(select(SubnetPool.id).where(SubnetPool.is_default, SubnetPool.ip_version == version,
                                                           SubnetPool.id != (skip or "")))
        if other is not None:
            raise Invalid("A default subnetpool for this IP family has already been set. Only one default may exist "
                       "per IP family", "InvalidInput")


def view(row: SubnetPool, tags: list[str]) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "ip_version": row.ip_version, "prefixes": list(row.prefixes),
            "default_prefixlen": row.default_prefixlen, "min_prefixlen": row.min_prefixlen,
            "max_prefixlen": row.max_prefixlen, "shared": row.shared, "is_default": row.is_default,
            "default_quota": row.default_quota, "address_scope_id": None, **standard_view(row, tags)}
