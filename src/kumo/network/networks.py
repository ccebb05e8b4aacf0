"""Networks: create with a segment (VXLAN id or flat physical network), visibility, update, delete.

Neutron's rules kept here:

* a project sees its own networks, shared ones and external ones (Neutron's
  RBAC ``access_as_shared`` / ``access_as_external`` to everyone); others'
  private networks do not exist for it (404);
* ``shared``, ``router:external`` and the ``provider:*`` attributes are
  admin-only (policy ``create_network:shared`` ...); a project's network gets
  the tenant network type (VXLAN) with the lowest free VNI of ``vni_ranges``;
* a segment (VNI, or the flat physical network) belongs to one network at a
  time, enforced by the allocation table's primary key;
* a network cannot be deleted while ports other than its own DHCP ports use
  it (409 NetworkInUse); the MTU is the physical one, 50 bytes less on VXLAN.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.config import NetworkOptions
from kumo.core.db import Database
from kumo.network.common import NETWORK_COLUMNS, Caller, Filters, drop_tags, narrowed, standard_view, tags_of, touch
from kumo.network.errors import Conflict, HTTPNotFound, InUse, InvalidInput, NotFound, PolicyNotAuthorized
from kumo.network.models import Network, Port, SegmentAllocation, Subnet
from kumo.network.quotas import QuotaService

NETWORK_TYPES = ("vxlan", "flat", "local")
VXLAN_OVERHEAD = 50
DHCP_OWNER = "network:dhcp"
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def vni_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition(":")
    return int(low), int(high or low)


class NetworkService:
    def __init__(self, db: Database, options: NetworkOptions, quotas: QuotaService) -> None:
        self.db = db
        self.options = options
        self.quotas = quotas

    # -- reads

    async def visible(self, s: AsyncSession, caller: Caller, network_id: str) -> Network:
        """The network if the caller may see it; Neutron's 404 otherwise."""
        row = await s.get(Network, network_id)
        if row is None or not (caller.owns(row.project_id) or row.shared or row.external):
            raise NotFound("Network", network_id)
        return row

    async def list(self, caller: Caller, filters: Filters | None = None) -> list[dict[str, Any]]:
        stmt = narrowed(select(Network), Network, filters, NETWORK_COLUMNS)
        if not caller.is_admin:
            stmt = stmt.where((Network.project_id == caller.project_id) | Network.shared | Network.external)
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
            return await self._views(s, rows, caller)

    async def get(self, caller: Caller, network_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await self.visible(s, caller, network_id)
            return (await self._views(s, [row], caller))[0]

    async def _views(self, s: AsyncSession, rows: list[Network], caller: Caller) -> list[dict[str, Any]]:
        ids = [r.id for r in rows]
        subnets: dict[str, list[str]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            for sid, nid in await s.execute(select(Subnet.id, Subnet.network_id).where(
                    Subnet.network_id.in_(ids[start:start + 500])).order_by(Subnet.created_at, Subnet.id)):
                subnets[nid].append(sid)
        tags = await tags_of(s, "networks", ids)
        return [view(r, subnets[r.id], tags[r.id], caller.is_admin) for r in rows]

    # -- writes

    async def create(self, caller: Caller, values: dict[str, Any]) -> dict[str, Any]:
        project = values.get("project_id") or values.get("tenant_id") or caller.project_id
        net_type, physnet, seg_id = self._segment_request(values)
        row = Network(id=str(uuid.uuid4()), project_id=project, name=values.get("name", ""),
                      description=values.get("description", ""), admin_state_up=values.get("admin_state_up", True),
                      shared=values.get("shared", False), external=values.get("router:external", False),
                      port_security_enabled=values.get("port_security_enabled", True),
                      availability_zone_hints=values.get("availability_zone_hints") or [],
                      dns_domain=values.get("dns_domain", ""), network_type=net_type, physical_network=physnet,
                      segmentation_id=seg_id, status="ACTIVE")
        physical_mtu = self.options.global_physnet_mtu
        row.mtu = values.get("mtu") or (physical_mtu - VXLAN_OVERHEAD if net_type == "vxlan" else physical_mtu)
        if row.mtu > (physical_mtu - VXLAN_OVERHEAD if net_type == "vxlan" else physical_mtu):
            raise InvalidInput(f"Requested MTU is too big, maximum is {physical_mtu - VXLAN_OVERHEAD}"
                               if net_type == "vxlan" else f"Requested MTU is too big, maximum is {physical_mtu}")
        async with self.db.session() as s:
            await self.quotas.check(s, project, "network")
            s.add(row)
            await s.flush()
            await self._allocate_segment(s, row)
            return (await self._views(s, [row], caller))[0]

    def _segment_request(self, values: dict[str, Any]) -> tuple[str, str | None, int | None]:
        net_type = values.get("provider:network_type") or self.options.tenant_network_type
        physnet = values.get("provider:physical_network")
        seg_id = values.get("provider:segmentation_id")
        if net_type not in NETWORK_TYPES:
            raise InvalidInput(f"network_type value '{net_type}' not supported")
        if net_type == "flat":
            if seg_id is not None:
                raise InvalidInput("segmentation_id specified for flat network")
            if not physnet:
                raise InvalidInput("physical_network required for flat provider network")
            if physnet not in self.options.flat_networks:
                raise InvalidInput(f"physical_network '{physnet}' unknown for flat provider network")
        elif net_type == "vxlan":
            if physnet:
                raise InvalidInput("provider:physical_network specified for VXLAN network")
            if seg_id is not None:
                low, high = 1, 2 ** 24 - 1
                if not low <= seg_id <= high:
                    raise InvalidInput(f"segmentation_id out of range ({low} through {high})")
        elif physnet or seg_id is not None:
            raise InvalidInput(f"{'physical_network' if physnet else 'segmentation_id'} prohibited for local "
                               "provider network")
        return net_type, physnet, seg_id

    async def _allocate_segment(self, s: AsyncSession, row: Network) -> None:
        """Claim the network's segment: the asked VNI/physnet, or the lowest free VNI of the tenant range."""
        if row.network_type == "local":
            return
        if row.network_type == "flat":
            await self._claim(s, row, "flat", row.physical_network or "", 0,
                              f"Unable to create the flat network. Physical network {row.physical_network} is in "
                              "use.", "FlatNetworkInUse")
            return
        if row.segmentation_id is not None:
            await self._claim(s, row, "vxlan", "", row.segmentation_id,
                              f"Unable to create the network. The VXLAN ID {row.segmentation_id} is in use.",
                              "TunnelIdInUse")
            return
        low, high = vni_range(self.options.vni_ranges)
        for _attempt in range(5):
            used = set(await s.scalars(select(SegmentAllocation.segmentation_id).where(
                SegmentAllocation.network_type == "vxlan", SegmentAllocation.segmentation_id.between(low, high))))
            free = next((v for v in range(low, high + 1) if v not in used), None)
            if free is None:
                raise Conflict("Unable to create the network. No tenant network is available for allocation.",
                               "NoNetworkAvailable")
            try:
                async with s.begin_nested():
                    s.add(SegmentAllocation(network_type="vxlan", physical_network="", segmentation_id=free,
                                            network_id=row.id))
            except IntegrityError:
                continue  # another request took it between the read and the insert
            row.segmentation_id = free
            return
        raise Conflict("Unable to create the network. No tenant network is available for allocation.",
                       "NoNetworkAvailable")

    @staticmethod
    async def _claim(s: AsyncSession, row: Network, net_type: str, physnet: str, seg_id: int, message: str,
                     kind: str) -> None:
        try:
            async with s.begin_nested():
                s.add(SegmentAllocation(network_type=net_type, physical_network=physnet, segmentation_id=seg_id,
                                        network_id=row.id))
        except IntegrityError:
            raise Conflict(message, kind) from None

    async def update(self, caller: Caller, network_id: str, values: dict[str, Any]) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await self.owned(s, caller, network_id, "update_network")
            for key, column in (("name", "name"), ("description", "description"),
                                ("admin_state_up", "admin_state_up"), ("shared", "shared"),
                                ("router:external", "external"), ("port_security_enabled", "port_security_enabled"),
                                ("mtu", "mtu"), ("dns_domain", "dns_domain")):
                if key in values:
                    setattr(row, column, values[key])
            if any(k in values for k in PROVIDER):
                raise InvalidInput("Plugin does not support updating the following provider network "
                                   "attributes: " + ", ".join(k for k in PROVIDER if k in values))
            touch(row)
            await s.flush()
            return (await self._views(s, [row], caller))[0]

    async def owned(self, s: AsyncSession, caller: Caller, network_id: str, action: str) -> Network:
        """The network if the caller may change it: 404 when it cannot even see it, 403 when it only sees it."""
        row = await s.get(Network, network_id)
        if row is None:
            raise NotFound("Network", network_id)
        if not caller.owns(row.project_id):
            if row.shared or row.external:
                raise PolicyNotAuthorized(f"rule:{action}")
            raise HTTPNotFound()
        return row

    async def delete(self, caller: Caller, network_id: str) -> None:
        async with self.db.session() as s:
            row = await self.owned(s, caller, network_id, "delete_network")
            users = list(await s.scalars(select(Port.id).where(Port.network_id == network_id,
                                                                Port.device_owner != DHCP_OWNER)))
            if users:
                raise InUse(f"Unable to complete operation on network {network_id}. There are one or more ports "
                            f"still in use on the network, id for these ports is: {','.join(users)}.", "NetworkInUse")
            await drop_tags(s, "networks", network_id)
            await s.delete(row)


def view(row: Network, subnets: list[str], tags: list[str], admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id, "name": row.name, "admin_state_up": row.admin_state_up, "status": row.status,
        "subnets": subnets, "shared": row.shared, "router:external": row.external, "mtu": row.mtu,
        "port_security_enabled": row.port_security_enabled, "availability_zone_hints": row.availability_zone_hints,
        "availability_zones": ["nova"], "ipv4_address_scope": None, "ipv6_address_scope": None,
        "l2_adjacency": True, "dns_domain": row.dns_domain, "qos_policy_id": None, "is_default": row.is_default,
        **standard_view(row, tags)}
    if admin:
        body.update({"provider:network_type": row.network_type, "provider:physical_network": row.physical_network,
                     "provider:segmentation_id": row.segmentation_id})
    return body
