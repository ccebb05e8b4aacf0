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

from sqlalchemy import Integer, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute.models import ComputeNode, Instance
from kumo.compute.virt.base import HostResources
from kumo.core.db import UTCDateTime, utcnow


def flavor_usage(flavor: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(vcpus, memory_mb, disk_gb)`` one instance of this flavor snapshot holds (swap rounded up to GiB)."""
    disk = int(flavor.get("root_gb", 0)) + int(flavor.get("ephemeral_gb", 0)) + \
        math.ceil(int(flavor.get("swap", 0) or 0) / 1024)
    return int(flavor.get("vcpus", 0)), int(flavor.get("memory_mb", 0)), disk


def _claim_statement() -> Any:
    """The claim UPDATE, built once (building SQLAlchemy expressions costs more than running this one)."""
    n = ComputeNode
    ram, vcpus, disk = bindparam("need_ram", type_=Integer), bindparam("need_vcpus", type_=Integer), \
        bindparam("need_disk", type_=Integer)
    return (update(n)
            .where(n.host == bindparam("claim_host"), n.deleted_at.is_(None),
                   n.memory_mb_used + ram <= n.memory_mb * n.ram_allocation_ratio - bindparam("reserved_ram", type_=Integer),
                   n.vcpus_used + vcpus <= n.vcpus * n.cpu_allocation_ratio,
                   n.local_gb_used + disk <= n.local_gb * n.disk_allocation_ratio)
            .values(vcpus_used=n.vcpus_used + vcpus, memory_mb_used=n.memory_mb_used + ram,
                    local_gb_used=n.local_gb_used + disk,
                    running_vms=n.running_vms + bindparam("new_instances", type_=Integer),
                    updated_at=bindparam("claimed_at", type_=UTCDateTime()))
            .execution_options(synchronize_session=False))


_CLAIM = _claim_statement()


async def claim(s: AsyncSession, host: str, vcpus: int, memory_mb: int, disk_gb: int,
                reserved_host_memory_mb: int, *, instances: int = 1) -> bool:
    """Take room on ``host`` if it is still there; False when another claim got it first (or no node)."""
    result = await s.execute(_CLAIM, {"claim_host": host, "need_ram": memory_mb, "need_vcpus": vcpus,
                                      "need_disk": disk_gb, "reserved_ram": reserved_host_memory_mb,
                                      "new_instances": instances, "claimed_at": utcnow()})
    return bool(result.rowcount)  # type: ignore[attr-defined]


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


async def release_instance(s: AsyncSession, row: Instance) -> None:
    """Give back everything a deleted instance held on its host, a pending resize's second size included."""
    if not row.host:
        return
    await release(s, row.host, row.flavor or {})
    for extra in ("new_flavor", "old_flavor"):
        held = (row.system_metadata or {}).get(extra)
        if held:
            v, r, d = flavor_usage(held)
            await adjust(s, row.host, -v, -r, -d)


def apply_inventory(s: AsyncSession, row: ComputeNode | None, host: str, res: HostResources, *, cpu_ratio: float,
                    ram_ratio: float, disk_ratio: float, host_ip: str | None = None) -> ComputeNode:
    """Write the host's capacity on its row (made on first report); returns the row.

    Usage columns are left to claims and :func:`resync_usage`, so a report
    never erases a claim that the hypervisor has not acted on yet. Unchanged
    values are not assigned, so an unchanged host costs no UPDATE.
    """
    if row is None:
        row = ComputeNode(uuid=str(uuidlib.uuid4()), host=host, hypervisor_hostname=res.hypervisor_hostname,
                          vcpus_used=0, memory_mb_used=0, local_gb_used=0, running_vms=0)
        s.add(row)
    wanted = {"hypervisor_hostname": res.hypervisor_hostname, "hypervisor_type": res.hypervisor_type,
              "hypervisor_version": res.hypervisor_version, "host_ip": host_ip, "vcpus": res.vcpus,
              "memory_mb": res.memory_mb, "local_gb": res.local_gb, "cpu_info": dict(res.cpu_info),
              "disk_available_least": res.local_gb - res.local_gb_used, "cpu_allocation_ratio": cpu_ratio,
              "ram_allocation_ratio": ram_ratio, "disk_allocation_ratio": disk_ratio}
    changed = False
    for name, value in wanted.items():
        if getattr(row, name, None) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        row.updated_at = utcnow()
    return row


async def nodes_by_host(s: AsyncSession, hosts: list[str]) -> dict[str, ComputeNode]:
    """The live compute node rows of ``hosts`` (read in chunks that every database accepts)."""
    found: dict[str, ComputeNode] = {}
    for start in range(0, len(hosts), 500):
        rows = await s.scalars(select(ComputeNode).where(ComputeNode.host.in_(hosts[start:start + 500]),
                                                         ComputeNode.deleted_at.is_(None)))
        found.update({row.host: row for row in rows})
    return found


async def resync_usage(s: AsyncSession, hosts: list[str]) -> list[str]:
    """Recompute the hosts' usage from the live instances placed on them; returns the hosts corrected.

    Nova's resource tracker does the same audit (``_update_usage_from_instances``).
    Each host's UPDATE is guarded by the ``updated_at`` it read, so a claim
    made while counting wins and the host is simply audited next time.
    """
    nodes = await nodes_by_host(s, hosts)
    totals = {host: [0, 0, 0, 0] for host in nodes}
    for start in range(0, len(hosts), 500):
        rows = await s.execute(select(Instance.host, Instance.flavor, Instance.system_metadata).where(
            Instance.host.in_(hosts[start:start + 500]), Instance.deleted_at.is_(None)))
        for host, flavor, sysmeta in rows:
            if host not in totals:
                continue
            total = totals[host]
            total[3] += 1
            # A resize holds both sizes until it is confirmed or reverted (Nova keeps both allocations).
            for held in (flavor, (sysmeta or {}).get("new_flavor"), (sysmeta or {}).get("old_flavor")):
                if held:
                    v, r, d = flavor_usage(held)
                    total[0], total[1], total[2] = total[0] + v, total[1] + r, total[2] + d
    corrected = []
    for host, (vcpus, ram, disk, count) in totals.items():
        node = nodes[host]
        if (node.vcpus_used, node.memory_mb_used, node.local_gb_used, node.running_vms) == (vcpus, ram, disk, count):
            continue
        result = await s.execute(
            update(ComputeNode).where(ComputeNode.id == node.id, ComputeNode.updated_at == node.updated_at)
            .values(vcpus_used=vcpus, memory_mb_used=ram, local_gb_used=disk, running_vms=count, updated_at=utcnow())
            .execution_options(synchronize_session=False))
        if result.rowcount:  # type: ignore[attr-defined]
            corrected.append(host)
    return corrected
