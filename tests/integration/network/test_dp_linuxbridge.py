"""The Linux bridge dataplane against the real kernel.

Two kinds of test. Those that make a few named objects run on the host, with
random ids, and remove exactly their own objects with the driver's targeted
deletes (other suites run on this machine at the same time). Those that need
``sync``/``cleanup`` (which delete *every* Kumo-named object by design), or
put addresses on host-side links (connected routes), run in a sandbox: a
child process in a fresh network namespace *and* a private mount of
``/run/netns``, so what it sees as "the host" and its namespaces are its own,
and all of it vanishes with the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nettest import Scratch, host_links, host_namespaces, in_ns

from kumo.network.dataplane import create_dataplane
from kumo.network.dataplane.base import (
    DhcpPlan,
    FixedIP,
    NetworkPlan,
    RouterInterface,
    RouterPlan,
    VifPlan,
    bridge_name,
    dhcp_interface,
    dhcp_namespace,
    router_interface,
    router_namespace,
    tap_name,
)
from kumo.network.dataplane.linuxbridge import LinuxBridgeDataplane

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, bridges)")]

MTU = 1450


def new_id() -> str:
    return str(uuid.uuid4())


def octet() -> int:
    """A random second octet for 10.x.y.0/24 subnets that live only inside test namespaces."""
    return int.from_bytes(os.urandom(1), "big") % 200 + 20


def ping(namespace: str, address: str) -> None:
    """One echo from ``namespace`` (busybox: this machine has no iputils)."""
    in_ns(namespace, "busybox", "ping", "-c", "1", "-W", "2", address)


def sysfs(link: str, attribute: str) -> str:
    return Path(f"/sys/class/net/{link}/{attribute}").read_text().strip()


def master_of(link: str) -> str | None:
    path = Path(f"/sys/class/net/{link}/master")
    return path.resolve().name if path.exists() else None


@dataclass
class Owned:
    """What one test made through the driver, removed with targeted deletes (never a global cleanup)."""

    driver: LinuxBridgeDataplane
    networks: list[str] = field(default_factory=list)
    vifs: list[str] = field(default_factory=list)
    dhcp: list[tuple[str, str]] = field(default_factory=list)
    routers: list[str] = field(default_factory=list)

    def network(self, network_type: str = "local") -> NetworkPlan:
        network_id = new_id()
        self.networks.append(network_id)
        return NetworkPlan(network_id, bridge_name(network_id), MTU, network_type)

    def vif(self, network: NetworkPlan) -> VifPlan:
        port_id = new_id()
        self.vifs.append(port_id)
        return VifPlan(port_id, network.network_id, network.bridge, tap_name(port_id), "fa:16:3e:12:34:56", MTU)

    def dhcp_port(self, cidr: str) -> DhcpPlan:
        """A DHCP port in its own ``qdhcp-`` namespace (a fresh network id, so each gets its namespace)."""
        network_id, port_id = new_id(), new_id()
        self.dhcp.append((network_id, port_id))
        address, prefixlen = cidr.split("/")
        mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3))
        return DhcpPlan(network_id, dhcp_namespace(network_id), dhcp_interface(port_id), port_id, mac,
                        (FixedIP(address, int(prefixlen)),), MTU, ())

    def router_leg(self, network: NetworkPlan, cidr: str, gateway: str | None = None) -> RouterInterface:
        port_id = new_id()
        address, prefixlen = cidr.split("/")
        return RouterInterface(port_id, router_interface(port_id), tap_name(port_id), network.bridge,
                               "fa:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3)),
                               (FixedIP(address, int(prefixlen), gateway=gateway),), MTU)

    def router(self, *legs: RouterInterface, **kwargs: Any) -> RouterPlan:
        router_id = new_id()
        self.routers.append(router_id)
        return RouterPlan(router_id, router_namespace(router_id), interfaces=legs, **kwargs)

    def names(self) -> tuple[set[str], set[str]]:
        """Every link and namespace name this test's objects could have on the host."""
        links = {bridge_name(n) for n in self.networks} | {tap_name(p) for p in self.vifs}
        links |= {tap_name(p) for _, p in self.dhcp}
        namespaces = {dhcp_namespace(n) for n, _ in self.dhcp} | {router_namespace(r) for r in self.routers}
        return links, namespaces

    def remove(self) -> None:
        for router_id in self.routers:
            self.driver.delete_router(router_id)
        for network_id, port_id in self.dhcp:
            self.driver.delete_dhcp_port(network_id, port_id)
        for port_id in self.vifs:
            self.driver.delete_vif(port_id)
        for network_id in self.networks:
            self.driver.delete_network(network_id)


@pytest.fixture
def owned() -> Iterator[Owned]:
    made = Owned(LinuxBridgeDataplane())
    try:
        yield made
    finally:
        made.remove()
        links, namespaces = made.names()
        assert not links & host_links(), f"left behind: {links & host_links()}"
        assert not namespaces & host_namespaces(), f"left behind: {namespaces & host_namespaces()}"


# --------------------------------------------------------------------------- on the host, targeted


def test_registry_builds_the_real_driver() -> None:
    assert isinstance(create_dataplane("linuxbridge"), LinuxBridgeDataplane)
    with pytest.raises(ValueError, match="unknown dataplane"):
        create_dataplane("ovs")


def test_bridge_and_tap_are_created_once(owned: Owned) -> None:
    driver = owned.driver
    network = owned.network()
    vif = owned.vif(network)
    driver.ensure_network(network)
    driver.ensure_vif(vif)

    assert Path(f"/sys/class/net/{vif.tap}/tun_flags").exists(), "not a tuntap device"
    assert int(sysfs(vif.tap, "tun_flags"), 16) & 0x1003 == 0x1002  # IFF_TAP | IFF_NO_PI, not IFF_TUN
    assert master_of(vif.tap) == network.bridge
    assert sysfs(vif.tap, "mtu") == str(MTU) and sysfs(network.bridge, "mtu") == str(MTU)
    assert int(sysfs(vif.tap, "flags"), 16) & 1 and int(sysfs(network.bridge, "flags"), 16) & 1
    assert sysfs(network.bridge, "bridge/stp_state") == "0"
    assert sysfs(network.bridge, "bridge/forward_delay") == "0"
    assert sysfs(vif.tap, "address") == "fe:16:3e:12:34:56"
    indexes = (sysfs(network.bridge, "ifindex"), sysfs(vif.tap, "ifindex"))

    driver.ensure_network(network)
    driver.ensure_vif(vif)
    assert (sysfs(network.bridge, "ifindex"), sysfs(vif.tap, "ifindex")) == indexes
    listing = driver.listing()
    assert network.bridge in listing["bridges"] and vif.tap in listing["taps"]


def test_tap_moves_to_its_new_bridge(owned: Owned) -> None:
    driver = owned.driver
    first, second = owned.network(), owned.network()
    vif = owned.vif(first)
    driver.ensure_network(first)
    driver.ensure_network(second)
    driver.ensure_vif(vif)
    index = sysfs(vif.tap, "ifindex")
    driver.ensure_vif(VifPlan(vif.port_id, second.network_id, second.bridge, vif.tap, vif.mac_address, 1400))
    assert master_of(vif.tap) == second.bridge
    assert sysfs(vif.tap, "mtu") == "1400" and sysfs(vif.tap, "ifindex") == index


def test_a_plan_naming_a_foreign_link_is_refused(owned: Owned) -> None:
    network = owned.network()
    with pytest.raises(ValueError, match="not a Kumo name"):
        owned.driver.ensure_network(NetworkPlan(network.network_id, "eth0", MTU, "local"))
    with pytest.raises(ValueError, match="not a Kumo name"):
        owned.driver.ensure_vif(VifPlan(new_id(), network.network_id, network.bridge, "eth0", "fa:16:3e:00:00:01", MTU))


def test_two_dhcp_namespaces_on_one_bridge_ping_each_other(owned: Owned) -> None:
    driver = owned.driver
    network = owned.network()
    net = octet()
    first, second = owned.dhcp_port(f"10.{net}.7.2/24"), owned.dhcp_port(f"10.{net}.7.3/24")
    driver.ensure_network(network)
    for port in (first, second):
        driver.ensure_dhcp_port(port, network.bridge)

    assert master_of(tap_name(first.port_id)) == network.bridge
    links = in_ns(first.namespace, "ip", "-o", "link").stdout
    assert {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()} == {"lo", first.interface}
    assert first.mac_address in links and f"mtu {MTU}" in links
    ping(first.namespace, f"10.{net}.7.3")

    # stale address and a stray link in the namespace go; the veth itself is kept
    index = sysfs(tap_name(first.port_id), "ifindex")
    in_ns(first.namespace, "ip", "addr", "add", f"10.{net}.8.9/24", "dev", first.interface)
    in_ns(first.namespace, "ip", "link", "add", "stray0", "type", "bridge")
    moved = DhcpPlan(first.network_id, first.namespace, first.interface, first.port_id, first.mac_address,
                     (FixedIP(f"10.{net}.7.4", 24),), MTU, ())
    driver.ensure_dhcp_port(moved, network.bridge)
    addresses = in_ns(first.namespace, "ip", "-o", "-4", "addr", "show", "dev", first.interface).stdout
    assert f"10.{net}.7.4/24" in addresses and f"10.{net}.7.2/" not in addresses and f"10.{net}.8.9" not in addresses
    assert "stray0" not in in_ns(first.namespace, "ip", "-o", "link").stdout
    assert sysfs(tap_name(first.port_id), "ifindex") == index
    ping(second.namespace, f"10.{net}.7.4")


def test_router_routes_between_two_networks(owned: Owned, scratch: Scratch) -> None:
    driver = owned.driver
    left, right = owned.network(), owned.network()
    net = octet()
    legs = (owned.router_leg(left, f"10.{net}.1.1/24"), owned.router_leg(right, f"10.{net}.2.1/24"))
    router = owned.router(*legs, routes=((f"10.{net}.99.0/24", f"10.{net}.2.50"),))
    host_forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    for network in (left, right):
        driver.ensure_network(network)
    driver.ensure_router(router)

    clients = []
    for side, network in ((1, left), (2, right)):
        ns = scratch.namespace("ktc")
        scratch.veth_into(ns, scratch.link_name("ktv"), "eth0", cidr=f"10.{net}.{side}.10/24", bridge=network.bridge)
        in_ns(ns, "ip", "route", "add", "default", "via", f"10.{net}.{side}.1")
        clients.append(ns)
    ping(clients[0], f"10.{net}.2.10")
    ping(clients[1], f"10.{net}.1.10")

    assert in_ns(router.namespace, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    assert in_ns(router.namespace, "cat", "/proc/sys/net/ipv6/conf/all/forwarding").stdout.strip() == "1"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forwarding
    routes = in_ns(router.namespace, "ip", "route").stdout
    assert f"10.{net}.99.0/24 via 10.{net}.2.50" in routes

    # the right leg and the static route leave the plan: qr- and its host tap go, the route too, and so does
    # a route someone added by hand (scope link: deletion must match the dumped scope)
    in_ns(router.namespace, "ip", "route", "add", f"10.{net}.55.0/24", "dev", legs[0].name)
    driver.ensure_router(RouterPlan(router.router_id, router.namespace, interfaces=legs[:1]))
    assert legs[1].name not in in_ns(router.namespace, "ip", "-o", "link").stdout
    assert legs[1].tap not in host_links() and legs[0].tap in host_links()
    routes = in_ns(router.namespace, "ip", "route").stdout
    assert f"10.{net}.99.0/24" not in routes and f"10.{net}.55.0/24" not in routes


def test_namespace_removal_does_not_wait_for_its_processes(owned: Owned) -> None:
    driver = owned.driver
    network = owned.network()
    port = owned.dhcp_port(f"10.{octet()}.3.2/24")
    driver.ensure_network(network)
    driver.ensure_dhcp_port(port, network.bridge)
    sleeper = subprocess.Popen(["ip", "netns", "exec", port.namespace, "sleep", "30"])
    try:
        time.sleep(0.2)
        started = time.monotonic()
        driver.delete_dhcp_port(port.network_id, port.port_id)
        assert time.monotonic() - started < 5
        assert port.namespace not in host_namespaces()
        assert tap_name(port.port_id) not in host_links()
    finally:
        sleeper.kill()
        sleeper.wait()


# --------------------------------------------------------------------------- in a sandbox (own netns + /run/netns)

SANDBOX_PRELUDE = '''
import ctypes, json, os, subprocess, sys, threading, time
from pyroute2 import netns as _netns
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("/run/netns", exist_ok=True)
if libc.mount(b"kumo-test", b"/run/netns", b"tmpfs", 0, None) != 0:
    raise OSError(ctypes.get_errno(), "mount tmpfs on /run/netns")
from kumo.network.dataplane.base import *
from kumo.network.dataplane.linuxbridge import LinuxBridgeDataplane, Links
driver = LinuxBridgeDataplane()
result = {}

def sh(*argv, check=True):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and done.returncode:
        raise AssertionError(f"{argv} failed: {done.stderr}")
    return done.stdout

def in_ns(ns, *argv, check=True):
    return sh("ip", "netns", "exec", ns, *argv, check=check)

def ping(ns, address):
    in_ns(ns, "busybox", "ping", "-c", "1", "-W", "2", address)

def links():
    """name -> (ifindex, master, mtu, admin up) of every link (carrier comes and goes on its own)."""
    return {l["ifname"]: (l["ifindex"], l.get("master"), l["mtu"], "UP" in l["flags"])
            for l in json.loads(sh("ip", "-j", "link"))}

def as_host(namespace, func):
    """Run func in a thread inside namespace: the driver then treats that namespace as its host."""
    box = {}
    def run():
        try:
            _netns.setns(namespace, flags=0)
            box["value"] = func()
        except BaseException as exc:
            box["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")
'''


def sandbox(body: str, timeout: float = 180) -> dict[str, Any]:
    """Run ``body`` in a child in a fresh network namespace with a private ``/run/netns``; returns its ``result``."""
    script = SANDBOX_PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
    with tempfile.NamedTemporaryFile("w", suffix=".py", prefix="kumo-dp-", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", sys.executable, f.name],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        raise AssertionError(f"sandbox failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_vxlan_device_and_flooding_entries_follow_the_plan() -> None:
    result = sandbox('''
        sh("ip", "link", "add", "under0", "type", "veth", "peer", "name", "under1")  # no dummy module here
        sh("ip", "addr", "add", "192.168.60.1/24", "dev", "under0")
        sh("ip", "link", "set", "under0", "up")
        net = "6f1c2a7e-0000-4000-8000-000000000001"
        plan = NetworkPlan(net, bridge_name(net), 1450, "vxlan", 4242, local_ip="192.168.60.1",
                           vxlan_peers=("192.168.60.2", "192.168.60.3"))
        driver.ensure_network(plan)
        detail = sh("ip", "-d", "link", "show", "vxlan-4242")
        assert "vxlan id 4242 local 192.168.60.1" in detail and "dstport 4789" in detail, detail
        assert "nolearning" not in detail and f"master {plan.bridge}" in detail and "mtu 1450" in detail, detail
        assert ",UP" in detail, detail

        def floods():
            out = sh("bridge", "fdb", "show", "dev", "vxlan-4242")
            return sorted(l.split()[2] for l in out.splitlines() if l.startswith("00:00:00:00:00:00"))

        result["first"] = floods()
        index = links()["vxlan-4242"][0]
        driver.ensure_network(NetworkPlan(net, plan.bridge, 1450, "vxlan", 4242, local_ip="192.168.60.1",
                                          vxlan_peers=("192.168.60.3", "192.168.60.4")))
        result["changed"] = floods()
        result["same_device"] = links()["vxlan-4242"][0] == index
        driver.ensure_network(NetworkPlan(net, plan.bridge, 1450, "vxlan", 4242, local_ip="192.168.60.9",
                                          vxlan_peers=("192.168.60.3",)))
        result["new_local"] = "local 192.168.60.9" in sh("ip", "-d", "link", "show", "vxlan-4242")
        result["after_local"] = floods()
        driver.delete_network(net)
        result["left"] = driver.listing()
    ''')
    assert result["first"] == ["192.168.60.2", "192.168.60.3"]
    assert result["changed"] == ["192.168.60.3", "192.168.60.4"] and result["same_device"]
    assert result["new_local"] and result["after_local"] == ["192.168.60.3"]
    assert result["left"] == {"bridges": [], "taps": [], "vxlans": [], "namespaces": [], "ifindex": {}}


def test_vxlan_carries_traffic_between_two_hosts() -> None:
    """Two namespaces stand in for two hosts (veth underlay); the driver runs in each, DHCP ports ping over VXLAN."""
    result = sandbox('''
        for host in ("hosta", "hostb"):
            sh("ip", "netns", "add", host)
            in_ns(host, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "ua", "netns", "hosta", "type", "veth", "peer", "name", "ub", "netns", "hostb")
        in_ns("hosta", "ip", "addr", "add", "192.168.77.1/24", "dev", "ua")
        in_ns("hostb", "ip", "addr", "add", "192.168.77.2/24", "dev", "ub")
        in_ns("hosta", "ip", "link", "set", "ua", "up")
        in_ns("hostb", "ip", "link", "set", "ub", "up")

        def host_side(net, port, local, peer, address):
            plan = NetworkPlan(net, bridge_name(net), 1450, "vxlan", 5151, local_ip=local, vxlan_peers=(peer,))
            dhcp = DhcpPlan(net, dhcp_namespace(net), dhcp_interface(port), port, "fa:16:3e:00:51:" + address[-2:],
                            (FixedIP(address, 24),), 1450, ())
            driver.ensure_network(plan)
            driver.ensure_dhcp_port(dhcp, plan.bridge)
            return dhcp.namespace

        a = as_host("hosta", lambda: host_side("aaaaaaaa-0000-4000-8000-000000000001",
                                                "aaaaaaaa-1111-4000-8000-000000000001",
                                                "192.168.77.1", "192.168.77.2", "10.51.0.12"))
        b = as_host("hostb", lambda: host_side("bbbbbbbb-0000-4000-8000-000000000001",
                                                "bbbbbbbb-1111-4000-8000-000000000001",
                                                "192.168.77.2", "192.168.77.1", "10.51.0.13"))
        result["ping"] = in_ns(a, "busybox", "ping", "-c", "2", "-W", "2", "10.51.0.13", check=False)
        result["hosta"] = as_host("hosta", driver.listing)
        as_host("hosta", driver.cleanup)
        as_host("hostb", driver.cleanup)
        result["namespaces_left"] = sorted(os.listdir("/run/netns"))
    ''')
    assert "2 packets received" in result["ping"], result["ping"]
    assert result["hosta"]["vxlans"] == ["vxlan-5151"] and len(result["hosta"]["taps"]) == 1
    assert result["namespaces_left"] == ["hosta", "hostb"]


SYNC_PLAN = '''
net1, net2, net3 = ("11111111-aaaa-4000-8000-000000000001", "22222222-aaaa-4000-8000-000000000002",
                    "33333333-aaaa-4000-8000-000000000003")
router_id = "44444444-aaaa-4000-8000-000000000004"
ports = [f"5555555{i}-aaaa-4000-8000-000000000000" for i in range(6)]
vxlan = NetworkPlan(net1, bridge_name(net1), 1450, "vxlan", 1001, local_ip="192.168.50.1",
                    vxlan_peers=("192.168.50.2",))
flat = NetworkPlan(net2, physical_bridge_name("physx"), 1500, "flat", physical_network="physx",
                   host_addresses=(FixedIP("203.0.113.1", 24),))
local = NetworkPlan(net3, bridge_name(net3), 1450, "local")
vifs = tuple(VifPlan(p, n.network_id, n.bridge, tap_name(p), "fa:16:3e:00:00:0" + p[-1], n.mtu)
             for p, n in ((ports[0], vxlan), (ports[1], vxlan), (ports[2], local)))
dhcp = DhcpPlan(net1, dhcp_namespace(net1), dhcp_interface(ports[3]), ports[3], "fa:16:3e:00:01:03",
                (FixedIP("10.1.0.2", 24),), 1450, ())
qr = RouterInterface(ports[4], router_interface(ports[4]), tap_name(ports[4]), vxlan.bridge, "fa:16:3e:00:01:04",
                     (FixedIP("10.1.0.1", 24),), 1450)
qg = RouterInterface(ports[5], gateway_interface(ports[5]), tap_name(ports[5]), flat.bridge, "fa:16:3e:00:01:05",
                     (FixedIP("203.0.113.10", 24, gateway="203.0.113.1"),), 1500)
router = RouterPlan(router_id, router_namespace(router_id), interfaces=(qr,), gateway=qg,
                    floating=(FloatingMapping("203.0.113.20", "10.1.0.5"),), routes=(("10.200.0.0/16", "10.1.0.50"),))
full = HostPlan(networks=(vxlan, flat, local), vifs=vifs, dhcp=(dhcp,), routers=(router,))

def stable(text):
    """Drop what the kernel changes on its own between two reads: the link-local addresses' DAD state."""
    return [line for line in text.splitlines() if "fe80::" not in line]

def state():
    """Everything sync may touch, to compare two syncs."""
    fdb = [line for line in sh("bridge", "fdb", "show").splitlines() if "permanent" in line]
    return {"links": links(), "addr": stable(sh("ip", "-o", "addr")), "fdb": fdb,
            "router": stable(in_ns(router.namespace, "sh", "-c", "ip -o addr; ip route; ip -6 route; ip -o link")),
            "dhcp": stable(in_ns(dhcp.namespace, "sh", "-c", "ip -o addr; ip -o link"))}
'''


def test_sync_builds_the_plan_and_a_second_sync_changes_nothing() -> None:
    result = sandbox(SYNC_PLAN + '''
reloads = []
original = Links.reload
def counting(self):
    reloads.append(1)
    original(self)
Links.reload = counting
driver.sync(full)
result["listing"] = driver.listing()
before = state()
reloads.clear()
driver.sync(full)
result["reloads"] = len(reloads)
after = state()
result["unchanged"] = {key: before[key] == after[key] for key in before}
result["diff"] = {k: (v, after["links"].get(k)) for k, v in before["links"].items() if after["links"].get(k) != v}
result["router"] = "\\n".join(before["router"])
result["host_addr"] = "\\n".join(before["addr"])
ping(router.namespace, "203.0.113.1")
result["forwarding"] = in_ns(router.namespace, "cat", "/proc/sys/net/ipv4/ip_forward").strip()
result["host_forwarding"] = open("/proc/sys/net/ipv4/ip_forward").read().strip()
driver.cleanup()
result["after_cleanup"] = driver.listing()
''')
    listing = result["listing"]
    assert listing["bridges"] == sorted(["brq11111111-aa", "brq33333333-aa", "br-physx"])
    assert listing["vxlans"] == ["vxlan-1001"]
    assert listing["taps"] == [f"tap5555555{i}-aa" for i in range(6)]  # 3 vifs, the DHCP port, qr- and qg-
    assert listing["namespaces"] == ["qdhcp-11111111-aaaa-4000-8000-000000000001",
                                     "qrouter-44444444-aaaa-4000-8000-000000000004"]
    assert all(result["unchanged"].values()), result["diff"]
    assert result["reloads"] == 3, "one host link dump plus one per namespace"
    router = result["router"]
    assert "203.0.113.20/32" in router and "203.0.113.10/24" in router and "10.1.0.1/24" in router
    assert "default via 203.0.113.1" in router and "10.200.0.0/16 via 10.1.0.50" in router
    assert "203.0.113.1/24" in result["host_addr"] and "br-physx" in result["host_addr"]
    assert result["forwarding"] == "1" and result["host_forwarding"] == "0"
    assert result["after_cleanup"] == {"bridges": [], "taps": [], "vxlans": [], "namespaces": [], "ifindex": {}}


def test_sync_removes_what_the_plan_dropped_and_keeps_foreign_links() -> None:
    result = sandbox(SYNC_PLAN + '''
driver.sync(full)
# foreign objects: Kumo-like names of the wrong kind, and a br- bridge Kumo did not create
sh("ip", "link", "add", "tap0123456789a", "type", "bridge")
sh("ip", "link", "add", "brq0123456789a", "type", "veth", "peer", "name", "ktpeer0")
sh("ip", "link", "add", "tapshort", "type", "bridge")
sh("ip", "link", "add", "br-docker1", "type", "bridge")
sh("ip", "addr", "add", "198.51.100.1/24", "dev", "br-docker1")
from pyroute2 import IPRoute
with IPRoute() as ipr:  # an address tagged as Kumo's (this iproute2 cannot set "proto")
    ipr.addr("add", index=ipr.link_lookup(ifname="br-docker1")[0], address="198.51.101.1", prefixlen=24, proto=75)
sh("ip", "netns", "add", "otherns")
# a stale Kumo object of each sort
sh("ip", "link", "add", "vxlan-77", "type", "vxlan", "id", "77", "dstport", "4789")
stale = "66666666-aaaa-4000-8000-000000000006"
driver.ensure_vif(VifPlan(stale, net1, vxlan.bridge, tap_name(stale), "fa:16:3e:00:00:66", 1450))
driver.ensure_dhcp_port(DhcpPlan(net3, dhcp_namespace(net3), dhcp_interface(stale), stale, "fa:16:3e:00:00:67",
                                 (FixedIP("10.3.0.2", 24),), 1450, ()), local.bridge)
# the router's addresses drift: a stale address and a route someone added
in_ns(router.namespace, "ip", "addr", "add", "10.1.0.77/24", "dev", qr.name)
in_ns(router.namespace, "ip", "route", "add", "10.201.0.0/16", "via", "10.1.0.60")

smaller = HostPlan(networks=(vxlan, local), vifs=vifs[:1],
                   routers=(RouterPlan(router_id, router.namespace, interfaces=(qr,)),))
driver.sync(smaller)
result["listing"] = driver.listing()
result["links"] = sorted(links())
result["namespaces"] = sorted(os.listdir("/run/netns"))
result["docker_addr"] = sh("ip", "-o", "addr", "show", "dev", "br-docker1")
result["router"] = in_ns(router.namespace, "sh", "-c", "ip -o addr; ip route; ip -o link")
driver.cleanup()
result["after_cleanup"] = sorted(links())
''')
    listing = result["listing"]
    assert listing["bridges"] == ["brq11111111-aa", "brq33333333-aa"]
    assert listing["vxlans"] == ["vxlan-1001"]
    assert listing["taps"] == ["tap55555550-aa", "tap55555554-aa"]  # the kept vif and the router's qr- tap
    assert listing["namespaces"] == ["qrouter-44444444-aaaa-4000-8000-000000000004"]
    for foreign in ("tap0123456789a", "brq0123456789a", "tapshort", "br-docker1"):
        assert foreign in result["links"]
    assert "otherns" in result["namespaces"]
    assert "198.51.100.1/24" in result["docker_addr"] and "198.51.101.1" not in result["docker_addr"]
    router = result["router"]
    assert "10.1.0.77" not in router and "10.201.0.0/16" not in router and "qg-" not in router
    assert "default via" not in router and "10.200.0.0/16" not in router
    left = set(result["after_cleanup"])
    assert {"tap0123456789a", "brq0123456789a", "tapshort", "br-docker1"} <= left
    assert not {n for n in left if n.startswith(("brq1", "brq3", "vxlan-", "br-physx", "tap5", "tap6"))}


def test_sync_of_200_vifs_dumps_links_once() -> None:
    result = sandbox('''
net = "77777777-aaaa-4000-8000-000000000007"
network = NetworkPlan(net, bridge_name(net), 1450, "vxlan", 2002, vxlan_peers=("192.168.70.2", "192.168.70.3"))
vifs = tuple(VifPlan(p, net, network.bridge, tap_name(p), "fa:16:3e:00:%02x:%02x" % (i // 256, i % 256), 1450)
             for i, p in enumerate(f"{i:08x}-bbbb-4000-8000-000000000000" for i in range(200)))
plan = HostPlan(networks=(network,), vifs=vifs)
reloads = []
original = Links.reload
def counting(self):
    reloads.append(1)
    original(self)
Links.reload = counting
started = time.monotonic()
driver.sync(plan)
result["first"] = time.monotonic() - started
before = links()
started = time.monotonic()
driver.sync(plan)
result["second"] = time.monotonic() - started
result["unchanged"] = links() == before
result["reloads"] = len(reloads)
result["taps"] = len(driver.listing()["taps"])
started = time.monotonic()
driver.cleanup()
result["cleanup"] = time.monotonic() - started
print(f"200 vifs: first sync {result['first']:.2f}s, second {result['second']:.2f}s, "
      f"cleanup {result['cleanup']:.2f}s", file=sys.stderr)
''')
    assert result["taps"] == 200 and result["unchanged"]
    assert result["reloads"] == 2, "one link dump per sync, whatever the number of vifs"
    assert result["second"] < 2.0 and result["first"] < 10.0
