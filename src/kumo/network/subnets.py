"""Subnets: IPv4/IPv6 address ranges on a network, with gateway, allocation pools, DNS servers and routes.

Validation follows Neutron's ``_validate_subnet`` and IPAM: the cidr must be
a network address (``10.0.0.1/24`` is refused with the cidr it meant),
subnets of one network may not overlap, the gateway must be an address of
the subnet (not its network or broadcast address) and outside every pool,
pools must lie inside the cidr and not overlap, IPv6 RA and address modes
must agree. A subnet with addresses still allocated cannot be deleted
(409 SubnetInUse), except those of DHCP ports, which go with it.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.db import Database
from kumo.network import ipam
from kumo.network.common import SUBNET_COLUMNS, Caller, Filters, drop_tags, narrowed, standard_view, tags_of, touch
from kumo.network.errors import BadRequest, BadResourceRequest, InUse, InvalidInput, NotFound, PolicyNotAuthorized
from kumo.network.models import IPAllocation, Network, Port, Subnet, SubnetPool
from kumo.network.networks import DHCP_OWNER, NetworkService
from kumo.network.subnetpools import SubnetPoolService

IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
MAX_DNS_NAMESERVERS = 5  # Neutron's max_dns_nameservers
MAX_HOST_ROUTES = 20  # Neutron's max_subnet_host_routes


class SubnetService:
    def __init__(self, db: Database, networks: NetworkService, pools: SubnetPoolService) -> None:
        self.db = db
        self.networks = networks
        self.pools = pools

    async def visible(self, s: AsyncSession, caller: Caller, subnet_id: str) -> Subnet:
        row = await s.get(Subnet, subnet_id)
        if row is None:
            raise NotFound("Subnet", subnet_id)
        network = await s.get(Network, row.network_id)
        if not (caller.owns(row.project_id) or (network is not None and (network.shared or network.external))):
            raise NotFound("Subnet", subnet_id)
        return row

    async def list(self, caller: Caller, filters: Filters | None = None) -> list[dict[str, Any]]:
        stmt = narrowed(select(Subnet), Subnet, filters, SUBNET_COLUMNS)
        if not caller.is_admin:
            visible_nets = select(Network.id).where(Network.shared | Network.external)
            stmt = stmt.where((Subnet.project_id == caller.project_id) | Subnet.network_id.in_(visible_nets))
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
            tags = await tags_of(s, "subnets", [r.id for r in rows])
        return [view(r, tags[r.id]) for r in rows]

    async def get(self, caller: Caller, subnet_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await self.visible(s, caller, subnet_id)
            return view(row, (await tags_of(s, "subnets", [row.id]))[row.id])

    async def create(self, caller: Caller, values: dict[str, Any]) -> dict[str, Any]:
        async with self.db.session() as s:
            network = await self.networks.visible(s, caller, values["network_id"])
            if not caller.owns(network.project_id):
                raise PolicyNotAuthorized("rule:create_subnet")
            pool, net = await self._cidr(s, caller, values)
            row = Subnet(id=str(uuid.uuid4()), project_id=values.get("project_id") or values.get("tenant_id")
                         or caller.project_id, network_id=network.id, name=values.get("name", ""),
                         description=values.get("description", ""), ip_version=net.version, cidr=str(net),
                         enable_dhcp=values.get("enable_dhcp", True), service_types=values.get("service_types") or [],
                         subnetpool_id=pool.id if pool is not None else None)
            await self.networks.quotas.check(s, row.project_id, "subnet")
            await self._check_overlap(s, network.id, net, None)
            self._apply_ipv6_modes(row, values)
            gateway = self._gateway(net, values.get("gateway_ip", ipam.default_gateway(net)))
            row.gateway_ip = str(gateway) if gateway is not None else None
            pools = (ipam.parse_pools(values["allocation_pools"], net, gateway) if values.get("allocation_pools")
                     is not None else ipam.default_pools(net, gateway))
            row.allocation_pools = [p.as_dict() for p in pools]
            row.dns_nameservers = nameservers(values.get("dns_nameservers") or [], net.version)
            row.host_routes = host_routes(values.get("host_routes") or [], net.version)
            s.add(row)
            touch(network)  # Neutron bumps the network's revision when a subnet is added
            await s.flush()
            return view(row, [])

    async def _cidr(self, s: AsyncSession, caller: Caller, values: dict[str, Any]
                    ) -> tuple[SubnetPool | None, ipam.IPNetwork]:
        """The subnet's cidr: as given, or carved from its subnet pool (which stays locked until commit)."""
        version, cidr = values.get("ip_version"), values.get("cidr")
        pool_id = values.get("subnetpool_id")
        if not pool_id and not values.get("use_default_subnetpool"):
            if cidr is None:
                raise BadResourceRequest("subnets", "a subnetpool must be specified in the absence of a cidr")
            if values.get("prefixlen") is not None:
                raise InvalidInput("prefixlen is only valid with a subnetpool")
            return None, ipam.parse_cidr(cidr, version)
        wanted = ipam.parse_cidr(cidr, version) if cidr is not None else None
        pool = (await self.pools.visible(s, caller, pool_id, lock=True) if pool_id
                else await self.pools.default_pool(s, caller, version or 4))
        return pool, await self.pools.allocate(s, pool, wanted, values.get("prefixlen"), version)

    @staticmethod
    async def _check_overlap(s: AsyncSession, network_id: str, net: ipam.IPNetwork, skip: str | None) -> None:
        for other_id, cidr in await s.execute(select(Subnet.id, Subnet.cidr).where(Subnet.network_id == network_id)):
            if other_id != skip and net.overlaps(ipaddress.ip_network(cidr)):
                raise InvalidInput(f"Requested subnet with cidr: {net} for network: {network_id} overlaps with "
                                   "another subnet")

    @staticmethod
    def _gateway(net: ipam.IPNetwork, raw: Any) -> ipam.IPAddress | None:
        """The gateway: an address of the subnet, not its IPv4 network or broadcast address.

        Neutron accepts a gateway outside the cidr (an on-link route it does
        not check); Kumo refuses it, because the dataplane would give guests
        a default route they cannot reach.
        """
        if raw is None:
            return None
        gateway = raw if not isinstance(raw, str) else ipam.parse_ip(raw)
        if gateway.version != net.version:
            raise InvalidInput(f"gateway_ip '{gateway}' does not match the ip_version '{net.version}'")
        if gateway not in net:
            raise InvalidInput(f"Gateway IP {gateway} is outside the subnet {net}")
        if net.version == 4 and net.prefixlen < 31 and gateway in (net.network_address, net.broadcast_address):
            raise InvalidInput("Gateway is not valid on subnet")
        return gateway

    @staticmethod
    def _apply_ipv6_modes(row: Subnet, values: dict[str, Any]) -> None:
        ra, addr = values.get("ipv6_ra_mode"), values.get("ipv6_address_mode")
        if row.ip_version == 4 and (ra or addr):
            raise InvalidInput(f"{'ipv6_ra_mode' if ra else 'ipv6_address_mode'} is not valid when ip_version is 4")
        if ra and addr and ra != addr:
            raise InvalidInput(f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' is not valid. "
                               "If both attributes are set, they must be the same value")
        if (ra or addr) and not row.enable_dhcp:
            raise InvalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
        if (ra or addr) in ipam.IPV6_SLAAC_MODES and ipaddress.ip_network(row.cidr).prefixlen != 64:
            raise InvalidInput(f"Invalid CIDR {row.cidr} for IPv6 address mode. OpenStack uses the EUI-64 address "
                               "format, which requires the prefix to be /64")
        if row.enable_dhcp and ((row.ip_version == 4 and ipaddress.ip_network(row.cidr).prefixlen > 30) or (
                row.ip_version == 6 and ipaddress.ip_network(row.cidr).prefixlen > 126)):
            raise InvalidInput("Subnet has a prefix length that is incompatible with DHCP service enabled")
        row.ipv6_ra_mode, row.ipv6_address_mode = ra, addr

    async def update(self, caller: Caller, subnet_id: str, values: dict[str, Any]) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await self.visible(s, caller, subnet_id)
            if not caller.owns(row.project_id):
                raise PolicyNotAuthorized("rule:update_subnet")
            net = ipaddress.ip_network(row.cidr)
            for key in ("name", "description", "enable_dhcp"):
                if key in values:
                    setattr(row, key, values[key])
            if "gateway_ip" in values or "allocation_pools" in values:
                # the gateway and the pools are checked together, whichever of them changes
                gateway = self._gateway(net, values["gateway_ip"]) if "gateway_ip" in values else (
                    ipaddress.ip_address(row.gateway_ip) if row.gateway_ip else None)
                pools = ipam.parse_pools(values.get("allocation_pools", row.allocation_pools), net, gateway)
                row.gateway_ip = str(gateway) if gateway is not None else None
                row.allocation_pools = [p.as_dict() for p in pools]
            if "dns_nameservers" in values:
                row.dns_nameservers = nameservers(values["dns_nameservers"] or [], net.version)
            if "host_routes" in values:
                row.host_routes = host_routes(values["host_routes"] or [], net.version)
            touch(row)
            await s.flush()
            return view(row, (await tags_of(s, "subnets", [row.id]))[row.id])

    async def delete(self, caller: Caller, subnet_id: str) -> None:
        async with self.db.session() as s:
            row = await self.visible(s, caller, subnet_id)
            if not caller.owns(row.project_id):
                raise PolicyNotAuthorized("rule:delete_subnet")
            in_use = await s.scalar(select(func.count()).select_from(IPAllocation).join(
                Port, Port.id == IPAllocation.port_id).where(IPAllocation.subnet_id == subnet_id,
                                                             Port.device_owner != DHCP_OWNER))
            if in_use:
                raise InUse(f"Unable to complete operation on subnet {subnet_id}: One or more ports have an IP "
                            "allocation from this subnet.", "SubnetInUse")
            await drop_tags(s, "subnets", subnet_id)
            await s.delete(row)


def nameservers(raw: list[Any], version: int) -> list[str]:
    if len(raw) > MAX_DNS_NAMESERVERS:
        raise InvalidInput(f"Number of DNS nameservers exceeds the limit {MAX_DNS_NAMESERVERS}")
    seen: list[str] = []
    for item in raw:
        address = ipam.parse_ip(item)
        if address.version != version:
            raise InvalidInput(f"dns_nameserver '{item}' does not match the ip_version '{version}'")
        if str(address) in seen:
            raise BadRequest(f"Invalid input for dns_nameservers. Reason: Duplicate nameserver '{item}'.")
        seen.append(str(address))
    return seen


def host_routes(raw: list[Any], version: int) -> list[dict[str, str]]:
    if len(raw) > MAX_HOST_ROUTES:
        raise InvalidInput(f"Number of host routes exceeds the limit {MAX_HOST_ROUTES}")
    routes: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise BadRequest(f"Invalid input for host_routes. Reason: Invalid data format for hostroute: '{item}'.")
        destination = ipaddress.ip_network(item["destination"], strict=False) if isinstance(
            item["destination"], str) else None
        if destination is None:
            raise InvalidInput(f"'{item['destination']}' is not a valid IP subnet")
        nexthop = ipam.parse_ip(item["nexthop"])
        if destination.version != version or nexthop.version != version:
            raise InvalidInput(f"Host route {item} does not match the subnet's IP version {version}")
        route = {"destination": str(destination), "nexthop": str(nexthop)}
        if route in routes:
            raise BadRequest(f"Invalid input for host_routes. Reason: Duplicate hostroute '{item}'.")
        routes.append(route)
    return routes


def view(row: Subnet, tags: list[str]) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "network_id": row.network_id, "ip_version": row.ip_version,
            "cidr": row.cidr, "gateway_ip": row.gateway_ip, "enable_dhcp": row.enable_dhcp,
            "ipv6_ra_mode": row.ipv6_ra_mode, "ipv6_address_mode": row.ipv6_address_mode,
            "allocation_pools": row.allocation_pools, "dns_nameservers": row.dns_nameservers,
            "host_routes": row.host_routes, "service_types": row.service_types, "subnetpool_id": row.subnetpool_id,
            "segment_id": None, "dns_publish_fixed_ip": False, **standard_view(row, tags)}
