"""Nova's services (``os-services``) and availability zones, read from the ``core_services`` registry.

The registry holds every heartbeating process (``kumo-api`` too); Nova only
shows its own services, so only ``nova-*`` binaries are listed, and, as
``nova/api/openstack/compute/services.py``, never the API services.

* **up/down** is Nova's DB servicegroup driver: the last heartbeat is at most
  ``service_down_time`` old and the service is not forced down.
* **zone** is ``internal`` (Nova's ``internal_service_availability_zone``)
  for everything but ``nova-compute``, which is in the availability zone of
  the host aggregate(s) its host is in (:func:`kumo.compute.aggregates.host_zones`),
  else in the default availability zone.
* **ids**: from 2.53 Nova shows the service uuid; ``core_services.id`` is a
  uuid in hex, shown dashed. Below 2.53 Nova shows an integer; until the
  registry has an integer column, :func:`legacy_id` derives a stable one
  from the row id (CRC-32, 31 bits).
* Admin updates never touch ``updated_at``: it is the heartbeat, and
  bumping it would make a dead service look alive.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zlib
from dataclasses import dataclass

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute.aggregates import forget_host, host_zones
from kumo.compute.instances import COMPUTE_BINARY
from kumo.compute.models import ComputeNode, Instance
from kumo.core import errors
from kumo.core.db import Database, utcnow
from kumo.core.models import ServiceRecord

INTERNAL_ZONE = "internal"
#: Nova hides its API services from os-services and zones (their state is not heartbeat-based).
API_BINARIES = ("nova-osapi_compute", "nova-metadata")


@dataclass(frozen=True)
class ServiceInfo:
    """One Nova service as the API shows it."""

    row_id: str
    host: str
    binary: str
    zone: str
    disabled: bool
    disabled_reason: str | None
    forced_down: bool
    up: bool
    updated_at: dt.datetime | None

    @property
    def legacy_id(self) -> int:
        return legacy_id(self.row_id)

    @property
    def uuid(self) -> str:
        return dashed(self.row_id)


def legacy_id(row_id: str) -> int:
    """The integer id shown below 2.53: stable for a row, positive, fits Nova's 32-bit column."""
    return zlib.crc32(row_id.encode()) & 0x7FFFFFFF or 1


def dashed(row_id: str) -> str:
    """``core_services.id`` (32 hex digits) in uuid form; anything else as it is."""
    try:
        return str(uuid.UUID(row_id))
    except ValueError:
        return row_id


def is_uuid_like(value: str) -> bool:
    """oslo's ``uuidutils.is_uuid_like``: a uuid, dashed or not, any case."""
    try:
        return str(uuid.UUID(value)).replace("-", "") == value.replace("-", "").replace("{", "").replace(
            "}", "").replace("urn:uuid:", "").lower()
    except (ValueError, TypeError, AttributeError):
        return False


def service_is_up(row: ServiceRecord, down_time: float, now: dt.datetime | None = None) -> bool:
    """Nova's ``DbDriver.is_up``: heartbeat no older than ``service_down_time``, and not forced down."""
    if row.forced_down:
        return False
    seen = row.updated_at or row.created_at
    return abs(((now or utcnow()) - seen).total_seconds()) <= down_time


def zone_of(binary: str, host_zone: str) -> str:
    """Nova's ``set_availability_zones``: compute services are in their host's zone, the rest are ``internal``."""
    return host_zone if binary == COMPUTE_BINARY else INTERNAL_ZONE


def service_info(row: ServiceRecord, down_time: float, default_zone: str, now: dt.datetime,
                 zones: dict[str, str] | None = None) -> ServiceInfo:
    """A registry row as Nova's API sees the service (``zones``: host -> aggregate zone, see ``host_zones``)."""
    zone = zone_of(row.binary, (zones or {}).get(row.host, default_zone))
    return ServiceInfo(row_id=row.id, host=row.host, binary=row.binary, zone=zone,
                       disabled=row.disabled, disabled_reason=row.disabled_reason, forced_down=row.forced_down,
                       up=service_is_up(row, down_time, now), updated_at=row.updated_at)


class HostServices:
    """Queries and updates of Nova's services, zones included."""

    def __init__(self, db: Database, down_time: float, default_zone: str) -> None:
        self.db = db
        self.down_time = down_time
        self.default_zone = default_zone

    def _info(self, row: ServiceRecord, now: dt.datetime, zones: dict[str, str] | None = None) -> ServiceInfo:
        return service_info(row, self.down_time, self.default_zone, now, zones)

    @staticmethod
    async def _zones(s: AsyncSession, rows: list[ServiceRecord]) -> dict[str, str]:
        """The aggregate zones of the compute hosts among ``rows``."""
        computes = [r.host for r in rows if r.binary == COMPUTE_BINARY]
        return await host_zones(s, computes) if computes else {}

    @staticmethod
    def _nova_rows() -> Select[tuple[ServiceRecord]]:
        return (select(ServiceRecord).where(ServiceRecord.binary.like("nova-%"),
                                            ServiceRecord.binary.not_in(API_BINARIES))
                .order_by(ServiceRecord.created_at, ServiceRecord.host, ServiceRecord.binary))

    async def list(self, host: str | None = None, binary: str | None = None) -> list[ServiceInfo]:
        """Nova's ``_get_services``: every Nova service, filtered by exact host and binary when given."""
        stmt = self._nova_rows()
        if host:
            stmt = stmt.where(ServiceRecord.host == host)
        if binary:
            stmt = stmt.where(ServiceRecord.binary == binary)
        now = utcnow()
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
            zones = await self._zones(s, rows)
        return [self._info(r, now, zones) for r in rows]

    async def _find(self, s: AsyncSession, service_id: str, by_uuid: bool) -> ServiceRecord:
        """The row behind a 2.53 uuid or a legacy integer id; Nova's ServiceNotFound otherwise."""
        rows = list(await s.scalars(self._nova_rows()))
        if by_uuid:
            wanted = service_id.replace("-", "").lower()
            found = [r for r in rows if r.id.replace("-", "").lower() == wanted]
        else:
            found = [r for r in rows if legacy_id(r.id) == int(service_id)]
        if not found:
            raise errors.NotFound(f"Service {service_id} could not be found.")
        if len(found) > 1:
            raise errors.BadRequest(f"Service id {service_id} refers to multiple services.")
        return found[0]

    async def get(self, service_id: str, *, by_uuid: bool) -> ServiceInfo:
        async with self.db.session() as s:
            row = await self._find(s, service_id, by_uuid)
            return self._info(row, utcnow(), await self._zones(s, [row]))

    async def update(self, service_id: str, *, by_uuid: bool, **values: object) -> ServiceInfo:
        """Set ``disabled``/``disabled_reason``/``forced_down`` of a compute service (Nova's 2.53 update).

        Only ``nova-compute`` services can be updated (400 otherwise, Nova's
        wording), and an update must change something.
        """
        async with self.db.session() as s:
            row = await self._find(s, service_id, by_uuid)
            refuse_non_compute(row.binary)
            if not values:
                raise errors.BadRequest("No updates were requested. Fields 'status' or 'forced_down' should be "
                                        "specified.")
            await s.execute(update(ServiceRecord).where(ServiceRecord.id == row.id).values(**values)
                            .execution_options(synchronize_session=False))
            for key, value in values.items():
                setattr(row, key, value)
            return self._info(row, utcnow(), await self._zones(s, [row]))

    async def update_by_host(self, host: str, binary: str, **values: object) -> None:
        """The pre-2.53 actions (enable, disable, force-down) name the service by host and binary."""
        refuse_non_compute(binary)
        async with self.db.session() as s:
            result = await s.execute(update(ServiceRecord)
                                     .where(ServiceRecord.host == host, ServiceRecord.binary == binary)
                                     .values(**values).execution_options(synchronize_session=False))
            if not result.rowcount:  # type: ignore[attr-defined]
                raise errors.NotFound(f"Could not find binary {binary} on host {host}.")

    async def delete(self, service_id: str, *, by_uuid: bool) -> None:
        """Nova's ``ServiceController.delete``: a compute service still hosting instances is a 409.

        Deleting a compute service also retires its compute nodes, as Nova's
        ``service_destroy`` does, and takes its host out of every aggregate.
        """
        async with self.db.session() as s:
            row = await self._find(s, service_id, by_uuid)
            if row.binary == COMPUTE_BINARY:
                hosted = await s.scalar(select(func.count()).select_from(Instance)
                                        .where(Instance.host == row.host, Instance.deleted_at.is_(None)))
                if hosted:
                    raise errors.Conflict("Unable to delete compute service that is hosting instances. "
                                          "Migrate or delete the instances first.")
                await s.execute(update(ComputeNode).where(ComputeNode.host == row.host,
                                                          ComputeNode.deleted_at.is_(None))
                                .values(deleted_at=utcnow()).execution_options(synchronize_session=False))
                await forget_host(s, row.host)
            await s.delete(row)

    async def zones(self) -> tuple[list[str], list[str], list[ServiceInfo]]:
        """Nova's ``get_availability_zones``: (available, not available, services).

        A zone is available when it has an enabled service; a zone whose
        services are all disabled is not available. Up/down does not matter
        here (Nova looks at ``disabled`` only).
        """
        services = await self.list()
        available = sorted({sv.zone for sv in services if not sv.disabled})
        unavailable = sorted({sv.zone for sv in services if sv.disabled} - set(available))
        return available, unavailable, services


def refuse_non_compute(binary: str) -> None:
    if binary != COMPUTE_BINARY:
        raise errors.BadRequest(f"Updating a {binary} service is not supported. Only nova-compute services "
                                "can be updated.")
