"""The QEMU driver with a real guest (the tiny image): boot, config drive, clean shutdown, snapshot,
failures that leave nothing, guests dying outside Kumo, and a new agent adopting running guests.

The generic contract (every power transition) runs in tests/unit/compute/virt/test_virt_drivers.py
against a boot-sector guest; here a Linux guest shows what only a real OS can.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qemutest import need

from kumo.compute.metadata.content import InstanceMetadata
from kumo.compute.virt import create_driver
from kumo.compute.virt.base import BootImage, InstanceSpec, PowerState, SpawnError
from kumo.compute.virt.qemu import QemuDriver
from kumo.compute.virt.qemu.process import is_guest_process
from kumo.image.tiny import TinyImage

pytestmark = pytest.mark.qemu
BOOT_DEADLINE = 60.0


@pytest.fixture
async def paths(tmp_path: Path) -> AsyncIterator[tuple[Path, Path]]:
    need("qemu-system-x86_64", "qemu-img", "mkfs.vfat", "mcopy")
    run = Path(tempfile.mkdtemp(prefix="kq-"))
    yield tmp_path / "instances", run
    leftovers = [p for p in run.iterdir()]
    shutil.rmtree(run, ignore_errors=True)
    assert not leftovers, f"run directories left behind: {leftovers}"


async def new_driver(paths: tuple[Path, Path], **options: object) -> QemuDriver:
    driver = create_driver("qemu", instances_path=paths[0], run_dir=paths[1], accel="auto",
                           shutdown_timeout=30.0, **options)
    await driver.init_host("itest")
    assert isinstance(driver, QemuDriver)
    return driver


def boot_image(tiny: TinyImage, tmp_path: Path) -> BootImage:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(bytes(1 << 20))
    return BootImage(disk, "raw", tiny.kernel, tiny.ramdisk)


def tiny_spec(**overrides: object) -> InstanceSpec:
    values: dict[str, object] = {"uuid": str(uuid.uuid4()), "name": "vm", "hostname": "vm", "vcpus": 1,
                                 "memory_mb": 128, "root_gb": 1}
    values.update(overrides)
    return InstanceSpec(**values)  # type: ignore[arg-type]


async def console_until(driver: QemuDriver, uid: str, marker: str, seconds: float = BOOT_DEADLINE) -> str:
    deadline = time.monotonic() + seconds
    text = ""
    while time.monotonic() < deadline:
        text = (await driver.get_console_output(uid)).decode(errors="replace")
        if marker in text:
            return text
        await asyncio.sleep(0.2)
    pytest.fail(f"no {marker!r} on the console within {seconds:.0f}s:\n{text[-2000:]}")


def qemu_pid(driver: QemuDriver, uid: str) -> int | None:
    try:
        pid = int((driver.run_dir / uid / "qemu.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if is_guest_process(pid, uid) else None


async def test_tiny_guest_life(tiny: TinyImage, tmp_path: Path, paths: tuple[Path, Path]) -> None:
    driver = await new_driver(paths)
    uid = str(uuid.uuid4())
    meta = InstanceMetadata(uuid=uid, name="life", hostname="life.novalocal", project_id="p", key_name="k",
                            key_data="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKumoKey k",
                            user_data=b"#!/bin/sh\necho KUMO-ITEST-USERDATA\n")
    spec = tiny_spec(uuid=uid, config_drive=True, config_drive_files=meta.config_drive_files())
    started = time.monotonic()
    await driver.spawn(spec, boot_image(tiny, tmp_path))
    spawned = time.monotonic() - started
    text = await console_until(driver, uid, "KUMO-TINY-READY")
    for line in ("KUMO-TINY-METADATA config-drive", "KUMO-TINY-HOSTNAME life.novalocal", "KUMO-TINY-KEYS 1",
                 "KUMO-ITEST-USERDATA", "KUMO-TINY-USERDATA-RC 0"):
        assert line in text
    print(f"spawn returned after {spawned:.2f}s; guest ready after {time.monotonic() - started:.1f}s")

    first = qemu_pid(driver, uid)
    assert first is not None
    stopping = time.monotonic()
    await driver.power_off(uid, timeout=30)  # ACPI: the guest powers itself off
    assert time.monotonic() - stopping < 15
    assert "KUMO-TINY-POWEROFF" in (await driver.get_console_output(uid)).decode(errors="replace")
    assert (await driver.get_info(uid)).power_state == PowerState.SHUTDOWN and qemu_pid(driver, uid) is None

    snap = tmp_path / "snap.raw"
    await driver.snapshot(uid, snap)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-f", "raw", str(snap)],
                                     capture_output=True, check=True).stdout)
    assert info["virtual-size"] == 1 << 30 and not info.get("backing-filename")

    await driver.power_on(uid)
    assert qemu_pid(driver, uid) not in (None, first)
    await driver.destroy(uid)
    assert not (paths[0] / uid).exists() and not (paths[1] / uid).exists()
    await driver.cleanup_host()


async def test_qemu_failing_to_start_reports_its_own_error(tiny: TinyImage, tmp_path: Path,
                                                            paths: tuple[Path, Path]) -> None:
    driver = await new_driver(paths)
    spec = tiny_spec(image_properties={"hw_machine_type": "kumo-no-such-machine"})
    with pytest.raises(SpawnError) as caught:
        await driver.spawn(spec, boot_image(tiny, tmp_path))
    assert "QEMU failed to start: qemu-system-x86_64: unsupported machine type" in caught.value.reason
    assert await driver.list_instances() == [] and not (paths[0] / spec.uuid).exists()


async def test_images_that_lie_about_themselves_are_refused(tmp_path: Path, paths: tuple[Path, Path]) -> None:
    driver = await new_driver(paths)
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    with_backing = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(with_backing)],
                   check=True)
    truncated = tmp_path / "truncated.qcow2"
    truncated.write_bytes(base.read_bytes()[:100])
    for image, why in ((BootImage(base, "raw"), "format confusion"),
                       (BootImage(with_backing, "qcow2"), "backing file"),
                       (BootImage(truncated, "qcow2"), "not a valid qcow2 image")):
        with pytest.raises(SpawnError, match=why):
            await driver.spawn(tiny_spec(), image)
    assert await driver.list_instances() == [] and list(paths[0].iterdir()) == []


async def test_a_guest_killed_outside_kumo_is_reported(tiny: TinyImage, tmp_path: Path,
                                                       paths: tuple[Path, Path]) -> None:
    driver = await new_driver(paths)
    events: asyncio.Queue[tuple[str, PowerState]] = asyncio.Queue()
    driver.set_lifecycle_handler(lambda uid, state: events.put_nowait((uid, state)))
    spec = tiny_spec()
    await driver.spawn(spec, boot_image(tiny, tmp_path))
    pid = qemu_pid(driver, spec.uuid)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert await asyncio.wait_for(events.get(), 10) == (spec.uuid, PowerState.SHUTDOWN)
    assert (await driver.get_info(spec.uuid)).power_state == PowerState.SHUTDOWN
    await driver.destroy(spec.uuid)


async def test_a_new_agent_adopts_running_guests(tiny: TinyImage, tmp_path: Path, paths: tuple[Path, Path]) -> None:
    first = await new_driver(paths)
    specs = [tiny_spec(), tiny_spec()]
    for spec in specs:
        await first.spawn(spec, boot_image(tiny, tmp_path))
    await first.pause(specs[1].uuid)
    pids = {s.uuid: qemu_pid(first, s.uuid) for s in specs}
    await first.cleanup_host()  # the agent goes away; its guests must not
    half_made = paths[0] / str(uuid.uuid4())
    half_made.mkdir()  # what a spawn interrupted by a crash leaves: no definition
    second = await new_driver(paths)
    assert not half_made.exists()
    assert sorted(await second.list_instances()) == sorted(s.uuid for s in specs)
    assert {s.uuid: qemu_pid(second, s.uuid) for s in specs} == pids  # the same processes, not restarted
    states = {u: i.power_state for u, i in (await second.list_instance_infos()).items()}
    assert states == {specs[0].uuid: PowerState.RUNNING, specs[1].uuid: PowerState.PAUSED}
    events: list[tuple[str, PowerState]] = []
    second.set_lifecycle_handler(lambda uid, state: events.append((uid, state)))
    await second.power_off(specs[0].uuid, timeout=0)
    assert events == []  # the driver's own stop is not news
    for spec in specs:
        await second.destroy(spec.uuid)
    assert all(p is not None and not is_guest_process(p, u) for u, p in pids.items())
    assert list(paths[0].iterdir()) == []
