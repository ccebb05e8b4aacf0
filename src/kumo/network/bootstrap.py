"""The networks ``kumo up`` starts with, as devstack leaves them: ``public``, ``private`` and ``router1``.

``public`` is an external flat network on physical network ``public``; the
network agent makes its bridge ``br-public`` and gives the host the
gateway address, so floating IPs answer from the host itself (and nothing
is routed beyond it). ``private`` is the admin project's VXLAN network with
DHCP, joined to ``public`` by ``router1`` with SNAT. Made once: a cloud that
already has a network called ``public`` is left as it is.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

from kumo.core.config import NetworkOptions
from kumo.network.common import Caller
from kumo.network.service import Neutron

log = logging.getLogger("kumo.network.bootstrap")


async def bootstrap_networks(neutron: Neutron, options: NetworkOptions, admin_project_id: str,
                             progress: Callable[[str], None] = log.info) -> bool:
    """Create public/private/router1 unless ``public`` exists; True when they were made."""
    admin = Caller(project_id=admin_project_id, is_admin=True)
    if any(n["name"] == "public" for n in await neutron.networks.list(admin, {"name": ["public"]})):
        return False
    public_net = ipaddress.ip_network(options.public_cidr)
    public = await neutron.networks.create(admin, {
        "name": "public", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public", "project_id": admin_project_id})
    hosts = list(public_net.hosts())
    public_subnet = await neutron.subnets.create(admin, {
        "network_id": public["id"], "name": "public-subnet", "cidr": str(public_net), "ip_version": 4,
        "gateway_ip": str(hosts[0]), "enable_dhcp": False,
        "allocation_pools": [{"start": str(hosts[1]), "end": str(hosts[-1])}]})
    private = await neutron.networks.create(admin, {"name": "private", "project_id": admin_project_id})
    private_subnet = await neutron.subnets.create(admin, {
        "network_id": private["id"], "name": "private-subnet", "cidr": options.private_cidr, "ip_version": 4})
    router = await neutron.routers.create(admin, {
        "name": "router1", "project_id": admin_project_id,
        "external_gateway_info": {"network_id": public["id"], "enable_snat": True}})
    await neutron.routers.add_interface(admin, router["id"], {"subnet_id": private_subnet["id"]})
    progress(f"bootstrap: networks public ({public_subnet['cidr']}, gateway {public_subnet['gateway_ip']} on "
             f"br-public) and private ({private_subnet['cidr']}) joined by router1")
    return True
