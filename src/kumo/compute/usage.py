"""Simple tenant usage: instance hours over a window, as Nova's ``simple_tenant_usage.py``.

An instance counts when it was launched before the window ends and was
not terminated before it starts (Nova's ``instance_get_active_by_window_joined``,
deleted instances included). Its hours are the part of the window between
launch and termination (or the window's end); never-launched instances
are not billed. Memory, disk (root + ephemeral) and vCPU usage are the
flavor snapshot's sizes times the hours, summed per project.

Kumo difference: an instance deleted without a ``terminated_at`` ends at
its ``deleted_at`` (so a delete path that forgets the stamp does not bill
forever).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select

from kumo.compute.models import Instance
from kumo.core import errors
from kumo.core.db import Database, utcnow


@dataclass(frozen=True)
class UsageQuery:
    start: dt.datetime
    stop: dt.datetime
    project_id: str | None = None
    detailed: bool = True
    limit: int | None = None
    marker: str | None = None


@dataclass(frozen=True)
class ServerUsage:
    instance_id: str
    name: str
    tenant_id: str
    flavor: str
    hours: float
    memory_mb: int
    local_gb: int
    vcpus: int
    started_at: dt.datetime
    ended_at: dt.datetime | None
    state: str
    uptime: int


@dataclass
class TenantUsage:
    tenant_id: str
    start: dt.datetime
    stop: dt.datetime
    total_hours: float = 0
    total_memory_mb_usage: float = 0
    total_vcpus_usage: float = 0
    total_local_gb_usage: float = 0
    server_usages: list[ServerUsage] | None = None


def hours_for(launched_at: dt.datetime | None, terminated_at: dt.datetime | None,
              start: dt.datetime, stop: dt.datetime) -> float:
    """Nova's ``_hours_for``: the hours of the window the instance ran in."""
    if launched_at is None:
        return 0
    if terminated_at is not None and terminated_at < start:
        return 0
    if launched_at > stop:
        return 0
    end = min(stop, terminated_at) if terminated_at is not None else stop
    return (end - max(launched_at, start)).total_seconds() / 3600.0


def _server_usage(row: Instance, query: UsageQuery, now: dt.datetime) -> ServerUsage:
    flavor: dict[str, Any] = row.flavor or {}
    ended = row.terminated_at or row.deleted_at
    started = row.launched_at or row.created_at
    return ServerUsage(
        instance_id=row.uuid, name=row.display_name, tenant_id=row.project_id, flavor=str(flavor.get("name", "")),
        hours=hours_for(row.launched_at, ended, query.start, query.stop),
        memory_mb=int(flavor.get("memory_mb", 0)),
        local_gb=int(flavor.get("root_gb", 0)) + int(flavor.get("ephemeral_gb", 0)),
        vcpus=int(flavor.get("vcpus", 0)), started_at=started, ended_at=ended,
        state="terminated" if ended is not None else row.vm_state,
        uptime=int(((ended or now) - started).total_seconds()))


class UsageReports:
    """``os-simple-tenant-usage`` over the instances table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _instances(self, query: UsageQuery) -> list[Instance]:
        ended = func.coalesce(Instance.terminated_at, Instance.deleted_at)
        stmt = select(Instance).where(or_(ended.is_(None), ended > query.start), Instance.launched_at < query.stop)
        if query.project_id is not None:
            stmt = stmt.where(Instance.project_id == query.project_id)
        async with self.db.session() as s:
            if query.marker is not None:
                marker = await s.scalar(select(Instance).where(Instance.uuid == query.marker))
                if marker is None:
                    raise errors.BadRequest(f"Marker {query.marker} could not be found.")
                stmt = stmt.where(or_(Instance.project_id > marker.project_id,
                                      and_(Instance.project_id == marker.project_id, Instance.uuid > marker.uuid)))
            stmt = stmt.order_by(Instance.project_id, Instance.uuid)
            if query.limit is not None:
                stmt = stmt.limit(query.limit)
            return list(await s.scalars(stmt))

    async def report(self, query: UsageQuery) -> tuple[list[TenantUsage], list[ServerUsage]]:
        """Nova's ``_tenant_usages_for_period``: per-project totals (in first-seen order) and every server's usage."""
        now = utcnow()
        totals: dict[str, TenantUsage] = {}
        servers: list[ServerUsage] = []
        for row in await self._instances(query):
            usage = _server_usage(row, query, now)
            summary = totals.get(usage.tenant_id)
            if summary is None:
                summary = totals[usage.tenant_id] = TenantUsage(
                    tenant_id=usage.tenant_id, start=query.start, stop=query.stop,
                    server_usages=[] if query.detailed else None)
            summary.total_local_gb_usage += usage.local_gb * usage.hours
            summary.total_vcpus_usage += usage.vcpus * usage.hours
            summary.total_memory_mb_usage += usage.memory_mb * usage.hours
            summary.total_hours += usage.hours
            if summary.server_usages is not None:
                summary.server_usages.append(usage)
            servers.append(usage)
        return list(totals.values()), servers
