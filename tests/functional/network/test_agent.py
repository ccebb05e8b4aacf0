"""The network agent against the real API and database, with its fake drivers (the kernel side is
tests/integration/network's): what it plans for its host, what it writes back, how it follows changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kumotest import Cloud, cloud_on
from neutrontest import Caller, NetEnv

from kumo.network.agent import NetworkAgent
from kumo.network.dataplane.base import HostPlan


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async for c in cloud_on("sqlite", tmp_path):  # every role: the agent does DHCP and routers too
        yield c


@pytest.fixture
async def net(cloud: Cloud) -> NetEnv:
    return NetEnv(cloud)


def agent_of(net: NetEnv) -> NetworkAgent:
    host = net.cloud.node.network_host
    assert host is not None
    return host.agent


async def settled(net: NetEnv, check: Callable[[HostPlan], bool], timeout: float = 10.0) -> HostPlan:
    """The agent's plan once ``check`` holds (every API write makes it sync)."""
    agent = agent_of(net)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await agent.wait_synced(agent.request_sync(), timeout=timeout)
        if agent.plan is not None and check(agent.plan):
            return agent.plan
        assert asyncio.get_running_loop().time() < deadline, agent.plan
        await asyncio.sleep(0.02)


async def vm_port(net: NetEnv, who: Caller, network_id: str, device: str = "vm-1", **fields: Any) -> dict[str, Any]:
    admin = await net.admin()
    port = (await net.port(who, network_id, **fields))["port"]
    await net.call(admin, "PUT", f"/ports/{port['id']}", json={"port": {
        "device_id": device, "device_owner": "compute:nova", "binding:host_id": "test-host"}})
    return port  # type: ignore[no-any-return]


async def test_dhcp_port_and_server_follow_the_subnets(net: NetEnv) -> None:
    alice = await net.user("alice")
    network = await net.network(alice)
    subnet = await net.subnet(alice, network["id"], "10.1.0.0/24")
    plan = await settled(net, lambda p: len(p.dhcp) == 1)
    [dhcp] = plan.dhcp
    ports = (await net.call(alice, "GET", "/ports", params={"network_id": network["id"]})).json()["ports"]
    [dhcp_port] = [p for p in ports if p["device_owner"] == "network:dhcp"]
    assert dhcp.port_id == dhcp_port["id"] and dhcp.namespace == f"qdhcp-{network['id']}"
    assert [a.cidr for a in dhcp.addresses] == [f"{dhcp_port['fixed_ips'][0]['ip_address']}/24"]
    assert [s.subnet_id for s in dhcp.subnets] == [subnet["id"]]

    port = await vm_port(net, alice, network["id"], dns_name="web1")
    plan = await settled(net, lambda p: len(p.dhcp[0].hosts) == 1)
    [host] = plan.dhcp[0].hosts
    assert host.mac_address == port["mac_address"] and host.hostname == "web1"
    assert host.addresses == (port["fixed_ips"][0]["ip_address"],)
    fake_dhcp = agent_of(net).drivers.dhcp
    assert fake_dhcp.events[-1] == ("reload", network["id"])  # type: ignore[attr-defined]
    # The port was bound here: it is plugged, filtered, ACTIVE, with the bridge VIF details.
    assert [v.port_id for v in plan.vifs] == [port["id"]]
    admin = await net.admin()
    shown = (await net.call(admin, "GET", f"/ports/{port['id']}")).json()["port"]
    assert shown["status"] == "ACTIVE" and shown["binding:vif_type"] == "bridge"
    assert shown["binding:vif_details"]["devname"] == f"tap{port['id'][:11]}"

    await net.call(alice, "PUT", f"/subnets/{subnet['id']}", json={"subnet": {"enable_dhcp": False}})
    await settled(net, lambda p: not p.dhcp)
    ports = (await net.call(alice, "GET", "/ports", params={"network_id": network["id"]})).json()["ports"]
    assert [p["device_owner"] for p in ports] == ["compute:nova"]
    assert ("stop", network["id"]) in fake_dhcp.events  # type: ignore[attr-defined]


async def test_a_network_with_only_its_dhcp_port_can_be_deleted(net: NetEnv) -> None:
    alice = await net.user("alice")
    network = await net.network(alice)
    await net.subnet(alice, network["id"], "10.2.0.0/24")
    await settled(net, lambda p: len(p.dhcp) == 1)
    await net.call(alice, "DELETE", f"/networks/{network['id']}", expect=204)
    plan = await settled(net, lambda p: not p.dhcp and not p.networks)
    assert agent_of(net).drivers.dhcp.networks() == set() and plan.networks == ()


async def test_router_plan_snat_floating_ip_and_metadata_clients(net: NetEnv) -> None:
    admin = await net.admin()
    alice = await net.user("alice")
    public = await net.network(admin, name="public", **{"router:external": True, "provider:network_type": "flat",
                                                        "provider:physical_network": "public"})
    await net.subnet(admin, public["id"], "172.20.0.0/24", enable_dhcp=False)
    network = await net.network(alice)
    subnet = await net.subnet(alice, network["id"], "10.3.0.0/24")
    router = (await net.call(alice, "POST", "/routers", expect=201, json={"router": {
        "name": "r", "external_gateway_info": {"network_id": public["id"]}}})).json()["router"]
    await net.call(alice, "PUT", f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]})
    port = await vm_port(net, alice, network["id"], device="vm-9")
    fip = (await net.call(alice, "POST", "/floatingips", expect=201, json={"floatingip": {
        "floating_network_id": public["id"], "port_id": port["id"]}})).json()["floatingip"]
    plan = await settled(net, lambda p: bool(p.routers and p.routers[0].floating))
    [r] = plan.routers
    fixed = port["fixed_ips"][0]["ip_address"]
    assert r.namespace == f"qrouter-{router['id']}" and r.enable_snat
    assert [i.addresses[0].cidr for i in r.interfaces] == ["10.3.0.1/24"]
    assert r.gateway is not None and r.gateway.bridge == "br-public"
    assert r.gateway.addresses[0].gateway == "172.20.0.1"
    assert [(f.floating_ip, f.fixed_ip) for f in r.floating] == [(fip["floating_ip_address"], fixed)]
    assert [(c.address, c.instance_id, c.project_id) for c in r.metadata] == [(fixed, "vm-9", alice.project_id)]
    # The external flat network: its bridge carries the gateway address for the host, and is guarded.
    [public_plan] = [n for n in plan.networks if n.network_id == public["id"]]
    assert [a.cidr for a in public_plan.host_addresses] == ["172.20.0.1/24"]
    assert plan.guarded_bridges == ("br-public",)
    shown = (await net.call(alice, "GET", f"/floatingips/{fip['id']}")).json()["floatingip"]
    assert shown["status"] == "ACTIVE"
    nat = agent_of(net).drivers.nat
    assert f"dnat to {fixed}" in nat.ruleset(r.namespace)  # type: ignore[attr-defined]

    await net.call(alice, "PUT", f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}})
    await settled(net, lambda p: not p.routers[0].floating)
    shown = (await net.call(alice, "GET", f"/floatingips/{fip['id']}")).json()["floatingip"]
    assert shown["status"] == "DOWN"


async def test_security_group_change_reloads_only_the_firewall(net: NetEnv) -> None:
    alice = await net.user("alice")
    network = await net.network(alice)
    await net.subnet(alice, network["id"], "10.4.0.0/24")
    group = (await net.call(alice, "POST", "/security-groups", expect=201,
                            json={"security_group": {"name": "web"}})).json()["security_group"]
    port = await vm_port(net, alice, network["id"], security_groups=[group["id"]])
    await settled(net, lambda p: len(p.vifs) == 1)
    agent = agent_of(net)
    firewall, dataplane = agent.drivers.firewall, agent.drivers.dataplane
    applies, changes = firewall.applies, len(dataplane.changes)  # type: ignore[attr-defined]
    await net.call(alice, "POST", "/security-group-rules", expect=201, json={"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 80,
        "port_range_max": 80, "remote_ip_prefix": "192.0.2.0/24"}})
    plan = await settled(net, lambda p: any(r.port_range_min == 80 for r in p.firewall[0].rules))
    assert plan.firewall[0].tap == f"tap{port['id'][:11]}"
    assert firewall.applies > applies  # type: ignore[attr-defined]
    assert len(dataplane.changes) == changes  # type: ignore[attr-defined]  # no link touched


async def test_a_burst_of_ports_costs_few_syncs(net: NetEnv) -> None:
    alice = await net.user("alice")
    network = await net.network(alice)
    await net.subnet(alice, network["id"], "10.5.0.0/24")
    await settled(net, lambda p: len(p.dhcp) == 1)
    agent = agent_of(net)
    before = agent.syncs
    await asyncio.gather(*(net.port(alice, network["id"]) for _ in range(30)))
    plan = await settled(net, lambda p: len(p.dhcp[0].hosts) == 30)
    assert len(plan.dhcp[0].hosts) == 30
    assert agent.syncs - before < 30


async def test_agents_are_listed_with_their_state(net: NetEnv) -> None:
    admin = await net.admin()
    agents = (await net.call(admin, "GET", "/agents")).json()["agents"]
    assert sorted(a["agent_type"] for a in agents) == ["DHCP agent", "L3 agent", "Linux bridge agent",
                                                       "Metadata agent"]
    assert all(a["alive"] and a["host"] == "test-host" and a["admin_state_up"] for a in agents)
    [l3] = [a for a in agents if a["agent_type"] == "L3 agent"]
    assert l3["binary"] == "neutron-l3-agent" and l3["availability_zone"] == "nova"
    shown = (await net.call(admin, "GET", f"/agents/{l3['id']}")).json()["agent"]
    assert shown["id"] == l3["id"] and "routers" in shown["configurations"]
    r = await net.call(admin, "GET", "/agents", params={"agent_type": "DHCP agent"})
    assert [a["binary"] for a in r.json()["agents"]] == ["neutron-dhcp-agent"]
    await net.call(admin, "GET", "/agents/00000000-0000-0000-0000-000000000000", expect=404)
    alice = await net.user("alice")
    await net.call(alice, "GET", "/agents", expect=403)


async def test_a_new_agent_rebuilds_the_same_plan(net: NetEnv, cloud: Cloud) -> None:
    """Restart safety: what the agent does depends on the tables only, not on what it remembered."""
    alice = await net.user("alice")
    network = await net.network(alice)
    await net.subnet(alice, network["id"], "10.6.0.0/24")
    await vm_port(net, alice, network["id"])
    plan = await settled(net, lambda p: len(p.vifs) == 1 and len(p.dhcp) == 1 and len(p.dhcp[0].hosts) == 1)
    old = agent_of(net)
    from kumo.network.agent import Drivers
    from kumo.network.dataplane.fake import FakeDataplane
    from kumo.network.dhcp import FakeDhcp
    from kumo.network.firewall.fake import FakeFirewall
    from kumo.network.l3 import FakeRouterNat

    fresh = NetworkAgent(cloud.node.db, old.role, Drivers(FakeDataplane(), FakeFirewall(), FakeDhcp(), FakeRouterNat()),
                         ensure_dhcp_port=old.ensure_dhcp_port)
    again = await fresh.sync_once()
    assert again == plan
    assert fresh.drivers.dhcp.networks() == {network["id"]}  # type: ignore[attr-defined]


async def test_vxlan_peers_are_the_other_hosts_tunnel_addresses(net: NetEnv, cloud: Cloud) -> None:
    """A second host's agent (compute-only, its own tunnel address) becomes a flooding peer of the first."""
    from kumo.network.agent import Drivers
    from kumo.network.agent_plan import HostRole
    from kumo.network.dataplane.fake import FakeDataplane
    from kumo.network.dhcp import FakeDhcp
    from kumo.network.firewall.fake import FakeFirewall
    from kumo.network.l3 import FakeRouterNat

    alice = await net.user("alice")
    network = await net.network(alice)
    await net.subnet(alice, network["id"], "10.7.0.0/24")
    admin = await net.admin()
    port = (await net.port(alice, network["id"]))["port"]
    await net.call(admin, "PUT", f"/ports/{port['id']}", json={"port": {
        "device_id": "vm-b", "device_owner": "compute:nova", "binding:host_id": "host-b"}})
    other = NetworkAgent(cloud.node.db, HostRole(host="host-b", l2_only=True, local_ip="198.51.100.2"),
                         Drivers(FakeDataplane(), FakeFirewall(), FakeDhcp(), FakeRouterNat()), ensure_dhcp_port=None)
    await other.report()
    remote = await other.sync_once()
    [vif] = remote.vifs
    assert vif.port_id == port["id"] and remote.dhcp == () and remote.routers == ()  # l2 only: no DHCP, no router
    [remote_net] = remote.networks
    assert remote_net.network_type == "vxlan" and remote_net.local_ip == "198.51.100.2"
    # The first host (no tunnel address configured) sees host-b as its peer; host-b sees none (no address here).
    plan = await settled(net, lambda p: any(n.vxlan_peers for n in p.networks))
    [here] = [n for n in plan.networks if n.network_id == network["id"]]
    assert here.vxlan_peers == ("198.51.100.2",) and here.segmentation_id == remote_net.segmentation_id
    agents = (await net.call(admin, "GET", "/agents", params={"host": "host-b"})).json()["agents"]
    assert [(a["agent_type"], a["configurations"]["tunneling_ip"]) for a in agents] == [
        ("Linux bridge agent", "198.51.100.2")]
