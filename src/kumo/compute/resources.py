"""The resource tracker's writes on ``compute_nodes``: claims, releases, inventory and usage resync.

There is no Placement service in Kumo; the compute node row *is* the
inventory and its ``*_used`` columns the allocations. Concurrent builds never
overcommit a host because a claim is one conditional UPDATE::

    UPDATE compute_nodes SET memory_mb_used = memory_mb_used + :ram, ...
     WHERE host = :host AND memory_mb_used + :ram <= memory_mb * ram_ratio - reserved
       AND vcpus_used + :vcpus <= vcpus * cpu_ratio AND local_gb_used + :disk <= local_gb * disk_ratio

which the database applies atomically whatever the number of schedulers:
zero rows updated means another scheduler took the room (Placement's
generation conflict). A release is the opposite UPDATE. The agent's periodic
:func:`resync_usage` recomputes the sums from the instances the database
places on the host, guarded by ``updated_at`` so it never overwrites a claim
made while it was counting.
"""

from __future__ import annotations

import math
import uuid as uuidlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute.models import ComputeNode, Instance
from kumo.compute.virt.base import HostResources
from kumo.core.db import utcnow


def flavor_usage(flavor: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(vcpus, memory_mb, disk_gb)`` one instance of this flavor snapshot holds (swap rounded up to GiB)."""
    disk = int(flavor.get("root_gb", 0)) + int(flavor.get("ephemeral_gb", 0)) + \
        math.ceil(int(flavor.get("swap", 0) or 0) / 1024)
    return int(flavor.get("vcpus", 0)), int(flavor.get("memory_mb", 0)), disk


async def claim(s: AsyncSession, host: str, vcpus: int, memory_mb: int, disk_gb: int,
                reserved_host_memory_mb: int, *, instances: int = 1) -> bool:
    """Take room on ``host`` if it is still there; False when another claim got it first (or no node)."""
    n = ComputeNode
    stmt = (update(n)
            .where(n.host == host, n.deleted_at.is_(None),
                   n.memory_mb_used + memory_mb <= n.memory_mb * n.ram_allocation_ratio - reserved_host_memory_mb,
                   n.vcpus_used + vcpus <= n.vcpus * n.cpu_allocation_ratio,
                   n.local_gb_used + disk_gb <= n.local_gb * n.disk_allocation_ratio)
            .values(vcpus_used=n.vcpus_used + vcpus, memory_mb_used=n.memory_mb_used + memory_mb,
                    local_gb_used=n.local_gb_used + disk_gb, running_vms=n.running_vms + instances, updated_at=utcnow())
            .execution_options(synchronize_session=False))
    return bool((await s.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def adjust(s: AsyncSession, host: str, vcpus: int, memory_mb: int, disk_gb: int, instances: int = 0) -> None:
    """Change the usage by a delta, unconditionally (a release passes negatives; a resize the difference)."""
    n = ComputeNode
    await s.execute(update(n).where(n.host == host, n.deleted_at.is_(None))
                    .values(vcpus_used=n.vcpus_used + vcpus, memory_mb_used=n.memory_mb_used + memory_mb,
                            local_gb_used=n.local_gb_used + disk_gb, running_vms=n.running_vms + instances,
                            updated_at=utcnow())
                    .execution_options(synchronize_session=False))


async def release(s: AsyncSession, host: str, flavor: Mapping[str, Any]) -> None:
    """Give back what one instance of ``flavor`` held on ``host``."""
    vcpus, ram, disk = flavor_usage(flavor)
    await adjust(s, host, -vcpus, -ram, -disk, -1)


async def report_inventory(s: AsyncSession, host: str, res: HostResources, *, cpu_ratio: float, ram_ratio: float,
                           disk_ratio: float, host_ip: str | None = None) -> bool:
    """Write the host's capacity (creating its row on first report); True when the row is new.

    Usage columns are left to claims and :func:`resync_usage`, so a report
    never erases a claim that the hypervisor has not acted on yet.
    """
    row = await s.scalar(select(ComputeNode).where(ComputeNode.host == host, ComputeNode.deleted_at.is_(None)))
    created = row is None
    if row is None:
        row = ComputeNode(uuid=str(uuidlib.uuid4()), host=host, hypervisor_hostname=res.hypervisor_hostname,
                          vcpus_used=0, memory_mb_used=0, local_gb_used=0, running_vms=0)
        s.add(row)
    row.hypervisor_hostname = res.hypervisor_hostname
    row.hypervisor_type = res.hypervisor_type
    row.hypervisor_version = res.hypervisor_version
    row.host_ip = host_ip
    row.vcpus, row.memory_mb, row.local_gb = res.vcpus, res.memory_mb, res.local_gb
    row.cpu_info = dict(res.cpu_info)
    row.disk_available_least = res.local_gb - res.local_gb_used
    row.cpu_allocation_ratio, row.ram_allocation_ratio, row.disk_allocation_ratio = cpu_ratio, ram_ratio, disk_ratio
    row.updated_at = utcnow()
    return created


async def resync_usage(s: AsyncSession, host: str) -> bool:
    """Recompute the host's usage from the live instances placed on it; False if a claim raced us.

    Nova's resource tracker does the same audit (``_update_usage_from_instances``).
    """
    node = await s.scalar(select(ComputeNode).where(ComputeNode.host == host, ComputeNode.deleted_at.is_(None)))
    if node is None:
        return False
    seen = node.updated_at
    vcpus = ram = disk = count = 0
    rows = await s.execute(select(Instance.flavor, Instance.system_metadata).where(
        Instance.host == host, Instance.deleted_at.is_(None)))
    for flavor, sysmeta in rows:
        count += 1
        # A resize holds both sizes until it is confirmed or reverted (Nova keeps both allocations).
        for held in (flavor, (sysmeta or {}).get("new_flavor"), (sysmeta or {}).get("old_flavor")):
            if held:
                v, r, d = flavor_usage(held)
                vcpus, ram, disk = vcpus + v, ram + r, disk + d
    stmt = (update(ComputeNode).where(ComputeNode.id == node.id, ComputeNode.updated_at == seen)
            .values(vcpus_used=vcpus, memory_mb_used=ram, local_gb_used=disk, running_vms=count,
                    updated_at=utcnow())
            .execution_options(synchronize_session=False))
    return bool((await s.execute(stmt)).rowcount)  # type: ignore[attr-defined]
