"""The fake dataplane keeps the Linux bridge driver's contract in memory (no root needed)."""

from __future__ import annotations

import pytest

from kumo.network.dataplane import DATAPLANES, DataplaneError, FakeDataplane, create_dataplane
from kumo.network.dataplane.base import (
    DhcpPlan,
    FixedIP,
    FloatingMapping,
    HostPlan,
    NetworkPlan,
    RouterInterface,
    RouterPlan,
    VifPlan,
    bridge_name,
    dhcp_interface,
    dhcp_namespace,
    gateway_interface,
    physical_bridge_name,
    router_interface,
    router_namespace,
    tap_name,
)

NET1, NET2, NET3 = ("11111111-aaaa-4000-8000-000000000001", "22222222-aaaa-4000-8000-000000000002",
                    "33333333-aaaa-4000-8000-000000000003")
ROUTER = "44444444-aaaa-4000-8000-000000000004"
PORTS = [f"5555555{i}-aaaa-4000-8000-000000000000" for i in range(6)]

VXLAN = NetworkPlan(NET1, bridge_name(NET1), 1450, "vxlan", 1001, local_ip="192.168.50.1",
                    vxlan_peers=("192.168.50.2",))
FLAT = NetworkPlan(NET2, physical_bridge_name("physx"), 1500, "flat", physical_network="physx",
                   host_addresses=(FixedIP("203.0.113.1", 24),))
LOCAL = NetworkPlan(NET3, bridge_name(NET3), 1450, "local")
VIFS = tuple(VifPlan(p, n.network_id, n.bridge, tap_name(p), "fa:16:3e:00:00:0" + p[7], n.mtu)
             for p, n in ((PORTS[0], VXLAN), (PORTS[1], VXLAN), (PORTS[2], LOCAL)))
DHCP = DhcpPlan(NET1, dhcp_namespace(NET1), dhcp_interface(PORTS[3]), PORTS[3], "fa:16:3e:00:01:03",
                (FixedIP("10.1.0.2", 24),), 1450, ())
QR = RouterInterface(PORTS[4], router_interface(PORTS[4]), tap_name(PORTS[4]), VXLAN.bridge, "fa:16:3e:00:01:04",
                     (FixedIP("10.1.0.1", 24),), 1450)
QG = RouterInterface(PORTS[5], gateway_interface(PORTS[5]), tap_name(PORTS[5]), FLAT.bridge, "fa:16:3e:00:01:05",
                     (FixedIP("203.0.113.10", 24, gateway="203.0.113.1"),), 1500)
ROUTER_PLAN = RouterPlan(ROUTER, router_namespace(ROUTER), interfaces=(QR,), gateway=QG,
                         floating=(FloatingMapping("203.0.113.20", "10.1.0.5"),),
                         routes=(("10.200.0.0/16", "10.1.0.50"), ("10.201.0.0/16", "172.16.0.1")))
FULL = HostPlan(networks=(VXLAN, FLAT, LOCAL), vifs=VIFS, dhcp=(DHCP,), routers=(ROUTER_PLAN,))


def test_registry() -> None:
    assert set(DATAPLANES) == {"linuxbridge", "fake"}
    assert isinstance(create_dataplane("fake"), FakeDataplane)
    with pytest.raises(ValueError, match="choose from linuxbridge, fake"):
        create_dataplane("ovs")


def test_sync_builds_the_plan_and_a_second_sync_changes_nothing() -> None:
    fake = FakeDataplane()
    fake.sync(FULL)
    listing = fake.listing()
    assert listing["bridges"] == sorted([VXLAN.bridge, LOCAL.bridge, FLAT.bridge])
    assert listing["vxlans"] == ["vxlan-1001"]
    assert listing["taps"] == sorted(tap_name(p) for p in PORTS)
    assert listing["namespaces"] == sorted([DHCP.namespace, ROUTER_PLAN.namespace])

    assert fake.links["vxlan-1001"].floods == {"192.168.50.2"} and fake.links["vxlan-1001"].master == VXLAN.bridge
    assert fake.links[FLAT.bridge].addresses == ["203.0.113.1/24"]
    assert fake.links[VIFS[0].tap].kind == "tun" and fake.links[VIFS[0].tap].mac == "fe:16:3e:00:00:00"
    router = fake.namespaces[ROUTER_PLAN.namespace]
    assert router.forwarding
    assert router.links[QG.name].addresses == ["203.0.113.10/24", "203.0.113.20/32"]
    # the nexthop outside every subnet of the router is skipped, as the kernel refuses it
    assert router.routes == [(2, "0.0.0.0/0", "203.0.113.1"), (2, "10.200.0.0/16", "10.1.0.50")]
    assert fake.namespaces[DHCP.namespace].links[DHCP.interface].addresses == ["10.1.0.2/24"]

    changes = len(fake.changes)
    fake.sync(FULL)
    assert len(fake.changes) == changes, fake.changes[changes:]
    assert fake.listing() == listing


def test_sync_removes_what_the_plan_dropped_and_keeps_foreign_links() -> None:
    fake = FakeDataplane()
    for name, kind in (("eth0", "physical"), ("br-docker1", "bridge"), ("tap0123456789a", "dummy"),
                       ("brq0123456789a", "veth"), ("tapshort", "tun")):
        fake.add_foreign_link(name, kind)
    fake.sync(FULL)
    stale = "66666666-aaaa-4000-8000-000000000006"
    fake.ensure_vif(VifPlan(stale, NET1, VXLAN.bridge, tap_name(stale), "fa:16:3e:00:00:66", 1450))

    fake.sync(HostPlan(networks=(VXLAN, LOCAL), vifs=VIFS[:1],
                       routers=(RouterPlan(ROUTER, ROUTER_PLAN.namespace, interfaces=(QR,)),)))
    listing = fake.listing()
    assert listing["bridges"] == sorted([VXLAN.bridge, LOCAL.bridge])
    assert listing["taps"] == sorted([VIFS[0].tap, QR.tap])
    assert listing["namespaces"] == [ROUTER_PLAN.namespace]
    router = fake.namespaces[ROUTER_PLAN.namespace]
    assert set(router.links) == {QR.name} and router.routes == []
    assert {"eth0", "br-docker1", "tap0123456789a", "brq0123456789a", "tapshort"} <= set(fake.links)

    fake.cleanup()
    assert fake.listing() == {"bridges": [], "taps": [], "vxlans": [], "namespaces": [], "ifindex": {}}
    assert set(fake.links) == {"eth0", "br-docker1", "tap0123456789a", "brq0123456789a", "tapshort"}


def test_vxlan_peers_and_local_address_follow_the_plan() -> None:
    fake = FakeDataplane()
    fake.ensure_network(VXLAN)
    index = fake.links["vxlan-1001"].index
    fake.ensure_network(NetworkPlan(NET1, VXLAN.bridge, 1450, "vxlan", 1001, local_ip="192.168.50.1",
                                    vxlan_peers=("192.168.50.3", "192.168.50.4")))
    assert fake.links["vxlan-1001"].floods == {"192.168.50.3", "192.168.50.4"}
    assert fake.links["vxlan-1001"].index == index
    fake.ensure_network(NetworkPlan(NET1, VXLAN.bridge, 1450, "vxlan", 1001, local_ip="192.168.50.9"))
    assert fake.links["vxlan-1001"].index != index and fake.links["vxlan-1001"].floods == set()


def test_ports_need_their_bridge_and_sync_reports_every_failure() -> None:
    fake = FakeDataplane()
    with pytest.raises(DataplaneError, match="ensure_network before its ports"):
        fake.ensure_vif(VIFS[0])
    orphan = DhcpPlan(NET2, dhcp_namespace(NET2), dhcp_interface(PORTS[3]), PORTS[3], "fa:16:3e:00:01:03",
                      (FixedIP("10.2.0.2", 24),), 1450, ())
    with pytest.raises(DataplaneError) as failed:
        fake.sync(HostPlan(networks=(VXLAN,), vifs=VIFS, dhcp=(orphan,)))
    assert f"vif {PORTS[2]}" in str(failed.value) and f"dhcp {NET2}" in str(failed.value)
    assert fake.listing()["taps"] == sorted([VIFS[0].tap, VIFS[1].tap])  # the rest was still applied


def test_names_outside_kumo_patterns_are_refused() -> None:
    fake = FakeDataplane()
    with pytest.raises(ValueError, match="not a Kumo name"):
        fake.ensure_network(NetworkPlan(NET1, "eth0", 1500, "local"))
    fake.ensure_network(LOCAL)
    with pytest.raises(ValueError, match="not a Kumo name"):
        fake.ensure_vif(VifPlan(PORTS[0], NET3, LOCAL.bridge, "eth0", "fa:16:3e:00:00:01", 1450))
    with pytest.raises(ValueError, match="not a Kumo name"):
        fake.delete_namespace("default")


def test_targeted_deletes() -> None:
    fake = FakeDataplane()
    fake.sync(FULL)
    fake.delete_dhcp_port(NET1, PORTS[3])
    assert DHCP.namespace not in fake.namespaces and tap_name(PORTS[3]) not in fake.links
    fake.delete_router(ROUTER)
    assert ROUTER_PLAN.namespace not in fake.namespaces
    assert QR.tap not in fake.links and QG.tap not in fake.links  # veth ends leave with their namespace
    fake.delete_vif(PORTS[0])
    assert VIFS[0].tap not in fake.links
    fake.delete_network(NET1)
    assert VXLAN.bridge not in fake.links and "vxlan-1001" not in fake.links
    assert fake.links[VIFS[1].tap].master is None  # a port outlives its bridge until delete_vif
    fake.delete_network(NET2)
    assert FLAT.bridge not in fake.links  # found through its mark, as br- is not derived from the id


def test_fail_next_injects_one_failure() -> None:
    fake = FakeDataplane()
    fake.fail_next("ensure_network")
    with pytest.raises(DataplaneError, match="injected"):
        fake.ensure_network(LOCAL)
    fake.ensure_network(LOCAL)
    assert fake.listing()["bridges"] == [LOCAL.bridge]
