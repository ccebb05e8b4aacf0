"""The nftables security-group driver against real traffic: three namespace "VMs" on one bridge.

Every test loads its own uniquely named tables (``kumo-t<hex>``/``kumo-g<hex>``)
so suites that also apply Kumo firewalls can run at the same time, and the
tables are deleted at teardown.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from nettest import Scratch, in_ns, sh

from kumo.network.dataplane.base import PortFirewall, SecurityGroupRule
from kumo.network.firewall import NftablesFirewall
from kumo.network.firewall.nftables import parse_zones

pytestmark = pytest.mark.root

EGRESS_ANY = (SecurityGroupRule("egress", "IPv4"), SecurityGroupRule("egress", "IPv6"))
INGRESS_ICMP = SecurityGroupRule("ingress", "IPv4", "icmp")
INGRESS_ICMP6 = SecurityGroupRule("ingress", "IPv6", "ipv6-icmp")


@dataclass(frozen=True)
class Vm:
    namespace: str
    tap: str
    mac: str
    ip: str
    ip6: str

    def port(self, rules: tuple[SecurityGroupRule, ...] = EGRESS_ANY, **kw: object) -> PortFirewall:
        return PortFirewall(tap=self.tap, port_id=self.tap[3:], mac_address=self.mac,
                            addresses=(self.ip, self.ip6), rules=rules, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Lab:
    bridge: str
    vms: tuple[Vm, Vm, Vm]


def random_mac() -> str:
    tail = uuid.uuid4().hex[:6]
    return "fa:16:3e:" + ":".join(tail[i:i + 2] for i in range(0, 6, 2))


#: Echo requests of one ICMP id (one conntrack flow) every ``interval``; prints "<time> <seq>" per reply.
PINGER = """
import socket, struct, sys, time
dst, duration, interval, ident = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(interval)
def packet(seq):
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    total = sum(struct.unpack("!4H", head))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return struct.pack("!BBHHH", 8, 0, ~total & 0xFFFF, ident, seq)
end, seq = time.time() + duration, 0
while time.time() < end:
    s.sendto(packet(seq), (dst, 0))
    seq += 1
    try:
        while True:
            data = s.recv(100)
            if data[20] == 0 and struct.unpack("!H", data[24:26])[0] == ident:
                print(f"{time.time():.6f} {struct.unpack('!H', data[26:28])[0]}", flush=True)
    except TimeoutError:
        pass
"""


def can_ping(src: Vm, dst: str, *, source: str | None = None, count: int = 1) -> bool:
    argv = ["busybox", "ping", "-c", str(count), "-W", "1", "-i", "0.2"]
    if source:
        argv += ["-I", source]
    return in_ns(src.namespace, *argv, dst, check=False).returncode == 0


def tcp_answer(client: Vm, server: Vm, port: int) -> str:
    """What a busybox nc listener on ``server:port`` says to a client ("" when the connection never opened)."""
    listener = subprocess.Popen(["ip", "netns", "exec", server.namespace, "busybox", "nc", "-l", "-p", str(port),
                                 "-e", "/bin/echo", f"hello-{port}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        done = in_ns(client.namespace, "busybox", "nc", "-w", "2", server.ip, str(port), check=False, timeout=10)
        return done.stdout.strip()
    finally:
        listener.kill()
        listener.wait()


@pytest.fixture
def lab(scratch: Scratch) -> Lab:
    bridge = scratch.bridge()
    # A random subnet: bridged traffic of every lab on the host shares the host's conntrack table (no zones),
    # so two labs with the same addresses would see each other's connections as established.
    net = f"10.{random.randrange(100, 200)}.{random.randrange(256)}"
    net6 = f"fd77:{random.randrange(1 << 16):x}"
    vms = []
    for i in (1, 2, 3):
        namespace = scratch.namespace("kfw")
        tap = f"tap{uuid.uuid4().hex[:11]}"
        mac = random_mac()
        scratch.veth_into(namespace, tap, "eth0", mac=mac, cidr=f"{net}.{i}/24", bridge=bridge)
        in_ns(namespace, "ip", "-6", "addr", "add", f"{net6}::{i}/64", "dev", "eth0", "nodad")
        vms.append(Vm(namespace, tap, mac, f"{net}.{i}", f"{net6}::{i}"))
    return Lab(bridge, (vms[0], vms[1], vms[2]))


@pytest.fixture
def fw() -> Iterator[NftablesFirewall]:
    if os.geteuid() != 0:
        pytest.skip("needs root (nftables)")
    suffix = uuid.uuid4().hex[:8]
    firewall = NftablesFirewall(table=f"kumo-t{suffix}", guard_table=f"kumo-g{suffix}")
    try:
        yield firewall
    finally:
        firewall.clear()
        tables = sh("nft", "list", "tables").stdout
        assert suffix not in tables


def test_ingress_is_denied_by_default_and_rule_changes_apply_at_once(lab: Lab, fw: NftablesFirewall) -> None:
    vm1, vm2, vm3 = lab.vms
    fw.apply([vm1.port(), vm2.port(), vm3.port()])
    assert not can_ping(vm1, vm2.ip)

    fw.apply([vm1.port(), vm2.port(EGRESS_ANY + (INGRESS_ICMP,)), vm3.port()])
    assert can_ping(vm1, vm2.ip)
    assert not can_ping(vm1, vm3.ip)

    # A continuous ping (one ICMP id: an *established* flow) while the rule is removed.
    ident = str(random.randrange(1, 65536))
    pinger = subprocess.Popen(["ip", "netns", "exec", vm1.namespace, sys.executable, "-c", PINGER, vm2.ip, "2.5",
                               "0.005", ident], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    fw.apply([vm1.port(), vm2.port(), vm3.port()])
    applied = time.time()
    out, err = pinger.communicate(timeout=10)
    replies = [float(line.split()[0]) for line in out.splitlines()]
    assert replies and replies[0] < applied, err
    lag = replies[-1] - applied
    print(f"\nlast reply {lag * 1000:+.1f} ms after apply() returned ({len(replies)} replies before)")
    assert lag < 0.02
    assert not can_ping(vm1, vm2.ip)


def test_egress_any_lets_replies_back_but_no_new_connections_in(lab: Lab, fw: NftablesFirewall) -> None:
    vm1, vm2, vm3 = lab.vms
    open_port = (SecurityGroupRule("ingress", "IPv4"),) + EGRESS_ANY
    fw.apply([vm1.port(), vm2.port(open_port), vm3.port(open_port)])
    assert can_ping(vm1, vm2.ip)  # the replies are established: vm1 has no ingress rule
    assert tcp_answer(vm1, vm2, 7001) == "hello-7001"
    assert not can_ping(vm2, vm1.ip)  # new connection to vm1
    assert tcp_answer(vm2, vm1, 7002) == ""

    # Stateless: the same egress-only port gets no replies (state is what let them back).
    fw.apply([vm1.port(stateful=False), vm2.port(open_port), vm3.port(open_port)])
    assert not can_ping(vm1, vm2.ip)


def test_tcp_port_range(lab: Lab, fw: NftablesFirewall) -> None:
    vm1, vm2, vm3 = lab.vms
    web = SecurityGroupRule("ingress", "IPv4", "tcp", 8000, 8100)
    fw.apply([vm1.port(), vm2.port(EGRESS_ANY + (web,)), vm3.port()])
    assert tcp_answer(vm1, vm2, 8000) == "hello-8000"
    assert tcp_answer(vm1, vm2, 8100) == "hello-8100"
    assert tcp_answer(vm1, vm2, 8101) == ""
    assert not can_ping(vm1, vm2.ip)


def test_remote_addresses_admit_only_the_group(lab: Lab, fw: NftablesFirewall) -> None:
    vm1, vm2, vm3 = lab.vms
    group = SecurityGroupRule("ingress", "IPv4", "icmp", remote_addresses=(vm1.ip, "10.99.0.1"))
    fw.apply([vm1.port(), vm2.port(), vm3.port(EGRESS_ANY + (group,))])
    assert can_ping(vm1, vm3.ip)
    assert not can_ping(vm2, vm3.ip)

    empty = SecurityGroupRule("ingress", "IPv4", "icmp", remote_addresses=())
    fw.apply([vm1.port(), vm2.port(), vm3.port(EGRESS_ANY + (empty,))])
    assert not can_ping(vm1, vm3.ip)


def test_ipv6_rules_and_neighbour_discovery(lab: Lab, fw: NftablesFirewall) -> None:
    vm1, vm2, vm3 = lab.vms
    fw.apply([vm1.port(), vm2.port(), vm3.port()])
    assert not can_ping(vm1, vm2.ip6)
    fw.apply([vm1.port(), vm2.port(EGRESS_ANY + (INGRESS_ICMP6,)), vm3.port()])
    assert can_ping(vm1, vm2.ip6, count=2)


def test_spoofed_ip_and_mac_are_dropped(lab: Lab, fw: NftablesFirewall) -> None:
    vm1, vm2, vm3 = lab.vms
    fw.apply([vm1.port(), vm2.port(EGRESS_ANY + (INGRESS_ICMP,)), vm3.port()])
    assert can_ping(vm1, vm2.ip)

    spoofed = vm1.ip.rsplit(".", 1)[0] + ".101"
    in_ns(vm1.namespace, "ip", "addr", "add", f"{spoofed}/24", "dev", "eth0")
    assert not can_ping(vm1, vm2.ip, source=spoofed)
    assert can_ping(vm1, vm2.ip)

    # An allowed address pair makes the same source legitimate.
    paired = vm1.port(allowed_pairs=((vm1.mac, f"{spoofed}/32"),))
    fw.apply([paired, vm2.port(EGRESS_ANY + (INGRESS_ICMP,)), vm3.port()])
    assert can_ping(vm1, vm2.ip, source=spoofed)

    fw.apply([vm1.port(), vm2.port(EGRESS_ANY + (INGRESS_ICMP,)), vm3.port()])
    in_ns(vm1.namespace, "ip", "link", "set", "eth0", "address", random_mac())
    for vm in (vm1, vm2):
        in_ns(vm.namespace, "ip", "neigh", "flush", "dev", "eth0")
    assert not can_ping(vm1, vm2.ip)


def test_port_security_disabled_passes_everything(lab: Lab, fw: NftablesFirewall) -> None:
    vm1, vm2, vm3 = lab.vms
    fw.apply([vm1.port(), vm2.port(rules=(), port_security_enabled=False), vm3.port()])
    assert can_ping(vm1, vm2.ip)
    spoofed = vm2.ip.rsplit(".", 1)[0] + ".102"
    in_ns(vm2.namespace, "ip", "addr", "add", f"{spoofed}/24", "dev", "eth0")
    assert can_ping(vm2, vm1.ip, source=spoofed) is False  # vm1 still filters its own ingress
    fw.apply([vm1.port(EGRESS_ANY + (INGRESS_ICMP,)), vm2.port(rules=(), port_security_enabled=False), vm3.port()])
    assert can_ping(vm2, vm1.ip, source=spoofed)


def test_guard_table_guards_forwarding_but_not_bridging(lab: Lab, fw: NftablesFirewall) -> None:
    vm1, vm2, _ = lab.vms
    fw.apply([], guarded_bridges=[lab.bridge])
    listing = sh("nft", "list", "table", "inet", fw.guard_table).stdout
    assert "hook forward" in listing
    assert f'"{lab.bridge}"' in listing
    assert "iifname @bridges drop" in listing and "oifname @bridges drop" in listing
    # With br_netfilter, bridged frames also cross the inet forward hook: they must still pass.
    assert can_ping(vm1, vm2.ip)


#: Receives UDP on a port for a while; prints what came (one line per datagram) or nothing.
UDP_LISTEN = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.2)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        print(s.recv(100).decode(), flush=True)
    except TimeoutError:
        pass
"""

#: Sends a few datagrams from a fixed source port.
UDP_SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
for _ in range(int(sys.argv[4])):
    s.sendto(b"hello", (sys.argv[2], int(sys.argv[3])))
    time.sleep(0.1)
"""


def udp_send(vm: Vm, sport: int, dst: str, dport: int, count: int = 3) -> None:
    in_ns(vm.namespace, sys.executable, "-c", UDP_SEND, str(sport), dst, str(dport), str(count))


def test_networks_with_the_same_addresses_do_not_share_connections(scratch: Scratch, fw: NftablesFirewall) -> None:
    """Two projects' networks use the same subnet on one host. A flow on the first must not make the same
    addresses and ports on the second look established: that would carry packets past a default-deny port."""
    net = f"10.{random.randrange(200, 250)}.{random.randrange(256)}"
    twins: list[tuple[str, Vm, Vm]] = []  # (bridge, client at .1, server at .2)
    for _ in range(2):
        bridge = scratch.bridge()
        vms = []
        for i in (1, 2):
            namespace, tap, mac = scratch.namespace("kfz"), f"tap{uuid.uuid4().hex[:11]}", random_mac()
            scratch.veth_into(namespace, tap, "eth0", mac=mac, cidr=f"{net}.{i}/24", bridge=bridge)
            vms.append(Vm(namespace, tap, mac, f"{net}.{i}", f"fd78::{i}"))
        twins.append((bridge, vms[0], vms[1]))
    (bridge1, client1, server1), (bridge2, client2, server2) = twins
    open_in = (SecurityGroupRule("ingress", "IPv4"),) + EGRESS_ANY

    def ports(zoned: bool) -> list[PortFirewall]:
        return [client1.port(bridge=bridge1 if zoned else ""), server1.port(open_in, bridge=bridge1 if zoned else ""),
                client2.port(bridge=bridge2 if zoned else ""), server2.port(bridge=bridge2 if zoned else "")]

    def leaks(sport: int) -> bool:
        """client1 talks to server1 from ``sport``; does server2 then reach client2 (default deny) as a reply?"""
        listener = subprocess.Popen(["ip", "netns", "exec", client2.namespace, sys.executable, "-c", UDP_LISTEN,
                                     str(sport), "3"], stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            udp_send(client1, sport, server1.ip, 5353)
            udp_send(server2, 5353, client2.ip, sport)
            return "hello" in listener.communicate(timeout=10)[0]
        finally:
            listener.kill()
            listener.wait()

    fw.apply(ports(zoned=False))  # no zones: the collision is real
    assert leaks(40000 + random.randrange(1000))
    fw.apply(ports(zoned=True))
    assert not leaks(41000 + random.randrange(1000))
    zones = parse_zones(sh("nft", "list", "chain", "inet", fw.table, "zones-in").stdout)
    assert zones.keys() == {bridge1, bridge2} and len(set(zones.values())) == 2
    # Both directions of a flow within one network still meet in its zone: the reply comes back.
    assert tcp_answer(client1, server1, 7010) == "hello-7010"
    # A new driver (an agent restart) keeps the zones live connections are in.
    again = NftablesFirewall(table=fw.table, guard_table=fw.guard_table)
    again.apply(ports(zoned=True)[2:])
    assert parse_zones(sh("nft", "list", "chain", "inet", fw.table, "zones-in").stdout) == {bridge2: zones[bridge2]}


def test_apply_time_for_1000_ports(fw: NftablesFirewall) -> None:
    group = tuple(f"10.{i // 250}.{i % 250}.10" for i in range(1000))
    ports = []
    for i in range(1000):
        rules = EGRESS_ANY + (SecurityGroupRule("ingress", "IPv4", remote_addresses=group),
                              SecurityGroupRule("ingress", "IPv4", "tcp", 22, 22))
        mac = f"fa:16:3e:00:{i >> 8:02x}:{i & 255:02x}"
        ports.append(PortFirewall(tap=f"tap{i:011x}", port_id=str(i), mac_address=mac,
                                  addresses=(group[i], f"fd00::{i:x}"), rules=rules))
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        fw.apply(ports, ["brqguardtest"])
        timings.append(time.perf_counter() - started)
    print(f"\napply() of 1000 ports x 4 rules: {', '.join(f'{t * 1000:.0f} ms' for t in timings)}")
    assert min(timings) < 2.0
