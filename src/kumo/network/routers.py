"""Routers (Neutron's L3 API): gateway to an external network with SNAT, interfaces on subnets, static routes.

As in Neutron a router's interfaces and gateway are ports: an interface on
a subnet takes the subnet's gateway address (``network:router_interface``,
the router's project), the gateway takes an address of the external network
(``network:router_gateway``, no project). Neutron's rules: the gateway
network must be external; ``enable_snat`` and chosen gateway addresses are
the admin's; one interface per subnet and no two interfaces with
overlapping cidrs; a subnet without a gateway address cannot be attached by
subnet; a router with interfaces cannot be deleted (409 RouterInUse); an
interface a floating IP depends on cannot be removed (409).
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.db import Database
from kumo.network.common import (
    ROUTER_COLUMNS,
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
from kumo.network.errors import (
    BadResourceRequest,
    Conflict,
    HTTPNotFound,
    InUse,
    Missing,
    NotFound,
    PolicyNotAuthorized,
)
from kumo.network.models import FloatingIP, IPAllocation, Network, Port, Router, Subnet
from kumo.network.networks import NetworkService
from kumo.network.ports import PortService

INTERFACE = "network:router_interface"
GATEWAY = "network:router_gateway"


class RouterService:
    def __init__(self, db: Database, networks: NetworkService, ports: PortService) -> None:
        self.db = db
        self.networks = networks
        self.ports = ports

    async def visible(self, s: AsyncSession, caller: Caller, router_id: str) -> Router:
        return await find_owned(s, Router, caller, router_id, "Router")

    async def list(self, caller: Caller, filters: Filters | None = None) -> list[dict[str, Any]]:
        stmt = narrowed(owned_only(select(Router), Router, caller), Router, filters, ROUTER_COLUMNS)
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
            return [await self._view(s, r, caller) for r in rows]

    async def get(self, caller: Caller, router_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            return await self._view(s, await self.visible(s, caller, router_id), caller)

    async def _view(self, s: AsyncSession, row: Router, caller: Caller) -> dict[str, Any]:
        gateway = None
        if row.gw_port_id:
            port = await s.get(Port, row.gw_port_id)
            if port is not None:
                fixed = [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in await s.scalars(
                    select(IPAllocation).where(IPAllocation.port_id == port.id).order_by(IPAllocation.position))]
                gateway = {"network_id": port.network_id, "enable_snat": row.enable_snat,
                           "external_fixed_ips": fixed}
        tags = (await tags_of(s, "routers", [row.id]))[row.id]
        body = {"id": row.id, "name": row.name, "admin_state_up": row.admin_state_up, "status": row.status,
                "external_gateway_info": gateway, "routes": row.routes,
                "availability_zone_hints": row.availability_zone_hints, "availability_zones": ["nova"],
                "flavor_id": None, **standard_view(row, tags)}
        if caller.is_admin:
            body.update({"distributed": False, "ha": False})
        return body

    # -- create / update / delete

    async def create(self, caller: Caller, values: dict[str, Any]) -> dict[str, Any]:
        project = values.get("project_id") or values.get("tenant_id") or caller.project_id
        async with self.db.session() as s:
            await self.networks.quotas.check(s, project, "router")
            row = Router(id=str(uuid.uuid4()), project_id=project, name=values.get("name", ""),
                         description=values.get("description", ""), admin_state_up=values.get("admin_state_up", True),
                         availability_zone_hints=values.get("availability_zone_hints") or [])
            s.add(row)
            await s.flush()
            if values.get("routes"):
                row.routes = await self._routes(s, row, values["routes"])
            if values.get("external_gateway_info"):
                await self._set_gateway(s, caller, row, values["external_gateway_info"])
            await s.flush()
            return await self._view(s, row, caller)

    async def update(self, caller: Caller, router_id: str, values: dict[str, Any]) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await self.visible(s, caller, router_id)
            for key in ("name", "description", "admin_state_up"):
                if key in values:
                    setattr(row, key, values[key])
            if "external_gateway_info" in values:
                await self._set_gateway(s, caller, row, values["external_gateway_info"] or {})
            if "routes" in values:
                row.routes = await self._routes(s, row, values["routes"] or [])
            touch(row)
            await s.flush()
            return await self._view(s, row, caller)

    async def delete(self, caller: Caller, router_id: str) -> None:
        async with self.db.session() as s:
            row = await self.visible(s, caller, router_id)
            interfaces = list(await s.scalars(select(Port.id).where(Port.device_id == row.id,
                                                                    Port.device_owner == INTERFACE)))
            if interfaces:
                raise InUse(f"Router {row.id} has ports still attached: {', '.join(interfaces)}", "RouterInUse")
            if await s.scalar(select(FloatingIP.id).where(FloatingIP.router_id == row.id).limit(1)):
                raise InUse(f"Router {row.id} still has floating IPs associated", "RouterInUse")
            if row.gw_port_id:
                gw = await s.get(Port, row.gw_port_id)
                if gw is not None:
                    await s.delete(gw)
            await drop_tags(s, "routers", router_id)
            await s.delete(row)

    # -- gateway

    async def _set_gateway(self, s: AsyncSession, caller: Caller, row: Router, info: dict[str, Any]) -> None:
        """Set, change or clear (``{}``) the router's gateway on an external network."""
        network_id = info.get("network_id")
        if not network_id:
            await self._clear_gateway(s, row)
            return
        if not caller.is_admin and ("enable_snat" in info or "external_fixed_ips" in info):
            key = "enable_snat" if "enable_snat" in info else "external_fixed_ips"
            raise PolicyNotAuthorized(f"(rule:update_router and rule:update_router:external_gateway_info:{key})")
        network = await s.get(Network, network_id)
        if network is None or not (network.external or caller.owns(network.project_id)):
            raise NotFound("Network", network_id)
        if not network.external:
            raise BadResourceRequest("router", f"Network {network_id} is not an external network")
        current = await s.get(Port, row.gw_port_id) if row.gw_port_id else None
        if current is None or current.network_id != network_id or "external_fixed_ips" in info:
            await self._clear_gateway(s, row)
            fixed = info.get("external_fixed_ips")
            port = await self.ports.create_in(s, Caller("", True), network, "", {
                "device_owner": GATEWAY, "device_id": row.id, "security_groups": [],
                "port_security_enabled": False, **({"fixed_ips": fixed} if fixed else {})})
            row.gw_port_id = port.id
        row.enable_snat = bool(info.get("enable_snat", True))

    async def _clear_gateway(self, s: AsyncSession, row: Router) -> None:
        if not row.gw_port_id:
            return
        gw = await s.get(Port, row.gw_port_id)
        if gw is not None and await s.scalar(select(FloatingIP.id).where(
                FloatingIP.router_id == row.id, FloatingIP.floating_network_id == gw.network_id).limit(1)):
            raise InUse(f"Gateway cannot be updated for router {row.id}, since a gateway to external network "
                        f"{gw.network_id} is required by one or more floating IPs.",
                        "RouterExternalGatewayInUseByFloatingIp")
        row.gw_port_id = None
        await s.flush()
        if gw is not None:
            await s.delete(gw)
            await s.flush()

    @staticmethod
    async def _routes(s: AsyncSession, row: Router, routes: list[Any]) -> list[dict[str, str]]:
        """Static routes: each next hop must be on a subnet the router has an interface on (Neutron's check)."""
        cidrs = [ipaddress.ip_network(c) for c in await s.scalars(
            select(Subnet.cidr).join(IPAllocation, IPAllocation.subnet_id == Subnet.id).join(
                Port, Port.id == IPAllocation.port_id).where(Port.device_id == row.id))]
        out = []
        for route in routes:
            if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
                raise BadResourceRequest("router", f"Invalid format for routes: {route}")
            try:
                destination = ipaddress.ip_network(route["destination"], strict=False)
                nexthop = ipaddress.ip_address(route["nexthop"])
            except (TypeError, ValueError):
                raise BadResourceRequest("router", f"Invalid format for routes: {route}") from None
            if not any(nexthop in cidr for cidr in cidrs):
                raise BadResourceRequest("router", f"Invalid format for routes: {routes}, the nexthop is not "
                                                   "connected with router")
            out.append({"destination": str(destination), "nexthop": str(nexthop)})
        return out

    # -- interfaces

    async def add_interface(self, caller: Caller, router_id: str, body: dict[str, Any]) -> dict[str, Any]:
        subnet_id, port_id = self._interface_keys(body)
        async with self.db.session() as s:
            row = await self.visible(s, caller, router_id)
            if port_id:
                port = await self.ports.visible(s, caller, port_id)
                if port.device_id:
                    raise Conflict(f"Unable to complete operation on port {port.id} for network {port.network_id}. "
                                   f"Port already has an attached device {port.device_id}.", "PortInUse")
                subnets = list(await s.scalars(select(IPAllocation.subnet_id).where(IPAllocation.port_id == port.id)))
                if not subnets:
                    raise BadResourceRequest("router", "Router port must have at least one fixed IP")
                for sid in subnets:
                    await self._check_new_subnet(s, row, await s.get(Subnet, sid))
                port.device_id, port.device_owner = row.id, INTERFACE
            else:
                subnet = await s.get(Subnet, subnet_id)
                if subnet is None:
                    raise NotFound("Subnet", str(subnet_id))
                network = await self.networks.visible(s, caller, subnet.network_id)
                if not caller.owns(subnet.project_id) and not network.shared:
                    raise NotFound("Subnet", subnet.id)
                if not subnet.gateway_ip:
                    raise BadResourceRequest("router", "Subnet for router interface must have a gateway IP")
                await self._check_new_subnet(s, row, subnet)
                port = await self.ports.create_in(s, caller, network, row.project_id, {
                    "device_owner": INTERFACE, "device_id": row.id, "security_groups": [],
                    "port_security_enabled": False,
                    "fixed_ips": [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}]})
                subnets = [subnet.id]
            touch(row)
            await s.flush()
            return {"id": row.id, "tenant_id": row.project_id, "project_id": row.project_id, "port_id": port.id,
                    "network_id": port.network_id, "subnet_id": subnets[0], "subnet_ids": subnets}

    @staticmethod
    def _interface_keys(body: dict[str, Any]) -> tuple[str | None, str | None]:
        subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
        if not subnet_id and not port_id:
            raise BadResourceRequest("router", "Either subnet_id or port_id must be specified")
        if subnet_id and port_id:
            raise BadResourceRequest("router", "Cannot specify both subnet-id and port-id")
        return subnet_id, port_id

    @staticmethod
    async def _check_new_subnet(s: AsyncSession, row: Router, subnet: Subnet | None) -> None:
        if subnet is None:
            raise HTTPNotFound()
        new = ipaddress.ip_network(subnet.cidr)
        attached = await s.execute(select(Subnet.id, Subnet.cidr)
                                   .join(IPAllocation, IPAllocation.subnet_id == Subnet.id)
                                   .join(Port, Port.id == IPAllocation.port_id)
                                   .where(Port.device_id == row.id, Port.device_owner == INTERFACE))
        for other_id, cidr in attached:
            if other_id == subnet.id:
                raise BadResourceRequest("router", f"Router already has a port on subnet {subnet.id}")
            if new.overlaps(ipaddress.ip_network(cidr)):
                raise BadResourceRequest("router", f"Cidr {subnet.cidr} of subnet {subnet.id} overlaps with cidr "
                                                   f"{cidr} of subnet {other_id}")

    async def remove_interface(self, caller: Caller, router_id: str, body: dict[str, Any]) -> dict[str, Any]:
        subnet_id, port_id = self._interface_keys(body)
        async with self.db.session() as s:
            row = await self.visible(s, caller, router_id)
            ports = list(await s.scalars(select(Port).where(Port.device_id == row.id, Port.device_owner == INTERFACE)))
            port = None
            for candidate in ports:
                subnets = list(await s.scalars(select(IPAllocation.subnet_id).where(
                    IPAllocation.port_id == candidate.id)))
                if candidate.id == port_id or (subnet_id and subnet_id in subnets):
                    port = candidate
                    break
            if port is None:
                if port_id:
                    raise Missing(f"Router {row.id} does not have an interface with id {port_id}",
                                  "RouterInterfaceNotFound")
                raise Missing(f"Router {row.id} has no interface on subnet {subnet_id}",
                              "RouterInterfaceNotFoundForSubnet")
            if await s.scalar(select(FloatingIP.id).join(IPAllocation, IPAllocation.port_id == FloatingIP.fixed_port_id)
                              .where(FloatingIP.router_id == row.id, IPAllocation.subnet_id.in_(subnets)).limit(1)):
                raise InUse(f"Router interface for subnet {subnets[0]} on router {row.id} cannot be deleted, as it is "
                            "required by one or more floating IPs.", "RouterInterfaceInUseByFloatingIP")
            await s.delete(port)
            touch(row)
            return {"id": row.id, "tenant_id": row.project_id, "project_id": row.project_id, "port_id": port.id,
                    "network_id": port.network_id, "subnet_id": subnets[0], "subnet_ids": subnets}
