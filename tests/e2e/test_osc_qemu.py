"""Real guests through the real CLI: `kumo up` with the QEMU driver and the `tiny` image it registers.

What each step is checked against is the host itself: the QEMU process table, the guest's QMP
status, its files, and what the guest printed on its serial console (the `tiny` image's
``KUMO-TINY-*`` markers, see kumo/image/tiny_init.py). Every QEMU, directory and socket the
cloud made is gone at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from e2e_support import KumoProcess, kill_guests, unique

from kumo.compute.virt.qemu import qmp
from kumo.compute.virt.qemu.process import is_guest_process

pytestmark = [pytest.mark.e2e, pytest.mark.qemu, pytest.mark.root]

DEB_CACHE = Path(os.environ.get("KUMO_TEST_DEB_CACHE", "/var/cache/kumo-test/debs"))
BOOT_SECONDS = 90.0


class Cloud:
    """The live cloud and the host it runs guests on."""

    def __init__(self, kumo: KumoProcess, run_dir: Path) -> None:
        self.kumo = kumo
        self.run_dir = run_dir
        self.instances = kumo.state_dir / "instances"

    def osc(self, *args: str, **kwargs: Any) -> Any:
        return self.kumo.osc(*args, **kwargs)

    def pid(self, uuid: str) -> int | None:
        """The guest's live QEMU process, from the pid file and the process table."""
        try:
            pid = int((self.run_dir / uuid / "qemu.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if is_guest_process(pid, uuid) else None

    def qmp_status(self, uuid: str) -> str:
        return str(asyncio.run(qmp.command(self.run_dir / uuid / "qmp.sock", "query-status"))["status"])

    def console(self, uuid: str) -> str:
        path = self.instances / uuid / "console.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_console(self, uuid: str, marker: str, after: int = 0, seconds: float = BOOT_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while marker not in self.console(uuid)[after:]:
            if time.monotonic() > deadline:
                pytest.fail(f"{marker} not on the console of {uuid}:\n{self.console(uuid)[-2000:]}")
            time.sleep(0.2)

    def wait_status(self, name: str, status: str, seconds: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            server = self.osc("server", "show", name)
            if server["status"] == status and not server.get("OS-EXT-STS:task_state"):
                return server  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                pytest.fail(f"{name} is {server['status']}/{server.get('OS-EXT-STS:task_state')}, not {status}")
            time.sleep(0.5)

    def guests(self) -> list[str]:
        return sorted(p.name for p in self.instances.iterdir()) if self.instances.exists() else []


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not shutil.which("apt-get"):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with QEMU and apt installed")
        pytest.skip("needs root, QEMU and apt-get")
    run_dir = Path(tempfile.mkdtemp(prefix="kq-e2e-"))
    kumo = KumoProcess(tmp_path_factory.mktemp("kumo-qemu") / "state", extra_env={
        "KUMO_COMPUTE__DRIVER": "qemu", "KUMO_COMPUTE__RUN_DIR": str(run_dir),
        "KUMO_COMPUTE__SHUTDOWN_TIMEOUT": "30", "KUMO_COMPUTE__SYNC_POWER_STATE_INTERVAL": "5",
        "KUMO_IMAGE__BOOTSTRAP_TINY": "true", "KUMO_IMAGE__TINY_CACHE_DIR": str(DEB_CACHE)})
    kumo.start(timeout=600)
    try:
        yield Cloud(kumo, run_dir)
    finally:
        kumo.stop()
        leftovers = kill_guests(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
        assert not leftovers, f"guests left running after the tests: {leftovers}"


def test_tiny_is_registered_and_the_hypervisor_is_real(cloud: Cloud) -> None:
    images = {i["Name"]: i for i in cloud.osc("image", "list", "--long")}
    assert {"tiny", "tiny-kernel", "tiny-ramdisk"} <= set(images)
    tiny = cloud.osc("image", "show", "tiny")
    props = tiny["properties"] if isinstance(tiny["properties"], dict) else json.loads(tiny["properties"])
    assert tiny["status"] == "active" and props["kernel_id"] == images["tiny-kernel"]["ID"]
    [hypervisor] = cloud.osc("hypervisor", "list")
    shown = cloud.osc("hypervisor", "show", hypervisor["Hypervisor Hostname"])
    assert shown["hypervisor_type"] in ("QEMU", "KVM")  # TCG shows as QEMU, KVM only where it really runs
    old = cloud.osc("hypervisor", "show", hypervisor["Hypervisor Hostname"], "--os-compute-api-version", "2.87")
    cpu = old["cpu_info"] if isinstance(old["cpu_info"], dict) else json.loads(old["cpu_info"])
    assert cpu["accelerator"] == ("kvm" if shown["hypervisor_type"] == "KVM" else "tcg")
    assert "accelerator" in cloud.kumo.log()


def test_server_life_through_the_cli(cloud: Cloud, tmp_path: Path) -> None:
    name, key = unique("life"), unique("key")
    public_key = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " e2e"
    (tmp_path / "key.pub").write_text(public_key + "\n")
    (tmp_path / "script.sh").write_text("#!/bin/sh\necho KUMO-E2E-USERDATA-$((6*7))\n")
    cloud.osc("keypair", "create", "--public-key", str(tmp_path / "key.pub"), key)
    server = cloud.osc("server", "create", "--image", "tiny", "--flavor", "m1.nano", "--nic", "none",
                       "--config-drive", "true", "--key-name", key, "--user-data", str(tmp_path / "script.sh"),
                       "--wait", name, timeout=180)
    uuid = server["id"]
    assert server["status"] == "ACTIVE" and cloud.pid(uuid) is not None
    cloud.wait_console(uuid, "KUMO-TINY-READY")
    log = cloud.osc("console", "log", "show", name, json=False)
    for line in ("KUMO-TINY-BOOT-OK", "KUMO-TINY-METADATA config-drive", f"KUMO-TINY-HOSTNAME {name}.novalocal",
                 "KUMO-TINY-KEYS 1", "KUMO-E2E-USERDATA-42", "KUMO-TINY-USERDATA-RC 0"):
        assert line in log
    tail = cloud.osc("console", "log", "show", "--lines", "3", name, json=False)
    assert len(tail.splitlines()) <= 3

    first = cloud.pid(uuid)
    cloud.osc("server", "stop", name)
    cloud.wait_status(name, "SHUTOFF")
    assert cloud.pid(uuid) is None and "KUMO-TINY-POWEROFF" in cloud.console(uuid)  # a clean ACPI shutdown
    cloud.osc("server", "start", name)
    cloud.wait_status(name, "ACTIVE")
    started = cloud.pid(uuid)
    assert started not in (None, first) and cloud.qmp_status(uuid) == "running"
    cloud.osc("server", "reboot", "--hard", name)
    cloud.wait_status(name, "ACTIVE")
    rebooted = cloud.pid(uuid)
    assert rebooted not in (None, started) and cloud.qmp_status(uuid) == "running"
    cloud.osc("server", "suspend", name)
    cloud.wait_status(name, "SUSPENDED")
    assert cloud.pid(uuid) is None and (cloud.instances / uuid / "memory.state").is_file()
    cloud.osc("server", "resume", name)
    cloud.wait_status(name, "ACTIVE")
    assert cloud.qmp_status(uuid) == "running" and not (cloud.instances / uuid / "memory.state").exists()
    cloud.osc("server", "pause", name)
    cloud.wait_status(name, "PAUSED")
    assert cloud.qmp_status(uuid) == "paused"
    cloud.osc("server", "unpause", name)
    cloud.wait_status(name, "ACTIVE")
    assert cloud.qmp_status(uuid) == "running"

    snap = unique("snap")
    image = cloud.osc("server", "image", "create", "--name", snap, "--wait", name, timeout=300)
    assert image["status"] == "active"
    again = cloud.osc("server", "create", "--image", snap, "--flavor", "m1.nano", "--nic", "none", "--wait",
                      unique("from-snap"), timeout=300)
    assert again["status"] == "ACTIVE"
    cloud.wait_console(again["id"], "KUMO-TINY-BOOT-OK")

    pids = [cloud.pid(uuid), cloud.pid(again["id"])]
    cloud.osc("server", "delete", "--wait", name, again["id"], json=False, timeout=120)
    cloud.osc("image", "delete", snap, json=False)
    assert not any(p is not None and (is_guest_process(p, uuid) or is_guest_process(p, again["id"])) for p in pids)
    for gone in (uuid, again["id"]):
        assert not (cloud.instances / gone).exists() and not (cloud.run_dir / gone).exists()


def test_bad_input_fails_clearly_and_leaves_the_host_clean(cloud: Cloud) -> None:
    small = unique("small")
    cloud.osc("flavor", "create", "--ram", "64", "--disk", "1", "--vcpus", "1", small)
    refused = cloud.osc("server", "create", "--image", "tiny", "--flavor", small, "--nic", "none", unique("tiny"),
                        check=False)
    assert refused.returncode != 0 and "Flavor's memory is too small for requested image" in refused.stderr
    before = cloud.guests()

    corrupt = unique("corrupt")
    payload = cloud.kumo.state_dir / "payload.raw"
    payload.write_bytes(b"\x00" * 65536)
    image = cloud.osc("image", "create", "--disk-format", "raw", "--container-format", "bare",
                      "--file", str(payload), corrupt)
    stored = cloud.kumo.state_dir / "images" / image["id"]  # tampered with in the store after the upload:
    stored.write_bytes(b"\xff" * stored.stat().st_size)
    broken = unique("broken")
    cloud.osc("server", "create", "--image", corrupt, "--flavor", "m1.nano", "--nic", "none", broken)
    fault = cloud.wait_status(broken, "ERROR")["fault"]
    assert "is corrupt" in fault["message"] and "checksum" in fault["message"]

    machine = unique("bad-machine")
    cloud.osc("image", "create", "--disk-format", "raw", "--container-format", "bare", "--file",
              str(payload), "--property", "hw_machine_type=kumo-no-such-machine",
              machine)
    failing = unique("failing")
    cloud.osc("server", "create", "--image", machine, "--flavor", "m1.nano", "--nic", "none", failing)
    fault = cloud.wait_status(failing, "ERROR")["fault"]
    assert "QEMU failed to start" in fault["message"] and "unsupported machine type" in fault["message"]

    assert cloud.guests() == before  # nothing half-made on the host
    cloud.osc("server", "delete", "--wait", broken, failing, json=False, timeout=120)
    cloud.osc("image", "delete", corrupt, machine, json=False)
    cloud.osc("flavor", "delete", small, json=False)


def test_guests_outlive_a_killed_agent(cloud: Cloud) -> None:
    """Runs last: it kills `kumo up` (SIGKILL) while two guests run, and starts it again."""
    name = unique("pair")
    cloud.osc("server", "create", "--image", "tiny", "--flavor", "m1.nano", "--nic", "none", "--min", "2",
              "--max", "2", "--wait", name, timeout=180)
    servers = {s["Name"]: s["ID"] for s in cloud.osc("server", "list", "--name", name)}
    pids = {uuid: cloud.pid(uuid) for uuid in servers.values()}
    assert None not in pids.values()
    proc = cloud.kumo.proc
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert {uuid: cloud.pid(uuid) for uuid in servers.values()} == pids  # the guests did not die with it
    cloud.kumo.start(timeout=120)
    assert "adopted 2" in cloud.kumo.log()
    for server in cloud.osc("server", "list", "--name", name):
        assert server["Status"] == "ACTIVE"
    assert {uuid: cloud.pid(uuid) for uuid in servers.values()} == pids  # adopted, not restarted
    assert [i["Name"] for i in cloud.osc("image", "list")].count("tiny") == 1  # nothing bootstrapped twice
    first, second = sorted(servers)
    cloud.osc("server", "stop", first)
    cloud.wait_status(first, "SHUTOFF")
    assert cloud.pid(servers[first]) is None and cloud.pid(servers[second]) == pids[servers[second]]
    cloud.osc("server", "delete", "--wait", first, second, json=False, timeout=120)
    assert all(cloud.pid(uuid) is None for uuid in servers.values())
    assert cloud.guests() == []
