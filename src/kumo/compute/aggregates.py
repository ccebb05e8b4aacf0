"""Host aggregates and the availability zones they make (Nova's ``AggregateAPI`` and ``objects.Aggregate``).

An aggregate is a named group of compute hosts with string metadata. The
metadata key ``availability_zone`` makes it an availability zone: a
compute host's zone is that of the aggregate(s) it is in, else
``compute.default_availability_zone`` (:func:`host_zones`). Nova's rules:

* names are unique (409); ``availability_zone`` given to create/update is
  stored as that metadata key, and can never be emptied or unset (400);
* a host cannot be in two aggregates with different zones (409 on
  ``add_host``, 400 when an aggregate's zone changes); nor can a host with
  instances change zone through add/remove (409) or an aggregate with such
  hosts be renamed to another zone (400): instances do not move zones;
* ``add_host`` needs a ``nova-compute`` service of exactly that host name
  (404), and removing a host that is not a member is a 404;
* an aggregate with hosts cannot be deleted (400).

Membership and zone changes lock the aggregate rows, then the compute
service rows of the hosts concerned (name order), so two concurrent
requests cannot put one host into two zones on a server database.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute.instances import COMPUTE_BINARY
from kumo.compute.models import Aggregate, AggregateHost, AggregateMetadata, Instance
from kumo.core import errors
from kumo.core.db import Database, retry_deadlocks, utcnow
from kumo.core.models import ServiceRecord

AZ_KEY = "availability_zone"

_MOVE_REASON = ("The host cannot be {verb} the aggregate as the availability zone of the host would change from "
                "'{old}' to '{new}' but the host already has {count} instance(s). Changing the AZ of an existing "
                "instance is not supported by this action. Move the instances away from this host then try again. "
                "If you need to move the instances between AZs then you can use shelve_offload and unshelve to "
                "achieve this.")


@dataclass(frozen=True)
class AggregateRecord:
    id: int
    uuid: str
    name: str
    created_at: dt.datetime
    updated_at: dt.datetime | None
    deleted_at: dt.datetime | None
    hosts: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def availability_zone(self) -> str | None:
        return self.metadata.get(AZ_KEY)


# ----------------------------------------------------------------------------- zones

async def host_zones(s: AsyncSession, hosts: Iterable[str] | None = None) -> dict[str, str]:
    """The zone of every host that is in an aggregate with a zone (only of ``hosts`` when given).

    Hosts missing from the answer are in the default zone. The rules keep a
    host in one zone; should two ever meet, they are joined with a comma,
    as Nova's ``set_availability_zones`` does.
    """
    stmt = (select(AggregateHost.host, AggregateMetadata.key, AggregateMetadata.value)
            .join(AggregateMetadata, AggregateMetadata.aggregate_id == AggregateHost.aggregate_id)
            .where(AggregateMetadata.key == AZ_KEY))
    if hosts is not None:
        wanted = sorted(set(hosts))
        if not wanted:
            return {}
        stmt = stmt.where(AggregateHost.host.in_(wanted))
    zones: dict[str, set[str]] = defaultdict(set)
    for host, key, value in await s.execute(stmt):
        if key == AZ_KEY:  # exact: MySQL compares case-insensitively
            zones[str(host)].add(str(value))
    return {host: ",".join(sorted(found)) for host, found in zones.items()}


# ----------------------------------------------------------------------------- errors (Nova's wording)

def not_found(aggregate_id: int | str) -> errors.NotFound:
    return errors.NotFound(f"Aggregate {aggregate_id} could not be found.")


def host_not_found(host: str) -> errors.NotFound:
    return errors.NotFound(f"Compute host {host} could not be found.")


def _invalid_add(aggregate_id: int, reason: str) -> errors.Conflict:
    return errors.Conflict(f"Cannot add host to aggregate {aggregate_id}. Reason: {reason}.")


def _invalid_remove(aggregate_id: int, reason: str) -> errors.Conflict:
    return errors.Conflict(f"Cannot remove host from aggregate {aggregate_id}. Reason: {reason}.")


def _invalid_update(aggregate_id: int, reason: str) -> errors.BadRequest:
    return errors.BadRequest(f"Cannot update aggregate {aggregate_id}. Reason: {reason}.")


def _invalid_update_meta(aggregate_id: int, reason: str) -> errors.BadRequest:
    return errors.BadRequest(f"Cannot update metadata of aggregate {aggregate_id}. Reason: {reason}.")


# ----------------------------------------------------------------------------- the service

class AggregateService:
    """``os-aggregates``: every method reads or writes in one transaction and answers the aggregate as it is."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads

    async def list(self) -> list[AggregateRecord]:
        async with self.db.session() as s:
            rows = list(await s.scalars(select(Aggregate).order_by(Aggregate.id)))
            return await self._records(s, rows)

    async def get(self, aggregate_id: int) -> AggregateRecord:
        async with self.db.session() as s:
            return await self._record(s, await self._find(s, aggregate_id))

    # -- create / update / delete

    async def create(self, name: str, zone: str | None) -> AggregateRecord:
        """Nova's ``create_aggregate``: a unique name (409), the zone stored as metadata."""
        row = Aggregate(uuid=str(uuid.uuid4()), name=name, created_at=utcnow(), updated_at=None, deleted_at=None)
        try:
            async with self.db.session() as s:
                await self._check_name(s, name)
                s.add(row)
                await s.flush()
                if zone:
                    s.add(AggregateMetadata(aggregate_id=row.id, key=AZ_KEY, value=zone))
                return AggregateRecord(row.id, row.uuid, row.name, row.created_at, None, None, [],
                                       {AZ_KEY: zone} if zone else {})
        except IntegrityError as exc:  # a concurrent create took the name first
            raise _name_exists(name) from exc

    async def update(self, aggregate_id: int, *, name: str | None = None, zone_given: bool = False,
                     zone: str | None = None) -> AggregateRecord:
        """Nova's ``update_aggregate``: rename (409 if taken) and/or move to another zone (400 if unsafe)."""

        async def work() -> AggregateRecord:
            async with self.db.session() as s:
                row = await self._find(s, aggregate_id, lock=True)
                if name is not None and name != row.name:
                    await self._check_name(s, name, but=row.id)
                if name is not None:
                    row.name = name
                if zone_given:
                    await self._check_zone_change(s, row, {AZ_KEY: zone}, _invalid_update)
                    await self._set_metadata(s, row.id, {AZ_KEY: zone})
                row.updated_at = utcnow()
                await s.flush()
                return await self._record(s, row)

        try:
            return await retry_deadlocks(work)
        except IntegrityError as exc:
            raise _name_exists(name or "") from exc

    async def set_metadata(self, aggregate_id: int, metadata: Mapping[str, str | None]) -> AggregateRecord:
        """Nova's ``update_aggregate_metadata``: set keys, remove those given as null (missing ones are fine)."""

        async def work() -> AggregateRecord:
            async with self.db.session() as s:
                row = await self._find(s, aggregate_id, lock=True)
                await self._check_zone_change(s, row, metadata, _invalid_update_meta)
                await self._set_metadata(s, row.id, metadata)
                row.updated_at = utcnow()
                await s.flush()
                return await self._record(s, row)

        return await retry_deadlocks(work)

    async def delete(self, aggregate_id: int) -> None:
        """Nova's ``delete_aggregate``: only an empty aggregate (400 otherwise); its metadata goes with it."""
        async with self.db.session() as s:
            row = await self._find(s, aggregate_id, lock=True)
            if await s.scalar(select(AggregateHost.id).where(AggregateHost.aggregate_id == row.id).limit(1)):
                raise errors.BadRequest(f"Cannot remove host from aggregate {row.id}. "
                                        "Reason: Host aggregate is not empty.")
            await s.execute(delete(AggregateMetadata).where(AggregateMetadata.aggregate_id == row.id))
            await s.execute(delete(Aggregate).where(Aggregate.id == row.id))

    # -- hosts

    async def add_host(self, aggregate_id: int, host: str) -> AggregateRecord:
        """Nova's ``add_host_to_aggregate``: a known compute host (404), no second zone, no instance moving zone."""

        async def work() -> AggregateRecord:
            async with self.db.session() as s:
                await self._compute_service(s, host, host_not_found(host))
                row = await self._find(s, aggregate_id, lock=True)
                await self._lock_hosts(s, [host])
                meta = await self._metadata(s, row.id)
                zone = meta.get(AZ_KEY)
                if zone is not None:
                    others = await self._zones_of(s, [host], but=row.id)
                    conflicting = [z for z in others if z != zone]
                    if conflicting:
                        raise _invalid_add(row.id, f"One or more hosts already in availability zone(s) "
                                                   f"{conflicting}")
                    current = sorted(set(others))
                    old = current[0] if current else None
                    count = await _instance_count(s, [host])
                    if count and old != zone:
                        raise _invalid_add(row.id, _MOVE_REASON.format(verb="added to", old=old, new=zone,
                                                                       count=count))
                if await s.scalar(select(AggregateHost.id).where(AggregateHost.aggregate_id == row.id,
                                                                 AggregateHost.host == host)) is not None:
                    raise _host_exists(row.id, host)
                s.add(AggregateHost(aggregate_id=row.id, host=host))
                await s.flush()
                return await self._record(s, row)

        try:
            return await retry_deadlocks(work)
        except IntegrityError as exc:  # a concurrent add of the same host won
            raise _host_exists(aggregate_id, host) from exc

    async def remove_host(self, aggregate_id: int, host: str) -> AggregateRecord:
        """Nova's ``remove_host_from_aggregate``: 404 "Cannot remove host ..." for anything not found."""
        missing = errors.NotFound(f"Cannot remove host {host} in aggregate {aggregate_id}")

        async def work() -> AggregateRecord:
            async with self.db.session() as s:
                await self._compute_service(s, host, missing)
                try:
                    row = await self._find(s, aggregate_id, lock=True)
                except errors.NotFound:
                    raise missing from None
                await self._lock_hosts(s, [host])
                member = await s.scalar(select(AggregateHost).where(AggregateHost.aggregate_id == row.id,
                                                                    AggregateHost.host == host))
                if member is None or member.host != host:
                    raise missing
                zone = (await self._metadata(s, row.id)).get(AZ_KEY)
                if zone is not None:
                    others = sorted(set(await self._zones_of(s, [host], but=row.id)))
                    new = others[0] if others else None
                    count = await _instance_count(s, [host])
                    if count and new != zone:
                        raise _invalid_remove(row.id, _MOVE_REASON.format(verb="removed from", old=zone, new=new,
                                                                          count=count))
                await s.delete(member)
                await s.flush()
                return await self._record(s, row)

        return await retry_deadlocks(work)

    # -- helpers

    @staticmethod
    async def _find(s: AsyncSession, aggregate_id: int, *, lock: bool = False) -> Aggregate:
        stmt = select(Aggregate).where(Aggregate.id == aggregate_id)
        row = await s.scalar(stmt.with_for_update() if lock else stmt)
        if row is None:
            raise not_found(aggregate_id)
        return row

    @staticmethod
    async def _check_name(s: AsyncSession, name: str, but: int | None = None) -> None:
        stmt = select(Aggregate.id).where(Aggregate.name == name)
        if but is not None:
            stmt = stmt.where(Aggregate.id != but)
        if await s.scalar(stmt.limit(1)) is not None:
            raise _name_exists(name)

    @staticmethod
    async def _compute_service(s: AsyncSession, host: str, missing: errors.KumoError) -> None:
        """The host must have a ``nova-compute`` service of exactly this name (MySQL would match any case)."""
        found = await s.scalar(select(ServiceRecord.host).where(ServiceRecord.host == host,
                                                                ServiceRecord.binary == COMPUTE_BINARY))
        if found != host:
            raise missing

    @staticmethod
    async def _lock_hosts(s: AsyncSession, hosts: Iterable[str]) -> None:
        """Lock the compute service rows of ``hosts`` (name order): one zone decision per host at a time."""
        wanted = sorted(set(hosts))
        if wanted:
            await s.execute(select(ServiceRecord.id).where(ServiceRecord.host.in_(wanted),
                                                           ServiceRecord.binary == COMPUTE_BINARY)
                            .order_by(ServiceRecord.host).with_for_update())

    @staticmethod
    async def _metadata(s: AsyncSession, aggregate_id: int) -> dict[str, str]:
        rows = await s.execute(select(AggregateMetadata.key, AggregateMetadata.value)
                               .where(AggregateMetadata.aggregate_id == aggregate_id).order_by(AggregateMetadata.id))
        return {str(k): str(v) for k, v in rows}

    @staticmethod
    async def _hosts(s: AsyncSession, aggregate_id: int) -> list[str]:
        return [str(h) for h in await s.scalars(select(AggregateHost.host)
                                                .where(AggregateHost.aggregate_id == aggregate_id)
                                                .order_by(AggregateHost.id))]

    @staticmethod
    async def _zones_of(s: AsyncSession, hosts: list[str], *, but: int) -> list[str]:
        """The zones of the other aggregates these hosts are in (one entry per aggregate)."""
        if not hosts:
            return []
        rows = await s.execute(
            select(AggregateMetadata.aggregate_id, AggregateMetadata.key, AggregateMetadata.value)
            .where(AggregateMetadata.key == AZ_KEY, AggregateMetadata.aggregate_id != but,
                   AggregateMetadata.aggregate_id.in_(
                       select(AggregateHost.aggregate_id).where(AggregateHost.host.in_(hosts))))
            .order_by(AggregateMetadata.aggregate_id))
        return [str(value) for _agg, key, value in rows if key == AZ_KEY]

    async def _check_zone_change(self, s: AsyncSession, row: Aggregate, metadata: Mapping[str, str | None],
                                 invalid: Callable[[int, str], errors.KumoError]) -> None:
        """Nova's ``is_safe_to_update_az`` for a new ``availability_zone`` of an aggregate with its hosts."""
        if AZ_KEY not in metadata:
            return
        zone = metadata[AZ_KEY]
        if not zone:
            raise invalid(row.id, f"Aggregate {row.name} does not support empty named availability zone")
        hosts = await self._hosts(s, row.id)
        await self._lock_hosts(s, hosts)
        conflicting = [z for z in await self._zones_of(s, hosts, but=row.id) if z != zone]
        if conflicting:
            raise invalid(row.id, f"One or more hosts already in availability zone(s) {conflicting}")
        current = (await self._metadata(s, row.id)).get(AZ_KEY)
        if current != zone and await _instance_count(s, hosts):
            raise invalid(row.id, "One or more hosts contain instances in this zone")

    @staticmethod
    async def _set_metadata(s: AsyncSession, aggregate_id: int, metadata: Mapping[str, str | None]) -> None:
        """Set or (null) remove keys. A key differing only in case from a stored one is Nova's 400 on MySQL,
        and here on every database, so the metadata means the same everywhere."""
        existing = {r.key: r for r in await s.scalars(select(AggregateMetadata)
                                                       .where(AggregateMetadata.aggregate_id == aggregate_id))}
        folded = {k.lower(): k for k in existing}
        for key, value in metadata.items():
            row = existing.get(key)
            if row is None and key.lower() in folded and value is not None:
                raise errors.BadRequest(f"Aggregate {aggregate_id} already contain metadata key "
                                        f"{folded[key.lower()]}.")
            if value is None:
                if row is not None:
                    await s.delete(row)
                    del existing[key]
                    folded.pop(key.lower(), None)
            elif row is not None:
                row.value = value
            else:
                row = AggregateMetadata(aggregate_id=aggregate_id, key=key, value=value)
                s.add(row)
                existing[key] = row
                folded[key.lower()] = key
        await s.flush()

    async def _record(self, s: AsyncSession, row: Aggregate) -> AggregateRecord:
        return (await self._records(s, [row]))[0]

    @staticmethod
    async def _records(s: AsyncSession, rows: list[Aggregate]) -> list[AggregateRecord]:
        ids = [r.id for r in rows]
        hosts: dict[int, list[str]] = defaultdict(list)
        metadata: dict[int, dict[str, str]] = defaultdict(dict)
        if ids:
            for agg_id, host in await s.execute(select(AggregateHost.aggregate_id, AggregateHost.host)
                                                .where(AggregateHost.aggregate_id.in_(ids))
                                                .order_by(AggregateHost.id)):
                hosts[agg_id].append(str(host))
            for agg_id, key, value in await s.execute(
                    select(AggregateMetadata.aggregate_id, AggregateMetadata.key, AggregateMetadata.value)
                    .where(AggregateMetadata.aggregate_id.in_(ids)).order_by(AggregateMetadata.id)):
                metadata[agg_id][str(key)] = str(value)
        return [AggregateRecord(r.id, r.uuid, r.name, r.created_at, r.updated_at, r.deleted_at, hosts[r.id],
                                metadata[r.id]) for r in rows]


async def forget_host(s: AsyncSession, host: str) -> None:
    """A deleted compute service leaves every aggregate (Nova's ``ServiceController.delete``)."""
    await s.execute(delete(AggregateHost).where(AggregateHost.host == host))


async def _instance_count(s: AsyncSession, hosts: list[str]) -> int:
    """Nova's ``InstanceList.get_count_by_hosts``: live instances on these hosts."""
    if not hosts:
        return 0
    return int(await s.scalar(select(func.count()).select_from(Instance)
                              .where(Instance.host.in_(hosts), Instance.deleted_at.is_(None))) or 0)


def _name_exists(name: str) -> errors.Conflict:
    return errors.Conflict(f"Aggregate {name} already exists.")


def _host_exists(aggregate_id: int, host: str) -> errors.Conflict:
    return errors.Conflict(f"Aggregate {aggregate_id} already has host {host}.")

