"""Ports: a network attachment with a MAC, fixed IPs (IPAM), security groups and a host binding.

* **MAC**: Neutron's ``fa:16:3e`` base with three random octets, unique per
  network (a given one that is taken is 409 MacAddressInUse).
* **Fixed IPs**: with no ``fixed_ips`` a port gets one address of the
  network's first IPv4 subnet with room, one of its first stateful IPv6
  subnet, and its EUI-64 address on every SLAAC subnet; ``fixed_ips`` names
  subnets and/or addresses instead (SLAAC addresses are still added, as
  Neutron does, except for router ports and an explicit empty list). Each address is a row keyed by (subnet,
  address): a taken address is 409 IpAddressAlreadyAllocated, a full subnet
  409 IpAddressGenerationFailure, and two concurrent requests can never
  both get one address. The lowest free address is tried first; a request
  whose INSERT loses a race tries the next free ones in random order.
* **Security groups**: the project's ``default`` group unless given; none
  when port security is off (which the network's setting defaults).
* **Who may**: ports go on networks the caller owns, or shared ones; a
  network only visible because it is external is the admin's (403); the
  ``binding:*`` attributes are the admin's to set and see.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.db import Database, StaleTransaction
from kumo.network import ipam
from kumo.network.common import PORT_COLUMNS, Caller, Filters, drop_tags, narrowed, standard_view, tags_of, touch
from kumo.network.errors import Conflict, Invalid, InvalidInput, NotFound, PolicyNotAuthorized
from kumo.network.models import FloatingIP, IPAllocation, Network, Port, PortSecurityGroup, SecurityGroup, Subnet
from kumo.network.networks import NetworkService
from kumo.network.security_groups import SecurityGroupService

MAC_PREFIX = "fa:16:3e"
#: Ports that routers and floating IPs own: only their owner removes them (Neutron's L3 port check).
OWNED_BY_L3 = ("network:router_interface", "network:router_gateway", "network:floatingip")
#: How many free addresses a port picks its own from at random (Neutron's IPAM uses up to 1000).
CANDIDATE_WINDOW = 64
ADMIN_ATTRS = ("binding:host_id", "binding:profile", "mac_address")


def random_mac() -> str:
    return MAC_PREFIX + "".join(f":{random.randint(0, 255):02x}" for _ in range(3))


class PortService:
    def __init__(self, db: Database, networks: NetworkService, groups: SecurityGroupService,
                 dns_domain: str = "openstacklocal") -> None:
        self.db = db
        self.networks = networks
        self.groups = groups
        self.dns_domain = dns_domain

    # -- reads

    async def visible(self, s: AsyncSession, caller: Caller, port_id: str) -> Port:
        row = await s.get(Port, port_id)
        if row is None or not caller.owns(row.project_id):
            if row is not None:  # the owner of the network sees every port on it (Neutron's network owner rule)
                network = await s.get(Network, row.network_id)
                if network is not None and network.project_id == caller.project_id:
                    return row
            raise NotFound("Port", port_id)
        return row

    async def list(self, caller: Caller, filters: Filters | None = None) -> list[dict[str, Any]]:
        stmt = narrowed(select(Port), Port, filters, PORT_COLUMNS)
        if not caller.is_admin:
            owned_nets = select(Network.id).where(Network.project_id == caller.project_id)
            stmt = stmt.where((Port.project_id == caller.project_id) | Port.network_id.in_(owned_nets))
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
            return await self._views(s, rows, caller)

    async def get(self, caller: Caller, port_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            return (await self._views(s, [await self.visible(s, caller, port_id)], caller))[0]

    async def _views(self, s: AsyncSession, rows: list[Port], caller: Caller) -> list[dict[str, Any]]:
        ids = [r.id for r in rows]
        ips: dict[str, list[IPAllocation]] = {i: [] for i in ids}
        groups: dict[str, list[str]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for alloc in await s.scalars(select(IPAllocation).where(IPAllocation.port_id.in_(chunk))
                                         .order_by(IPAllocation.position)):
                ips[alloc.port_id].append(alloc)
            for pid, gid in await s.execute(select(PortSecurityGroup.port_id, PortSecurityGroup.security_group_id)
                                            .where(PortSecurityGroup.port_id.in_(chunk))):
                groups[pid].append(gid)
        tags = await tags_of(s, "ports", ids)
        return [self.view(r, ips[r.id], sorted(groups[r.id]), tags[r.id], caller.is_admin) for r in rows]

    # -- create

    async def create(self, caller: Caller, values: dict[str, Any]) -> dict[str, Any]:
        project = values.get("project_id") or values.get("tenant_id") or caller.project_id
        default_group = await self.groups.ensure_default(project) if "security_groups" not in values else None
        async with self.db.session() as s:
            network = await self.networks.visible(s, caller, values["network_id"])
            owner = caller.owns(network.project_id)
            if not owner and not network.shared:
                raise PolicyNotAuthorized("rule:create_port")
            self._check_privileged(caller, values, owner)
            await self.networks.quotas.check(s, project, "port")
            row = await self.create_in(s, caller, network, project, values, default_group=default_group)
            return (await self._views(s, [row], caller))[0]

    async def create_in(self, s: AsyncSession, caller: Caller, network: Network, project: str,
                        values: dict[str, Any], *, default_group: str | None = None) -> Port:
        """Make a port inside the caller's transaction, no policy asked (routers and floating IPs use it)."""
        row = Port(id=str(uuid.uuid4()), project_id=project, network_id=network.id, name=values.get("name", ""),
                   description=values.get("description", ""), admin_state_up=values.get("admin_state_up", True),
                   device_id=values.get("device_id", ""), device_owner=values.get("device_owner", ""),
                   status="DOWN", dns_name=values.get("dns_name", ""),
                   port_security_enabled=values.get("port_security_enabled", network.port_security_enabled),
                   allowed_address_pairs=values.get("allowed_address_pairs") or [],
                   extra_dhcp_opts=values.get("extra_dhcp_opts") or [])
        self._bind(row, values)
        row.mac_address = await self._mac(s, network.id, values.get("mac_address"))
        s.add(row)
        await s.flush()
        await self._allocate(s, network, row, values.get("fixed_ips"))
        await self._set_groups(s, caller, row, values.get("security_groups"), create=True,
                               default_group=default_group)
        await s.flush()
        return row

    @staticmethod
    def _check_privileged(caller: Caller, values: dict[str, Any], network_owner: bool, action: str = "create_port"
                          ) -> None:
        """Neutron's attribute rules: bindings are the admin's, chosen MACs/addresses the network owner's."""
        denied = [key for key in ("binding:host_id", "binding:profile") if key in values and not caller.is_admin]
        if not network_owner:
            if values.get("mac_address"):
                denied.append("mac_address")
            if str(values.get("device_owner") or "").startswith("network:"):
                denied.append("device_owner")
            if any(isinstance(ip, dict) and "ip_address" in ip for ip in values.get("fixed_ips") or []):
                denied.append("fixed_ips:ip_address")
        if denied:
            rules = " and ".join([f"rule:{action}", *(f"rule:{action}:{key}" for key in denied)])
            raise PolicyNotAuthorized(f"({rules})")

    @staticmethod
    def _bind(row: Port, values: dict[str, Any]) -> None:
        if "binding:host_id" in values:
            row.binding_host_id = values["binding:host_id"] or ""
        if "binding:profile" in values:
            row.binding_profile = values["binding:profile"] or {}
        if "binding:vnic_type" in values:
            row.binding_vnic_type = values["binding:vnic_type"]
        bound = bool(row.binding_host_id)
        row.binding_vif_type = "bridge" if bound else "unbound"
        row.binding_vif_details = {"connectivity": "l2", "port_filter": True} if bound else {}

    @staticmethod
    async def _mac(s: AsyncSession, network_id: str, wanted: str | None) -> str:
        """A MAC unique on the network: the wanted one if free, else a random one (one indexed lookup each)."""

        async def taken(mac: str) -> bool:
            return await s.scalar(select(Port.id).where(Port.network_id == network_id, Port.mac_address == mac)
                                  .limit(1)) is not None

        if wanted:
            if await taken(wanted.lower()):
                raise Conflict(f"Unable to complete operation for network {network_id}. The mac address {wanted} "
                               "is in use.", "MacAddressInUse")
            return wanted.lower()
        for _ in range(16):
            mac = random_mac()
            if not await taken(mac):
                return mac
        raise Conflict(f"Unable to generate unique mac on network {network_id}.", "MacAddressGenerationFailure")

    # -- IPAM

    async def _allocate(self, s: AsyncSession, network: Network, port: Port, requested: list[dict[str, Any]] | None
                        ) -> None:
        subnets = list(await s.scalars(select(Subnet).where(Subnet.network_id == network.id)
                                       .order_by(Subnet.created_at, Subnet.id)))
        position = 0
        if requested is None:
            v4 = [sub for sub in subnets if sub.ip_version == 4]
            stateful = [sub for sub in subnets
                        if sub.ip_version == 6 and not ipam.is_auto_address(6, sub.ipv6_address_mode)]
            for group in (v4, stateful):  # one address from the first subnet of each family with room
                if group:
                    await self._first_with_room(s, network.id, port, group, position)
                    position += 1
            plan: list[tuple[Subnet, str | None]] = [
                (sub, str(ipam.eui64(ipaddress.ip_network(sub.cidr), port.mac_address))) for sub in subnets
                if ipam.is_auto_address(sub.ip_version, sub.ipv6_address_mode)]
        else:
            plan = [self._resolve(network.id, subnets, item) for item in requested]
            if requested and not port.device_owner.startswith("network:router"):
                # Neutron adds the SLAAC address of every auto-address subnet the request did not name
                named = {sub.id for sub, _ in plan}
                plan += [(sub, str(ipam.eui64(ipaddress.ip_network(sub.cidr), port.mac_address))) for sub in subnets
                         if sub.id not in named and ipam.is_auto_address(sub.ip_version, sub.ipv6_address_mode)]
        for subnet, address in plan:
            await self._insert(s, network.id, port, subnet, address, position, chosen_subnet=requested is not None)
            position += 1

    async def _first_with_room(self, s: AsyncSession, network_id: str, port: Port, subnets: list[Subnet],
                               position: int) -> None:
        """An address from the first of ``subnets`` that has one free (Neutron tries the subnets in turn)."""
        for subnet in subnets:
            try:
                await self._insert(s, network_id, port, subnet, None, position, chosen_subnet=False)
                return
            except Conflict as exc:
                if exc.neutron_type != "IpAddressGenerationFailure":
                    raise
        raise Conflict(f"No more IP addresses available on network {network_id}.", "IpAddressGenerationFailure")

    @staticmethod
    def _resolve(network_id: str, subnets: list[Subnet], item: dict[str, Any]) -> tuple[Subnet, str | None]:
        """The subnet (and address) one ``fixed_ips`` entry asks for (Neutron's ``_get_subnet_for_fixed_ip``)."""
        if not subnets:
            raise InvalidInput("IP allocation requires subnets for network")
        by_id = {sub.id: sub for sub in subnets}
        subnet_id, address = item.get("subnet_id"), item.get("ip_address")
        if subnet_id is not None and subnet_id not in by_id:
            raise InvalidInput(f"Failed to create port on network {network_id}, because fixed_ips included invalid "
                               f"subnet {subnet_id}")
        if address is None:
            if subnet_id is None:
                raise InvalidInput("IP allocation requires subnet_id or ip_address")
            return by_id[subnet_id], None
        ip = ipam.parse_ip(address)
        for subnet in [by_id[subnet_id]] if subnet_id else subnets:
            if ip in ipaddress.ip_network(subnet.cidr):
                return subnet, str(ip)
        if subnet_id:
            raise Invalid(f"IP address {address} is not a valid IP for the specified subnet.", "InvalidIpForSubnet")
        raise Invalid(f"IP address {address} is not a valid IP for any of the subnets on the specified network.",
                      "InvalidIpForNetwork")

    async def _insert(self, s: AsyncSession, network_id: str, port: Port, subnet: Subnet, address: str | None,
                      position: int, *, chosen_subnet: bool) -> None:
        if address is not None:
            net = ipaddress.ip_network(subnet.cidr)
            if subnet.ip_version == 4 and net.prefixlen < 31 and ipaddress.ip_address(address) in (
                    net.network_address, net.broadcast_address):
                raise Invalid(f"IP address {address} is not a valid IP for the specified subnet.",
                              "InvalidIpForSubnet")
            try:
                async with s.begin_nested():
                    s.add(IPAllocation(subnet_id=subnet.id, ip_address=address, port_id=port.id,
                                       network_id=network_id, position=position))
            except IntegrityError:
                raise Conflict(f"IP address {address} already allocated in subnet {subnet.id}",
                               "IpAddressAlreadyAllocated") from None
            return
        taken = set(await s.scalars(select(IPAllocation.ip_address).where(IPAllocation.subnet_id == subnet.id)))
        if subnet.gateway_ip:
            taken.add(subnet.gateway_ip)
        free = ipam.candidates(ipam.pools_of(subnet.allocation_pools), taken)
        window = list(itertools.islice(free, CANDIDATE_WINDOW))
        rest = window[1:]
        random.shuffle(rest)  # after a lost race, concurrent requests scatter instead of queueing for one address
        raced = False
        for choice in window[:1] + rest:
            try:
                async with s.begin_nested():
                    s.add(IPAllocation(subnet_id=subnet.id, ip_address=str(choice), port_id=port.id,
                                       network_id=network_id, position=position))
                return
            except IntegrityError:
                raced = True  # taken by a concurrent request since the read: the next one
        if raced:  # every candidate lost a race: a fresh transaction sees what is really left
            raise StaleTransaction()
        raise Conflict(f"No more IP addresses available for subnet {subnet.id}." if chosen_subnet else
                       f"No more IP addresses available on network {network_id}.", "IpAddressGenerationFailure")

    # -- security groups

    async def _set_groups(self, s: AsyncSession, caller: Caller, port: Port, wanted: list[str] | None, *,
                          create: bool, default_group: str | None = None) -> None:
        if wanted is None and not create:
            return
        if wanted is None:
            wanted = [] if not port.port_security_enabled or port.device_owner.startswith("network:") or \
                default_group is None else [default_group]
        if wanted and not port.port_security_enabled:
            raise Conflict("Port has security group associated. Cannot disable port security or ip address until "
                           "security group is removed", "PortSecurityAndIPRequiredForSecurityGroups")
        for group_id in wanted:
            group = await s.get(SecurityGroup, group_id)
            if group is None or not (caller.is_admin or group.project_id in (caller.project_id, port.project_id)):
                raise NotFound("SecurityGroup", group_id)
        await s.execute(delete(PortSecurityGroup).where(PortSecurityGroup.port_id == port.id))
        for group_id in dict.fromkeys(wanted):
            s.add(PortSecurityGroup(port_id=port.id, security_group_id=group_id))

    # -- update and delete

    async def update(self, caller: Caller, port_id: str, values: dict[str, Any]) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await self.visible(s, caller, port_id)
            network = await s.get(Network, row.network_id)
            assert network is not None
            self._check_privileged(caller, values, caller.owns(network.project_id), "update_port")
            for key in ("name", "description", "admin_state_up", "device_id", "device_owner", "dns_name",
                        "allowed_address_pairs", "extra_dhcp_opts"):
                if key in values:
                    setattr(row, key, values[key] if values[key] is not None else
                            ([] if key in ("allowed_address_pairs", "extra_dhcp_opts") else ""))
            if "port_security_enabled" in values:
                row.port_security_enabled = values["port_security_enabled"]
                if not row.port_security_enabled and "security_groups" not in values and await s.scalar(
                        select(PortSecurityGroup.port_id).where(PortSecurityGroup.port_id == row.id).limit(1)):
                    raise Conflict("Port has security group associated. Cannot disable port security or ip address "
                                   "until security group is removed", "PortSecurityPortHasSecurityGroup")
            if "mac_address" in values:
                row.mac_address = await self._mac(s, row.network_id, values["mac_address"])
            if any(k.startswith("binding:") for k in values):
                self._bind(row, values)
            if "fixed_ips" in values:
                await s.execute(delete(IPAllocation).where(IPAllocation.port_id == row.id))
                await s.flush()
                await self._allocate(s, network, row, values["fixed_ips"] or [])
            await self._set_groups(s, caller, row, values.get("security_groups"), create=False)
            touch(row)
            await s.flush()
            return (await self._views(s, [row], caller))[0]

    async def delete(self, caller: Caller, port_id: str) -> None:
        async with self.db.session() as s:
            row = await self.visible(s, caller, port_id)
            if row.device_owner in OWNED_BY_L3:
                raise Conflict(f"Port {port_id} cannot be deleted directly via the port API: has device owner "
                               f"{row.device_owner}.", "ServicePortInUse")
            await s.execute(update(FloatingIP).where(FloatingIP.fixed_port_id == port_id).values(
                fixed_port_id=None, fixed_ip_address=None, router_id=None, status="DOWN"))  # as Neutron disassociates
            await drop_tags(s, "ports", port_id)
            await s.delete(row)

    # -- view

    def view(self, row: Port, ips: list[IPAllocation], groups: list[str], tags: list[str], admin: bool
             ) -> dict[str, Any]:
        fixed = [{"subnet_id": ip.subnet_id, "ip_address": ip.ip_address} for ip in ips]
        hostname = row.dns_name or f"host-{fixed[0]['ip_address'].replace('.', '-').replace(':', '-')}" if fixed \
            else row.dns_name
        body: dict[str, Any] = {
            "id": row.id, "name": row.name, "network_id": row.network_id, "mac_address": row.mac_address,
            "admin_state_up": row.admin_state_up, "status": row.status, "device_id": row.device_id,
            "device_owner": row.device_owner, "fixed_ips": fixed, "allowed_address_pairs": row.allowed_address_pairs,
            "extra_dhcp_opts": row.extra_dhcp_opts, "security_groups": groups,
            "port_security_enabled": row.port_security_enabled, "binding:vnic_type": row.binding_vnic_type,
            "dns_name": row.dns_name, "dns_assignment": [
                {"hostname": hostname, "ip_address": ip["ip_address"], "fqdn": f"{hostname}.{self.dns_domain}."}
                for ip in fixed],
            "ip_allocation": "immediate", "propagate_uplink_status": False, "qos_policy_id": None,
            "qos_network_policy_id": None, "resource_request": None, **standard_view(row, tags)}
        if admin:
            body.update({"binding:host_id": row.binding_host_id, "binding:profile": row.binding_profile,
                         "binding:vif_type": row.binding_vif_type, "binding:vif_details": row.binding_vif_details})
        return body

