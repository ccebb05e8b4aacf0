"""Two compute hosts joined by VXLAN: a guest on each, one tenant network, through the real CLI.

Host 1 is `kumo up` in the host's own network namespace; host 2 is `kumo serve --role compute` inside a
network namespace standing in for another machine, linked to host 1 by a veth "underlay"
(192.168.231.1 <-> .2, each host's ``network.local_ip``). Both run on MariaDB and RabbitMQ (the
multi-node engines); host 2 reaches them and host 1's API through small TCP relays the test runs on
host 1's underlay address (the servers listen on loopback only). The guest on host 2 gets its address
from host 1's dnsmasq and pings the guest on host 1: every frame between them crosses the VXLAN
tunnel (VNI = the network's segmentation id) over the underlay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import KumoProcess, free_port, kill_guests, scrub_dataplane
from kumotest import create_mariadb_database, drop_mariadb_database, require_service

pytestmark = [pytest.mark.e2e, pytest.mark.qemu, pytest.mark.root, pytest.mark.mariadb, pytest.mark.rabbitmq]

DEB_CACHE = Path(os.environ.get("KUMO_TEST_DEB_CACHE", "/var/cache/kumo-test/debs"))
UNDERLAY_HOST, UNDERLAY_PEER = "192.168.231.1", "192.168.231.2"
SERVICE_PASSWORD = "e2e-service-password"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


class Relays:
    """TCP relays ``UNDERLAY_HOST:port -> 127.0.0.1:port`` in a thread of their own (test plumbing only)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="e2e-relays")

    def __enter__(self) -> Relays:
        self.thread.start()
        assert self.ready.wait(10), "relays did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        for port in self.ports:
            self.loop.run_until_complete(asyncio.start_server(self._relay(port), UNDERLAY_HOST, port))
        self.ready.set()
        self.loop.run_forever()

    @staticmethod
    def _relay(port: int):  # type: ignore[no-untyped-def]
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                writer.close()
                return

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(OSError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                with contextlib.suppress(OSError):
                    dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        return handle


class Host2:
    """``kumo serve --role compute`` inside a network namespace, as a second machine."""

    def __init__(self, namespace: str, state_dir: Path, run_dir: Path, env: dict[str, str]) -> None:
        self.namespace, self.state_dir, self.run_dir = namespace, state_dir, run_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        state_dir.chmod(0o755)
        self.log_path = state_dir / "serve.log"
        full = {k: v for k, v in os.environ.items() if not k.startswith(("KUMO_", "OS_"))} | env
        with self.log_path.open("ab") as log:
            # A machine of its own has its own /run/netns. Without one, host 2's agent would see host 1's
            # qdhcp- namespace as a stale object of its own and delete it (``ip netns exec`` already gives the
            # process a private mount namespace, so the tmpfs stays inside).
            own_netns_dir = 'mount -t tmpfs kumo-host2-netns /run/netns && exec "$0" "$@"'
            self.proc = subprocess.Popen(["ip", "netns", "exec", namespace, "sh", "-c", own_netns_dir, sys.executable,
                                          "-m", "kumo.cli", "serve", "--role", "compute"], env=full, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def console(self, uuid_: str) -> str:
        path = self.state_dir / "instances" / uuid_ / "console.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KumoProcess, Host2]]:
    needed = ("qemu-system-x86_64", "apt-get", "dnsmasq", "nft", "busybox")
    if os.geteuid() != 0 or not all(shutil.which(t) for t in needed):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with QEMU, dnsmasq, nftables and busybox installed")
        pytest.skip(f"needs root and {', '.join(needed)}")
    require_service("MariaDB", "127.0.0.1", 3306)
    require_service("RabbitMQ", "127.0.0.1", 5672)
    if subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.count(" brq") or \
            "qdhcp-" in sh("ip", "netns", "list").stdout:
        pytest.skip("this host already runs a Kumo dataplane")
    tag = uuid.uuid4().hex[:6]
    namespace, host_end, peer_end = f"kumo-h2-{tag}", f"kul{tag}", f"kul{tag}p"
    database = asyncio.run(create_mariadb_database())
    vhost_url = "amqp://guest:guest@{}:5672/"
    api_port = free_port()
    run1, run2 = Path(tempfile.mkdtemp(prefix="kv1-")), Path(tempfile.mkdtemp(prefix="kv2-"))
    sh("ip", "netns", "add", namespace)
    kumo: KumoProcess | None = None
    host2: Host2 | None = None
    try:
        sh("ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", peer_end, "netns", namespace)
        sh("ip", "addr", "add", f"{UNDERLAY_HOST}/24", "dev", host_end)
        sh("ip", "link", "set", host_end, "up")
        sh("ip", "netns", "exec", namespace, "ip", "addr", "add", f"{UNDERLAY_PEER}/24", "dev", peer_end)
        sh("ip", "netns", "exec", namespace, "ip", "link", "set", peer_end, "up")
        common = {"KUMO_DATABASE__URL": f"mysql+asyncmy://root@127.0.0.1:3306/{database}",
                  "KUMO_BUS__URL": vhost_url.format("127.0.0.1"), "KUMO_COMPUTE__DRIVER": "qemu",
                  "KUMO_NETWORK__DATAPLANE": "linuxbridge", "KUMO_IDENTITY__SERVICE_PASSWORD": SERVICE_PASSWORD,
                  "KUMO_COMPUTE__SHUTDOWN_TIMEOUT": "10", "KUMO_NODE__HEARTBEAT_INTERVAL": "2",
                  "KUMO_IMAGE__TINY_CACHE_DIR": str(DEB_CACHE)}
        kumo = KumoProcess(tmp_path_factory.mktemp("host1") / "state", port=api_port, extra_env=common | {
            "KUMO_COMPUTE__RUN_DIR": str(run1), "KUMO_IMAGE__BOOTSTRAP_TINY": "true",
            "KUMO_NETWORK__LOCAL_IP": UNDERLAY_HOST, "KUMO_NETWORK__BOOTSTRAP_NETWORKS": "false"})
        kumo.start(timeout=600)
        with Relays([3306, 5672, api_port]):
            state2 = tmp_path_factory.mktemp("host2") / "state"
            host2 = Host2(namespace, state2, run2, common | {
                "KUMO_DATABASE__URL": f"mysql+asyncmy://root@{UNDERLAY_HOST}:3306/{database}",
                "KUMO_BUS__URL": vhost_url.format(UNDERLAY_HOST), "KUMO_NODE__HOST": "host2",
                "KUMO_STATE_DIR": str(state2),
                "KUMO_API__PUBLIC_URL": f"http://{UNDERLAY_HOST}:{api_port}", "KUMO_COMPUTE__RUN_DIR": str(run2),
                "KUMO_NETWORK__LOCAL_IP": UNDERLAY_PEER, "KUMO_CONSOLE__PROXY_HOST": "127.0.0.1"})
            deadline = time.monotonic() + 120
            while "host2" not in {h["Hypervisor Hostname"] for h in kumo.osc("hypervisor", "list")}:
                if host2.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"host 2 did not come up:\n{host2.log()[-3000:]}")
                time.sleep(1)
            try:
                yield kumo, host2
            finally:
                host2.stop()  # while its relayed broker link still works (else each consumer waits out a timeout)
    finally:
        if host2 is not None:
            host2.stop()
        if kumo is not None:
            kumo.stop()
        kill_guests(run1)
        kill_guests(run2)
        for pid in sh("ip", "netns", "pids", namespace, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        sh("ip", "netns", "del", namespace, check=False)
        sh("ip", "link", "del", host_end, check=False)
        if kumo is not None:
            scrub_dataplane(kumo.state_dir)
        shutil.rmtree(run1, ignore_errors=True)
        shutil.rmtree(run2, ignore_errors=True)
        asyncio.run(drop_mariadb_database(database))


def wait_for(text_of, marker: str, seconds: float = 120.0) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while marker not in (text := text_of()):
        if time.monotonic() > deadline:
            pytest.fail(f"{marker} not seen:\n{text[-2500:]}")
        time.sleep(0.3)
    return text


def test_guests_on_two_hosts_share_a_network_over_vxlan(hosts: tuple[KumoProcess, Host2], tmp_path: Path) -> None:
    kumo, host2 = hosts
    osc = kumo.osc
    network = osc("network", "create", "overlay")
    assert network["provider:network_type"] == "vxlan"
    osc("subnet", "create", "--network", "overlay", "--subnet-range", "10.31.0.0/24", "overlay-sub")
    osc("security", "group", "create", "pingable")
    osc("security", "group", "rule", "create", "--protocol", "icmp", "pingable")
    vm1 = osc("server", "create", "--image", "tiny", "--flavor", "m1.nano", "--network", "overlay",
              "--security-group", "pingable", "--availability-zone", "nova:e2e-host", "--wait", "vm1", timeout=240)
    [vm1_ip] = osc("server", "show", "vm1")["addresses"]["overlay"]
    console1 = kumo.state_dir / "instances" / vm1["id"] / "console.log"
    text = wait_for(lambda: console1.read_text(errors="replace") if console1.exists() else "", "KUMO-TINY-READY")
    assert f"KUMO-TINY-NET eth0 {vm1_ip}/24" in text

    script = tmp_path / "ping.sh"
    script.write_text(f"#!/bin/sh\n(while :; do if ping -c1 -W1 {vm1_ip} >/dev/null 2>&1; then echo PING-VM1-OK;"
                      f" else echo PING-VM1-FAIL; fi; sleep 1; done) > /dev/console 2>&1 &\n")
    vm2 = osc("server", "create", "--image", "tiny", "--flavor", "m1.nano", "--network", "overlay",
              "--security-group", "pingable", "--availability-zone", "nova:host2", "--user-data", str(script),
              "--config-drive", "true",  # no router here, so no metadata proxy: the user data comes on the drive
              "--wait", "vm2", timeout=240)
    assert osc("server", "show", "vm2")["OS-EXT-SRV-ATTR:host"] == "host2"
    [vm2_ip] = osc("server", "show", "vm2")["addresses"]["overlay"]
    text = wait_for(lambda: host2.console(vm2["id"]), "PING-VM1-OK")
    assert f"KUMO-TINY-NET eth0 {vm2_ip}/24" in text  # its DHCP answer came from host 1's dnsmasq, over VXLAN
    vni = str(network["provider:segmentation_id"])
    assert f"vxlan id {vni}" in sh("ip", "-d", "link", "show", f"vxlan-{vni}").stdout
    inside = sh("ip", "netns", "exec", host2.namespace, "ip", "-d", "link", "show", f"vxlan-{vni}").stdout
    assert f"local {UNDERLAY_PEER}" in inside
    assert UNDERLAY_HOST in sh("ip", "netns", "exec", host2.namespace, "bridge", "fdb", "show", "dev",
                               f"vxlan-{vni}").stdout
    osc("server", "delete", "--wait", "vm1", "vm2", json=False, timeout=120)
    osc("network", "delete", "overlay", json=False)
    deadline = time.monotonic() + 15
    while subprocess.run(["pgrep", "-f", f"dnsmasq.*{kumo.state_dir}"], capture_output=True).returncode == 0 or \
            f"vxlan-{vni}" in sh("ip", "-o", "link", "show").stdout:
        assert time.monotonic() < deadline, "the network's dnsmasq or VXLAN device outlived it"
        time.sleep(0.3)
