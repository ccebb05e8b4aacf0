"""How much of each network's address space is taken (``/v2.0/network-ip-availabilities``).

Neutron's counting, which capacity dashboards rely on: a subnet's
``total_ips`` is the size of its allocation pools (its whole cidr when it has
none); its ``used_ips`` is every address allocated on it, to any port (the
gateway counts only when a router port holds it). A network sums its
subnets; a network without subnets shows zeros. ``ip_version`` narrows the
subnets counted, not the networks listed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from kumo.core.db import Database
from kumo.network.ipam import pools_of
from kumo.network.models import IPAllocation, Network, Subnet


def subnet_total(cidr: str, stored_pools: Sequence[dict[str, str]]) -> int:
    """Addresses a subnet can hand out: its pools, or its whole cidr without pools (Neutron's rule)."""
    if not stored_pools:
        return ipaddress.ip_network(cidr, strict=False).num_addresses
    return sum(int(p.end) - int(p.start) + 1 for p in pools_of(stored_pools))


class IpAvailabilityService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, *, network_ids: Sequence[str] = (), names: Sequence[str] = (),
                   project_ids: Sequence[str] = (), ip_versions: Sequence[int] = ()) -> list[dict[str, Any]]:
        """One entry per network matching every given filter (each a list of alternatives)."""
        networks = select(Network).order_by(Network.id)
        if network_ids:
            networks = networks.where(Network.id.in_(network_ids))
        if names:
            networks = networks.where(Network.name.in_(names))
        if project_ids:
            networks = networks.where(Network.project_id.in_(project_ids))
        async with self.db.session() as s:
            found = list(await s.scalars(networks))
            if not found:
                return []
            wanted = [n.id for n in found]
            subnets = select(Subnet).where(Subnet.network_id.in_(wanted)).order_by(Subnet.id)
            if ip_versions:
                subnets = subnets.where(Subnet.ip_version.in_(ip_versions))
            subnet_rows = list(await s.scalars(subnets))
            used = select(IPAllocation.subnet_id, func.count()).where(
                IPAllocation.network_id.in_(wanted)).group_by(IPAllocation.subnet_id)
            counts: dict[str, int] = {sid: n for sid, n in (await s.execute(used)).all()}
        by_network: dict[str, list[dict[str, Any]]] = {}
        for sub in subnet_rows:
            by_network.setdefault(sub.network_id, []).append({
                "subnet_id": sub.id, "subnet_name": sub.name, "ip_version": sub.ip_version, "cidr": sub.cidr,
                "used_ips": counts.get(sub.id, 0), "total_ips": subnet_total(sub.cidr, sub.allocation_pools)})
        result = []
        for net in found:
            parts = by_network.get(net.id, [])
            result.append({"network_id": net.id, "network_name": net.name, "project_id": net.project_id,
                           "tenant_id": net.project_id, "subnet_ip_availability": parts,
                           "used_ips": sum(p["used_ips"] for p in parts),
                           "total_ips": sum(p["total_ips"] for p in parts)})
        return result
