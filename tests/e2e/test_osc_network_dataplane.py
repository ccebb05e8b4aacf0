"""Real networks for real guests, through the real CLI: `kumo up` with the QEMU driver and the Linux dataplane.

Two `tiny` guests on a network made with `openstack network/subnet/router create` get their addresses
by DHCP (dnsmasq in the network's namespace), read the metadata service through their router's proxy,
ping each other and the external gateway (SNAT); removing the ICMP rule of their security group stops
the ping and adding it back restores it (nftables); a floating IP answers ping from the host. What the
guests see is read from their serial consoles (the tiny image prints ``KUMO-TINY-*`` markers, and the
second guest's user data pings in a loop). At the end every resource is deleted through the API and the
host must hold no bridge, tap, namespace, dnsmasq or rule of Kumo's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import KumoProcess, kill_guests, scrub_dataplane

from kumo.network.dataplane.base import KUMO_LINK_PREFIXES, KUMO_NETNS_PREFIXES

pytestmark = [pytest.mark.e2e, pytest.mark.qemu, pytest.mark.root]

DEB_CACHE = Path(os.environ.get("KUMO_TEST_DEB_CACHE", "/var/cache/kumo-test/debs"))
PUBLIC = "172.29.77.0/24"  # not devstack's 172.24.4.0/24, so a developer's own `kumo up` is left alone
GATEWAY = "172.29.77.1"
BOOT_SECONDS = 90.0


def kumo_objects() -> dict[str, list[str]]:
    """Kumo-named links and namespaces, dnsmasq processes and nft tables on this host."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    dnsmasq = subprocess.run(["pgrep", "-af", "dnsmasq.*--pid-file=.*/dhcp/"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {"links": [n for n in names if n.startswith(KUMO_LINK_PREFIXES) and not n.startswith("br-") or
                      n == "br-public"],
            "namespaces": [ns.split()[0] for ns in namespaces.splitlines() if ns.startswith(KUMO_NETNS_PREFIXES)],
            "dnsmasq": dnsmasq.splitlines(),
            "rules": [t for t in tables.splitlines() if " kumo" in t]}


class Cloud:
    def __init__(self, kumo: KumoProcess, run_dir: Path) -> None:
        self.kumo = kumo
        self.run_dir = run_dir

    def osc(self, *args: str, **kwargs: Any) -> Any:
        return self.kumo.osc(*args, **kwargs)

    def console(self, uuid: str) -> str:
        path = self.kumo.state_dir / "instances" / uuid / "console.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_console(self, uuid: str, marker: str, after: int = 0, seconds: float = BOOT_SECONDS) -> str:
        deadline = time.monotonic() + seconds
        while True:
            text = self.console(uuid)
            if marker in text[after:]:
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"{marker} not on the console of {uuid} after offset {after}:\n{text[-2500:]}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    needed = ("qemu-system-x86_64", "apt-get", "dnsmasq", "nft", "busybox")
    if os.geteuid() != 0 or not all(shutil.which(t) for t in needed):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with QEMU, dnsmasq, nftables and busybox installed")
        pytest.skip(f"needs root and {', '.join(needed)}")
    found = kumo_objects()
    if found["links"] or found["namespaces"] or found["dnsmasq"]:
        pytest.skip(f"this host already runs a Kumo dataplane: {found}")
    run_dir = Path(tempfile.mkdtemp(prefix="kn-e2e-"))
    kumo = KumoProcess(tmp_path_factory.mktemp("kumo-net") / "state", extra_env={
        "KUMO_COMPUTE__DRIVER": "qemu", "KUMO_COMPUTE__RUN_DIR": str(run_dir),
        "KUMO_COMPUTE__SHUTDOWN_TIMEOUT": "10", "KUMO_IMAGE__BOOTSTRAP_TINY": "true",
        "KUMO_IMAGE__TINY_CACHE_DIR": str(DEB_CACHE), "KUMO_NETWORK__DATAPLANE": "linuxbridge",
        "KUMO_NETWORK__BOOTSTRAP_NETWORKS": "true", "KUMO_NETWORK__PUBLIC_CIDR": PUBLIC})
    kumo.start(timeout=600)
    try:
        yield Cloud(kumo, run_dir)
    finally:
        kumo.stop()
        kill_guests(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
        scrub_dataplane(kumo.state_dir)


def test_guests_get_dhcp_metadata_security_groups_snat_and_floating_ips(cloud: Cloud, tmp_path: Path) -> None:
    osc = cloud.osc
    assert {n["Name"] for n in osc("network", "list")} == {"public", "private"}
    osc("network", "create", "net1")
    osc("subnet", "create", "--network", "net1", "--subnet-range", "10.20.0.0/24", "sub1")
    osc("router", "create", "r1")
    osc("router", "add", "subnet", "r1", "sub1", json=False)
    osc("router", "set", "--external-gateway", "public", "r1", json=False)
    osc("security", "group", "create", "sg1")
    icmp = osc("security", "group", "rule", "create", "--protocol", "icmp", "sg1")["id"]

    vm1 = osc("server", "create", "--image", "tiny", "--flavor", "m1.nano", "--network", "net1",
              "--security-group", "sg1", "--wait", "vm1", timeout=180)
    [vm1_ip] = [a for a in osc("server", "show", "vm1")["addresses"]["net1"]]
    text = cloud.wait_console(vm1["id"], "KUMO-TINY-READY")
    assert f"KUMO-TINY-NET eth0 {vm1_ip}/24" in text  # the address came from dnsmasq
    assert "KUMO-TINY-METADATA http-openstack" in text  # no config drive: the router's metadata proxy
    assert "KUMO-TINY-HOSTNAME vm1.novalocal" in text

    script = tmp_path / "ping.sh"
    script.write_text(f"""#!/bin/sh
(while :; do
  if ping -c1 -W1 {vm1_ip} >/dev/null 2>&1; then echo PING-VM1-OK; else echo PING-VM1-FAIL; fi
  if ping -c1 -W1 {GATEWAY} >/dev/null 2>&1; then echo PING-GW-OK; else echo PING-GW-FAIL; fi
  sleep 1
done) > /dev/console 2>&1 &
""")
    vm2 = osc("server", "create", "--image", "tiny", "--flavor", "m1.nano", "--network", "net1",
              "--security-group", "sg1", "--user-data", str(script), "--wait", "vm2", timeout=180)
    cloud.wait_console(vm2["id"], "PING-VM1-OK")
    cloud.wait_console(vm2["id"], "PING-GW-OK")  # out through router1's SNAT to the host's side of public

    started = time.monotonic()
    osc("security", "group", "rule", "delete", icmp, json=False)
    mark = len(cloud.console(vm2["id"]))
    cloud.wait_console(vm2["id"], "PING-VM1-FAIL", after=mark, seconds=15)
    print(f"rule delete -> ping stopped: {time.monotonic() - started:.1f}s")
    osc("security", "group", "rule", "create", "--protocol", "icmp", "sg1")
    mark = len(cloud.console(vm2["id"]))
    cloud.wait_console(vm2["id"], "PING-VM1-OK", after=mark, seconds=15)

    fip = osc("floating", "ip", "create", "public")["floating_ip_address"]
    osc("server", "add", "floating", "ip", "vm1", fip, json=False)
    deadline = time.monotonic() + 20
    while subprocess.run(["busybox", "ping", "-c1", "-W1", fip], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, f"floating IP {fip} does not answer from the host"
    shown = osc("server", "show", "vm1")["addresses"]["net1"]
    deadline = time.monotonic() + 10
    while fip not in shown and time.monotonic() < deadline:
        time.sleep(0.5)
        shown = osc("server", "show", "vm1")["addresses"]["net1"]
    assert fip in shown

    # Everything goes through the API; the host must then be clean.
    osc("server", "delete", "--wait", "vm1", "vm2", json=False, timeout=120)
    osc("floating", "ip", "delete", fip, json=False)
    for router, subnet in (("r1", "sub1"), ("router1", "private-subnet")):
        osc("router", "remove", "subnet", router, subnet, json=False)
        osc("router", "unset", "--external-gateway", router, json=False)
        osc("router", "delete", router, json=False)
    osc("network", "delete", "net1", "private", "public", json=False)
    osc("security", "group", "delete", "sg1", json=False)
    deadline = time.monotonic() + 15
    while (left := kumo_objects()) and (left["links"] or left["namespaces"] or left["dnsmasq"]):
        assert time.monotonic() < deadline, f"left on the host after deleting everything: {left}"
        time.sleep(0.3)
