"""Floating IPs: an address of an external network, mapped (DNAT/SNAT, by the dataplane) to a port's fixed IP.

Neutron's rules: the network must be external (400), the address comes
from its subnets (400 ExternalIpAddressExhausted when none is left) and is
held by a ``network:floatingip`` port; an association needs a port the
caller may see (404 otherwise, whatever project owns it), one IPv4 fixed
address (chosen with ``fixed_ip_address`` when there are several) and a
router of the project with a gateway on that external network and an
interface on the port's subnet (404 ExternalGatewayForFloatingIPNotFound);
a fixed address maps to one floating IP per external network (409).
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.db import Database
from kumo.network.common import (
    FLOATINGIP_COLUMNS,
    Caller,
    Filters,
    drop_tags,
    find_owned,
    narrowed,
    owned_only,
    standard_view,
    tags_of,
    touch,
)
from kumo.network.errors import BadResourceRequest, Conflict, Invalid, Missing, NotFound
from kumo.network.models import FloatingIP, IPAllocation, Network, Port, Router
from kumo.network.networks import NetworkService
from kumo.network.ports import PortService
from kumo.network.routers import INTERFACE

FIP_OWNER = "network:floatingip"


class FloatingIPService:
    def __init__(self, db: Database, networks: NetworkService, ports: PortService) -> None:
        self.db = db
        self.networks = networks
        self.ports = ports

    async def visible(self, s: AsyncSession, caller: Caller, fip_id: str) -> FloatingIP:
        return await find_owned(s, FloatingIP, caller, fip_id, "FloatingIP")

    async def list(self, caller: Caller, filters: Filters | None = None) -> list[dict[str, Any]]:
        stmt = narrowed(owned_only(select(FloatingIP), FloatingIP, caller), FloatingIP, filters, FLOATINGIP_COLUMNS)
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
            return [await self._view(s, r) for r in rows]

    async def get(self, caller: Caller, fip_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            return await self._view(s, await self.visible(s, caller, fip_id))

    async def _view(self, s: AsyncSession, row: FloatingIP) -> dict[str, Any]:
        details = None
        if row.fixed_port_id:
            port = await s.get(Port, row.fixed_port_id)
            if port is not None:
                details = {"name": port.name, "network_id": port.network_id, "mac_address": port.mac_address,
                           "admin_state_up": port.admin_state_up, "status": port.status, "device_id": port.device_id,
                           "device_owner": port.device_owner}
        tags = (await tags_of(s, "floatingips", [row.id]))[row.id]
        return {"id": row.id, "floating_ip_address": row.floating_ip_address,
                "floating_network_id": row.floating_network_id, "port_id": row.fixed_port_id,
                "fixed_ip_address": row.fixed_ip_address, "router_id": row.router_id, "status": row.status,
                "port_details": details, "port_forwardings": [], "dns_name": "", "dns_domain": "",
                "qos_policy_id": None, **standard_view(row, tags)}

    async def create(self, caller: Caller, values: dict[str, Any]) -> dict[str, Any]:
        project = values.get("project_id") or values.get("tenant_id") or caller.project_id
        network_id = values["floating_network_id"]
        async with self.db.session() as s:
            network = await s.get(Network, network_id)
            if network is None or not (network.external or caller.owns(network.project_id)):
                raise NotFound("Network", network_id)
            if not network.external:
                raise BadResourceRequest("floatingip", f"Network {network_id} is not a valid external network")
            await self.networks.quotas.check(s, project, "floatingip")
            fip_id = str(uuid.uuid4())
            wanted: dict[str, Any] = {}
            if values.get("subnet_id") or values.get("floating_ip_address"):
                wanted = {k: v for k, v in (("subnet_id", values.get("subnet_id")),
                                            ("ip_address", values.get("floating_ip_address"))) if v}
            try:
                port = await self.ports.create_in(s, Caller("", True), network, "", {
                    "device_owner": FIP_OWNER, "device_id": fip_id, "security_groups": [],
                    "port_security_enabled": False, **({"fixed_ips": [wanted]} if wanted else {})})
            except Conflict as exc:
                if exc.neutron_type != "IpAddressGenerationFailure":
                    raise
                raise Invalid(f"Unable to find any IP address on external network {network_id}.",
                              "ExternalIpAddressExhausted") from None
            address = await s.scalar(select(IPAllocation.ip_address).where(IPAllocation.port_id == port.id)
                                     .order_by(IPAllocation.position).limit(1))
            if address is None:
                raise Invalid(f"Unable to find any IP address on external network {network_id}.",
                              "ExternalIpAddressExhausted")
            row = FloatingIP(id=fip_id, project_id=project, floating_network_id=network_id,
                             floating_port_id=port.id, floating_ip_address=address,
                             description=values.get("description", ""), status="DOWN")
            s.add(row)
            await s.flush()
            if values.get("port_id"):
                await self._associate(s, caller, row, values["port_id"], values.get("fixed_ip_address"))
            elif values.get("fixed_ip_address"):
                raise BadResourceRequest("floatingip", "fixed_ip_address cannot be specified without a port_id")
            await s.flush()
            return await self._view(s, row)

    async def update(self, caller: Caller, fip_id: str, values: dict[str, Any]) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await self.visible(s, caller, fip_id)
            if "description" in values:
                row.description = values["description"]
            if "port_id" in values:
                if values["port_id"]:
                    await self._associate(s, caller, row, values["port_id"], values.get("fixed_ip_address"))
                else:
                    row.fixed_port_id = row.fixed_ip_address = row.router_id = None
                    row.status = "DOWN"
            elif values.get("fixed_ip_address"):
                raise BadResourceRequest("floatingip", "fixed_ip_address cannot be specified without a port_id")
            touch(row)
            await s.flush()
            return await self._view(s, row)

    async def _associate(self, s: AsyncSession, caller: Caller, row: FloatingIP, port_id: str,
                         fixed: str | None) -> None:
        port = await s.get(Port, port_id)
        if port is None or not caller.owns(port.project_id):
            raise NotFound("Port", port_id)
        allocations = [a for a in await s.scalars(select(IPAllocation).where(IPAllocation.port_id == port.id))
                       if ipaddress.ip_address(a.ip_address).version == 4]
        if fixed is not None:
            chosen = next((a for a in allocations if a.ip_address == fixed), None)
            if chosen is None:
                raise BadResourceRequest("floatingip", f"Port {port.id} does not have fixed ip {fixed}")
        elif not allocations:
            raise BadResourceRequest("floatingip", f"Cannot add floating IP to port {port.id} that has no fixed "
                                                   "IPv4 addresses")
        elif len(allocations) > 1:
            raise BadResourceRequest("floatingip", f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide "
                                                   "a specific IPv4 address when assigning a floating IP")
        else:
            chosen = allocations[0]
        router = await self._router_for(s, row, port, chosen)
        taken = await s.scalar(select(FloatingIP.id).where(
            FloatingIP.floating_network_id == row.floating_network_id, FloatingIP.fixed_port_id == port.id,
            FloatingIP.fixed_ip_address == chosen.ip_address, FloatingIP.id != row.id).limit(1))
        if taken:
            raise Conflict(f"Cannot associate floating IP {row.floating_ip_address} ({row.id}) with port {port.id} "
                           f"using fixed IP {chosen.ip_address}, as that fixed IP already has a floating IP on "
                           f"external network {row.floating_network_id}.", "FloatingIPPortAlreadyAssociated")
        row.fixed_port_id, row.fixed_ip_address, row.router_id = port.id, chosen.ip_address, router.id
        row.status = "DOWN"  # ACTIVE once a dataplane programs it (the agent is not part of Kumo yet)

    @staticmethod
    async def _router_for(s: AsyncSession, row: FloatingIP, port: Port, chosen: IPAllocation) -> Router:
        """The router joining the port's subnet to the floating IP's network (Neutron's
        ``_get_router_for_floatingip``)."""
        routers = select(Port.device_id).join(IPAllocation, IPAllocation.port_id == Port.id).where(
            Port.device_owner == INTERFACE, IPAllocation.subnet_id == chosen.subnet_id)
        for router in await s.scalars(select(Router).where(Router.id.in_(routers), Router.gw_port_id.is_not(None))):
            gateway = await s.get(Port, router.gw_port_id) if router.gw_port_id else None
            if gateway is not None and gateway.network_id == row.floating_network_id:
                return router
        raise Missing(f"External network {row.floating_network_id} is not reachable from subnet {chosen.subnet_id}."
                      f"  Therefore, cannot associate Port {port.id} with a Floating IP.",
                      "ExternalGatewayForFloatingIPNotFound")

    async def delete(self, caller: Caller, fip_id: str) -> None:
        async with self.db.session() as s:
            row = await self.visible(s, caller, fip_id)
            port = await s.get(Port, row.floating_port_id)
            await drop_tags(s, "floatingips", fip_id)
            await s.delete(row)
            await s.flush()
            if port is not None:
                await s.delete(port)
