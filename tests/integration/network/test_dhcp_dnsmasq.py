"""DnsmasqDhcp against real namespaces: a DHCP namespace and a "VM" namespace on one bridge, busybox as the guest.

The state directory is a world-searchable temporary directory rather than
``tmp_path``: dnsmasq drops to ``nobody`` after starting and must still
reread its files on SIGHUP, which pytest's 0700 base directory forbids.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from nettest import Scratch, in_ns, sh

from kumo.network import dhcp as dhcp_module
from kumo.network.dataplane.base import DhcpHost, DhcpPlan, DhcpSubnet, FixedIP
from kumo.network.dhcp import DhcpError, DnsmasqDhcp

pytestmark = pytest.mark.root

UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
{{
echo "ip=$ip"
echo "subnet=$subnet"
echo "router=$router"
echo "dns=$dns"
echo "mtu=$mtu"
echo "hostname=$hostname"
echo "domain=$domain"
echo "staticroutes=$staticroutes"
}} > {out}
"""


@dataclass
class Lab:
    """A bridge with the DHCP namespace's port (``.2``) and one VM port (``vm_mac``, no address yet)."""

    network_id: str
    prefix: str  # "10.x.y"
    dhcp_ns: str
    dhcp_if: str
    vm_ns: str
    vm_if: str
    vm_mac: str
    work: Path

    @property
    def dhcp_ip(self) -> str:
        return f"{self.prefix}.2"

    def subnet(self, **kw: object) -> DhcpSubnet:
        fields: dict = {"subnet_id": str(uuid.uuid4()), "cidr": f"{self.prefix}.0/24", "ip_version": 4,
                        "gateway": f"{self.prefix}.1"}
        fields.update(kw)
        return DhcpSubnet(**fields)

    def plan(self, hosts: tuple[DhcpHost, ...], subnet: DhcpSubnet | None = None, **kw: object) -> DhcpPlan:
        subnet = subnet or self.subnet()
        fields: dict = {"network_id": self.network_id, "namespace": self.dhcp_ns, "interface": self.dhcp_if,
                        "port_id": str(uuid.uuid4()), "mac_address": "fa:16:3e:00:00:02",
                        "addresses": (FixedIP(self.dhcp_ip, 24, subnet.subnet_id, subnet.gateway),), "mtu": 1400,
                        "subnets": (subnet,), "hosts": hosts}
        fields.update(kw)
        return DhcpPlan(**fields)


def random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


def udhcpc(lab: Lab, *, tries: int = 5) -> dict[str, str] | None:
    """One DHCP exchange from the VM namespace; what the server gave, or None when no lease came."""
    out = lab.work / f"lease-{uuid.uuid4().hex[:6]}"
    script = lab.work / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT.format(out=out))
    script.chmod(0o755)
    done = in_ns(lab.vm_ns, "busybox", "udhcpc", "-i", lab.vm_if, "-n", "-q", "-t", str(tries), "-T", "1",
                 "-A", "1", "-s", str(script), "-O", "mtu", "-O", "staticroutes", "-O", "hostname",
                 check=False, timeout=tries + 10)
    if done.returncode != 0 or not out.exists():
        return None
    return dict(line.split("=", 1) for line in out.read_text().splitlines())


DHCP6_CLIENT = r"""
import json, os, socket, struct, sys, time

iface, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
def opt(code, data):
    return struct.pack("!HH", code, len(data)) + data
def options(data):
    while len(data) >= 4:
        code, size = struct.unpack("!HH", data[:4])
        yield code, data[4:4 + size]
        data = data[4 + size:]
xid = os.urandom(3)
solicit = (b"\x01" + xid + opt(1, struct.pack("!HH", 3, 1) + mac) + opt(3, struct.pack("!III", 1, 0, 0))
           + opt(8, b"\0\0") + opt(6, struct.pack("!HH", 23, 24)))
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
sock.bind(("::", 546))
sock.settimeout(0.5)
found = {"replied": False, "addresses": [], "dns": [], "status": None}
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        sock.sendto(solicit, ("ff02::1:2", 547, 0, socket.if_nametoindex(iface)))
        reply = sock.recv(4096)
    except OSError:  # link-local still tentative, or no answer yet
        time.sleep(0.2)
        continue
    if reply[0] != 2 or reply[1:4] != xid:
        continue
    found["replied"] = True
    for code, data in options(reply[4:]):
        if code == 13:
            found["status"] = struct.unpack("!H", data[:2])[0]
        elif code == 3:
            for sub, value in options(data[12:]):
                if sub == 5:
                    found["addresses"].append(socket.inet_ntop(socket.AF_INET6, value[:16]))
                elif sub == 13:
                    found["status"] = struct.unpack("!H", value[:2])[0]
        elif code == 23:
            found["dns"] = [socket.inet_ntop(socket.AF_INET6, data[i:i + 16]) for i in range(0, len(data), 16)]
    break
print(json.dumps(found))
"""


def dhcpv6_solicit(lab: Lab, *, seconds: float = 5) -> dict:
    """A DHCPv6 Solicit (DUID-LL of the VM's MAC, one IA_NA) from the VM namespace; busybox has no udhcpc6."""
    script = lab.work / "dhcp6.py"
    script.write_text(DHCP6_CLIENT)
    done = in_ns(lab.vm_ns, sys.executable, str(script), lab.vm_if, lab.vm_mac, str(seconds), timeout=seconds + 10)
    return json.loads(done.stdout)


def wait_link_local(namespace: str, interface: str, seconds: float = 10) -> None:
    """DHCPv6 runs between link-local addresses: wait until the interface's has passed DAD."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = in_ns(namespace, "ip", "-6", "addr", "show", "dev", interface, "scope", "link").stdout
        if "inet6" in out and "tentative" not in out:
            return
        time.sleep(0.1)
    raise AssertionError(f"{interface} in {namespace} has no usable link-local address: {out}")


def dnsmasq_pids(network_id: str) -> list[str]:
    return sh("pgrep", "-f", network_id, check=False).stdout.split()


@pytest.fixture
def state_dir() -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="kumo-dhcp-test-"))
    made.chmod(0o755)
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def lab(scratch: Scratch, tmp_path: Path) -> Lab:
    bridge = scratch.bridge()
    dhcp_ns, vm_ns = scratch.namespace("kqdhcp"), scratch.namespace("kvm")
    prefix = f"10.{random.randrange(100, 250)}.{random.randrange(1, 250)}"
    lab = Lab(network_id=str(uuid.uuid4()), prefix=prefix, dhcp_ns=dhcp_ns, dhcp_if="ns-dhcp0", vm_ns=vm_ns,
              vm_if="eth0", vm_mac=random_mac(), work=tmp_path)
    scratch.veth_into(dhcp_ns, scratch.link_name("ktd"), lab.dhcp_if, cidr=f"{lab.dhcp_ip}/24", bridge=bridge)
    scratch.veth_into(vm_ns, scratch.link_name("ktv"), lab.vm_if, mac=lab.vm_mac, bridge=bridge)
    return lab


@pytest.fixture
def driver(state_dir: Path, lab: Lab) -> Iterator[DnsmasqDhcp]:
    made = DnsmasqDhcp(state_dir)
    try:
        yield made
    finally:
        made.stop_all()
        assert dnsmasq_pids(lab.network_id) == []


class KillLog:
    """Records the signals the driver sends (and still sends them)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []
        self._kill = os.kill

    def __call__(self, pid: int, signum: int) -> None:
        self.sent.append((pid, signum))
        self._kill(pid, signum)


@pytest.fixture
def kills(monkeypatch: pytest.MonkeyPatch) -> KillLog:
    log = KillLog()
    monkeypatch.setattr(dhcp_module.os, "kill", log)
    return log


def test_static_lease_with_router_dns_mtu_routes_and_name(lab: Lab, driver: DnsmasqDhcp) -> None:
    subnet = lab.subnet(host_routes=(("192.168.77.0/24", f"{lab.prefix}.254"),))
    vm_ip = f"{lab.prefix}.10"
    driver.ensure(lab.plan((DhcpHost(lab.vm_mac, (vm_ip,), "vm-one"),
                            DhcpHost(random_mac(), (f"{lab.prefix}.11",), "other")), subnet))
    assert driver.networks() == {lab.network_id}

    got = udhcpc(lab)

    assert got is not None, "no lease"
    assert got["ip"] == vm_ip
    assert got["subnet"] == "255.255.255.0"
    assert got["router"] == f"{lab.prefix}.1"
    assert got["dns"] == lab.dhcp_ip  # no dns_nameservers: dnsmasq itself
    assert got["mtu"] == "1400"
    assert got["hostname"] == "vm-one"
    assert got["domain"] == "openstacklocal"
    assert got["staticroutes"] == f"192.168.77.0/24 {lab.prefix}.254 0.0.0.0/0 {lab.prefix}.1"


def test_names_resolve_through_dnsmasq(lab: Lab, driver: DnsmasqDhcp) -> None:
    vm_ip = f"{lab.prefix}.10"
    driver.ensure(lab.plan((DhcpHost(lab.vm_mac, (vm_ip,), "vm-one"),
                            DhcpHost(random_mac(), (f"{lab.prefix}.11",), "other"))))
    in_ns(lab.vm_ns, "ip", "addr", "add", f"{vm_ip}/24", "dev", lab.vm_if)

    for name, address in (("other", f"{lab.prefix}.11"), ("vm-one.openstacklocal", vm_ip)):
        answer = in_ns(lab.vm_ns, "busybox", "nslookup", name, lab.dhcp_ip, check=False).stdout
        assert f"Address: {address}" in answer, answer


def test_log_dir_records_the_lease_and_the_query(lab: Lab, state_dir: Path, tmp_path: Path) -> None:
    logging_driver = DnsmasqDhcp(state_dir, log_dir=tmp_path / "dhcp-logs")
    try:
        vm_ip = f"{lab.prefix}.10"
        logging_driver.ensure(lab.plan((DhcpHost(lab.vm_mac, (vm_ip,), "vm-one"),)))
        assert udhcpc(lab) is not None, "no lease"
        in_ns(lab.vm_ns, "ip", "addr", "add", f"{vm_ip}/24", "dev", lab.vm_if)
        in_ns(lab.vm_ns, "busybox", "nslookup", "vm-one", lab.dhcp_ip, check=False)
        log_text = (tmp_path / "dhcp-logs" / lab.network_id / "dhcp_dns_log").read_text()
        assert "DHCPACK(" in log_text and lab.vm_mac.lower() in log_text.lower()
        assert "query[A] vm-one" in log_text
    finally:
        logging_driver.stop_all()
    assert dnsmasq_pids(lab.network_id) == []


def test_given_dns_servers_and_no_gateway(lab: Lab, driver: DnsmasqDhcp) -> None:
    subnet = lab.subnet(gateway=None, dns_nameservers=("192.0.2.53", "192.0.2.54"))
    driver.ensure(lab.plan((DhcpHost(lab.vm_mac, (f"{lab.prefix}.20",), ""),), subnet))

    got = udhcpc(lab)

    assert got is not None, "no lease"
    assert got["ip"] == f"{lab.prefix}.20"
    assert got["router"] == ""
    assert got["dns"].split() == ["192.0.2.53", "192.0.2.54"]
    assert got["hostname"] == f"host-{lab.prefix.replace('.', '-')}-20"


def test_unknown_mac_gets_nothing_until_added_without_restart(lab: Lab, driver: DnsmasqDhcp,
                                                               kills: KillLog) -> None:
    subnet = lab.subnet()
    other = DhcpHost(random_mac(), (f"{lab.prefix}.11",), "other")
    driver.ensure(lab.plan((other,), subnet))
    pid = driver.pid(lab.network_id)
    assert pid is not None

    started = time.monotonic()
    assert udhcpc(lab, tries=2) is None
    print(f"\nunknown MAC refused: udhcpc gave up after {time.monotonic() - started:.2f}s")

    vm_ip = f"{lab.prefix}.30"
    driver.ensure(lab.plan((other, DhcpHost(lab.vm_mac, (vm_ip,), "late")), subnet))
    ensured = time.monotonic()
    got = udhcpc(lab)
    took = time.monotonic() - ensured

    print(f"host added -> lease obtained: {took * 1000:.0f} ms (ensure() return to udhcpc bound)")
    assert got is not None and got["ip"] == vm_ip
    assert driver.pid(lab.network_id) == pid
    assert kills.sent == [(pid, signal.SIGHUP)]

    driver.ensure(lab.plan((other,), subnet))  # the port goes away again: refused again, same process
    assert udhcpc(lab, tries=2) is None
    assert driver.pid(lab.network_id) == pid


def test_unchanged_plan_is_left_alone_and_readopted(lab: Lab, driver: DnsmasqDhcp, state_dir: Path,
                                                    kills: KillLog) -> None:
    plan = lab.plan((DhcpHost(lab.vm_mac, (f"{lab.prefix}.10",), "vm-one"),))
    driver.ensure(plan)
    pid = driver.pid(lab.network_id)

    driver.ensure(plan)
    again = DnsmasqDhcp(state_dir)  # the agent restarted
    assert again.networks() == {lab.network_id}
    again.ensure(plan)

    assert again.pid(lab.network_id) == pid
    assert kills.sent == []
    assert udhcpc(lab) is not None


def test_command_line_change_restarts(lab: Lab, driver: DnsmasqDhcp) -> None:
    plan = lab.plan((DhcpHost(lab.vm_mac, (f"{lab.prefix}.10",), "vm-one"),))
    driver.ensure(plan)
    pid = driver.pid(lab.network_id)

    driver.ensure(replace(plan, dns_domain="example.test"))

    new_pid = driver.pid(lab.network_id)
    assert new_pid is not None and new_pid != pid
    assert dnsmasq_pids(lab.network_id) == [str(new_pid)]
    got = udhcpc(lab)
    assert got is not None and got["domain"] == "example.test"


def test_stale_pid_file_is_not_trusted(lab: Lab, driver: DnsmasqDhcp, state_dir: Path) -> None:
    """A pid file naming some other process (pid reuse after a reboot) is ignored, and that process untouched."""
    plan = lab.plan((DhcpHost(lab.vm_mac, (f"{lab.prefix}.10",), "vm-one"),))
    driver.ensure(plan)
    pid = driver.pid(lab.network_id)
    pid_file = state_dir / lab.network_id / "pid"
    pid_file.write_text(f"{os.getpid()}\n")

    assert driver.networks() == set()
    driver.ensure(plan)  # adopts nothing, kills the stray it finds by its command line, starts anew

    assert os.getpid() != driver.pid(lab.network_id) != pid
    assert dnsmasq_pids(lab.network_id) == [str(driver.pid(lab.network_id))]


def test_remove_stops_dnsmasq_and_deletes_config(lab: Lab, driver: DnsmasqDhcp, state_dir: Path) -> None:
    driver.ensure(lab.plan((DhcpHost(lab.vm_mac, (f"{lab.prefix}.10",), "vm-one"),)))
    conf = state_dir / lab.network_id
    assert stat.S_IMODE(conf.stat().st_mode) == 0o755
    assert {p.name for p in conf.iterdir()} >= {"host", "opts", "addn_hosts", "pid", "leases"}

    driver.remove(lab.network_id)

    assert dnsmasq_pids(lab.network_id) == []
    assert not conf.exists()
    assert driver.networks() == set()
    driver.remove(lab.network_id)  # missing is fine
    assert udhcpc(lab, tries=1) is None


def test_ipv6_slaac_router_advertisements(lab: Lab, driver: DnsmasqDhcp) -> None:
    """ipv6_ra_mode slaac: dnsmasq advertises the prefix and MTU; the VM's kernel configures itself."""
    prefix6 = f"fd{random.randrange(16**2):02x}:{random.randrange(16**4):x}:1::"
    dhcp6 = f"{prefix6}2"
    in_ns(lab.dhcp_ns, "ip", "addr", "add", f"{dhcp6}/64", "dev", lab.dhcp_if, "nodad")
    v4 = lab.subnet()
    v6 = DhcpSubnet(str(uuid.uuid4()), f"{prefix6}/64", 6, f"{prefix6}1", ipv6_ra_mode="slaac",
                    ipv6_address_mode="slaac")
    plan = lab.plan((), v4, subnets=(v4, v6), addresses=(FixedIP(lab.dhcp_ip, 24, v4.subnet_id),
                                                          FixedIP(dhcp6, 64, v6.subnet_id)))
    driver.ensure(plan)

    deadline = time.monotonic() + 15
    addrs = ""
    while time.monotonic() < deadline:
        addrs = in_ns(lab.vm_ns, "ip", "-6", "addr", "show", "dev", lab.vm_if, "scope", "global").stdout
        if prefix6.rstrip(":") in addrs:
            break
        time.sleep(0.2)
    assert prefix6.rstrip(":") in addrs, addrs
    mtu = in_ns(lab.vm_ns, "cat", f"/proc/sys/net/ipv6/conf/{lab.vm_if}/mtu").stdout.strip()
    assert mtu == "1400"
    routes = in_ns(lab.vm_ns, "ip", "-6", "route", "show", "default").stdout
    assert routes.strip() == ""  # router lifetime 0: the DHCP namespace is no router


def test_ipv6_stateful_static_lease(lab: Lab, driver: DnsmasqDhcp) -> None:
    """dhcpv6-stateful: the VM's MAC gets exactly its address and dnsmasq as DNS server; other MACs nothing."""
    prefix6 = f"fd{random.randrange(16**2):02x}:{random.randrange(16**4):x}:6::"
    dhcp6, vm6 = f"{prefix6}2", f"{prefix6}a"
    in_ns(lab.dhcp_ns, "ip", "addr", "add", f"{dhcp6}/64", "dev", lab.dhcp_if, "nodad")
    v6 = DhcpSubnet(str(uuid.uuid4()), f"{prefix6}/64", 6, f"{prefix6}1", ipv6_ra_mode="dhcpv6-stateful",
                    ipv6_address_mode="dhcpv6-stateful")
    plan = lab.plan((DhcpHost(random_mac(), (f"{prefix6}b",), "other"),), v6,
                    addresses=(FixedIP(dhcp6, 64, v6.subnet_id),))
    driver.ensure(plan)
    wait_link_local(lab.dhcp_ns, lab.dhcp_if)
    wait_link_local(lab.vm_ns, lab.vm_if)
    refused = dhcpv6_solicit(lab)
    assert refused["replied"] and refused["addresses"] == [] and refused["status"] == 2  # NoAddrsAvail

    driver.ensure(replace(plan, hosts=(*plan.hosts, DhcpHost(lab.vm_mac, (vm6,), "vm6"))))
    got = dhcpv6_solicit(lab)

    assert got["addresses"] == [vm6]
    assert got["dns"] == [dhcp6]


def test_missing_namespace_is_an_error(lab: Lab, driver: DnsmasqDhcp) -> None:
    plan = lab.plan((), namespace=f"kqdhcp-missing-{uuid.uuid4().hex[:6]}")
    with pytest.raises(DhcpError, match="failed"):
        driver.ensure(plan)
    assert driver.networks() == set()
    assert dnsmasq_pids(lab.network_id) == []
