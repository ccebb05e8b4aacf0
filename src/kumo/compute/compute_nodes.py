"""Hypervisors (``os-hypervisors``): compute nodes joined with their ``nova-compute`` service.

As Nova's ``HypervisorsController`` with ``HostAPI``: a node whose compute
service is gone is left out of lists and is a 404 when asked for by id; the
state and status of a hypervisor are those of its service. Hostname
patterns match as Nova's ``compute_node_search_by_hypervisor`` (a
substring, SQL ``LIKE %pattern%``). Statistics sum the nodes of enabled
compute services (Nova's ``compute_node_statistics``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute.host_services import ServiceInfo, service_info
from kumo.compute.instances import COMPUTE_BINARY
from kumo.compute.models import ComputeNode, Instance
from kumo.core import errors
from kumo.core.db import Database, utcnow
from kumo.core.models import ServiceRecord


@dataclass(frozen=True)
class Hypervisor:
    node: ComputeNode
    service: ServiceInfo
    current_workload: int
    servers: list[tuple[str, str]] | None = None  # (name, uuid) when asked for


@dataclass(frozen=True)
class NodeQuery:
    limit: int | None = None
    marker: str | None = None
    by_uuid: bool = False
    pattern: str | None = None
    with_servers: bool = False


def not_found(node_id: str) -> errors.NotFound:
    return errors.NotFound(f"Hypervisor with ID '{node_id}' could not be found.")


def _live_nodes() -> Select[tuple[ComputeNode]]:
    return select(ComputeNode).where(ComputeNode.deleted_at.is_(None)).order_by(ComputeNode.id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ComputeNodes:
    """Read side of ``os-hypervisors``."""

    def __init__(self, db: Database, down_time: float, default_zone: str) -> None:
        self.db = db
        self.down_time = down_time
        self.default_zone = default_zone

    async def list(self, query: NodeQuery) -> list[Hypervisor]:
        """All nodes (paged by id, or by uuid from 2.53), or those matching ``pattern`` (404 when none)."""
        async with self.db.session() as s:
            stmt = _live_nodes()
            if query.pattern is not None:
                stmt = stmt.where(ComputeNode.hypervisor_hostname.like(f"%{_escape_like(query.pattern)}%",
                                                                       escape="\\"))
            elif query.marker is not None:
                marker_id = await self._marker_id(s, query.marker, query.by_uuid)
                stmt = stmt.where(ComputeNode.id > marker_id)
            if query.pattern is None and query.limit is not None:
                stmt = stmt.limit(query.limit)
            nodes = list(await s.scalars(stmt))
            if query.pattern is not None and not nodes:
                raise errors.NotFound(f"No hypervisor matching '{query.pattern}' could be found.")
            return await self._join(s, nodes, query.with_servers)

    async def get(self, node_id: str, *, by_uuid: bool, with_servers: bool = False) -> Hypervisor:
        """One node by uuid (2.53) or integer id; 404 when the node or its compute service is missing."""
        async with self.db.session() as s:
            column = ComputeNode.uuid if by_uuid else ComputeNode.id
            key: str | int = node_id if by_uuid else int(node_id)
            node = await s.scalar(_live_nodes().where(column == key))
            found = await self._join(s, [node], with_servers) if node is not None else []
        if not found:
            raise not_found(node_id)
        return found[0]

    async def statistics(self) -> dict[str, int]:
        """Nova's ``compute_node_statistics``: sums over nodes whose compute service is enabled."""
        async with self.db.session() as s:
            enabled = select(ServiceRecord.host).where(ServiceRecord.binary == COMPUTE_BINARY,
                                                       ServiceRecord.disabled.is_(False))
            nodes = list(await s.scalars(_live_nodes().where(ComputeNode.host.in_(enabled))))
            workloads = await self._workloads(s, {n.host for n in nodes})
        stats = dict.fromkeys(("count", "vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
                               "local_gb_used", "free_ram_mb", "free_disk_gb", "current_workload",
                               "running_vms", "disk_available_least"), 0)
        for node in nodes:
            stats["count"] += 1
            for field in ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
                          "running_vms"):
                stats[field] += int(getattr(node, field) or 0)
            stats["free_ram_mb"] += node.memory_mb - node.memory_mb_used
            stats["free_disk_gb"] += node.local_gb - node.local_gb_used
            stats["disk_available_least"] += int(node.disk_available_least or 0)
        stats["current_workload"] = sum(workloads.values())
        return stats

    async def _marker_id(self, s: AsyncSession, marker: str, by_uuid: bool) -> int:
        if by_uuid:
            found = await s.scalar(select(ComputeNode.id).where(ComputeNode.uuid == marker))
        else:
            found = await s.scalar(select(ComputeNode.id).where(ComputeNode.id == int(marker))) \
                if marker.isdigit() else None
        if found is None:
            raise errors.BadRequest(f"marker [{marker}] not found")
        return int(found)

    async def _join(self, s: AsyncSession, nodes: list[ComputeNode], with_servers: bool) -> list[Hypervisor]:
        hosts = {n.host for n in nodes}
        rows = await s.scalars(select(ServiceRecord).where(ServiceRecord.binary == COMPUTE_BINARY,
                                                           ServiceRecord.host.in_(hosts)))
        now = utcnow()
        services = {r.host: service_info(r, self.down_time, self.default_zone, now) for r in rows}
        workloads = await self._workloads(s, hosts)
        servers = await self._servers(s, hosts) if with_servers else {}
        return [Hypervisor(node=n, service=services[n.host], current_workload=workloads.get(n.host, 0),
                           servers=servers.get(n.host, []) if with_servers else None)
                for n in nodes if n.host in services]

    @staticmethod
    async def _workloads(s: AsyncSession, hosts: set[str]) -> dict[str, int]:
        """Nova's ``current_workload``: instances of the host with a task in progress."""
        if not hosts:
            return {}
        rows = await s.execute(select(Instance.host, func.count()).where(
            Instance.host.in_(hosts), Instance.deleted_at.is_(None), Instance.task_state.is_not(None))
            .group_by(Instance.host))
        return {str(host): int(count) for host, count in rows}

    @staticmethod
    async def _servers(s: AsyncSession, hosts: set[str]) -> dict[str, list[tuple[str, str]]]:
        """Nova's ``instance_get_all_by_host``: the live instances of each host, oldest first."""
        rows = await s.execute(select(Instance.host, Instance.display_name, Instance.uuid).where(
            Instance.host.in_(hosts), Instance.deleted_at.is_(None)).order_by(Instance.created_at, Instance.uuid))
        found: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for host, name, uuid in rows:
            found[str(host)].append((name, uuid))
        return found
