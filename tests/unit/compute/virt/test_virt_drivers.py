"""The virt driver contract, run against every driver in the registry (Nova's test_virt_drivers.py).

Adding a driver to ``DRIVERS`` means adding a harness factory to ``HARNESSES``
(and its markers to ``MARKS``, e.g. ``qemu``/``root``); a test below fails
until both lists agree.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest

from kumo.compute.virt import DRIVERS, create_driver
from kumo.compute.virt.base import (
    BootImage,
    HostResources,
    InstanceExists,
    InstanceNotFound,
    InstanceSpec,
    InvalidPowerState,
    NicSpec,
    PowerState,
    SpawnError,
    UnsupportedOperation,
    VirtDriver,
    VirtError,
)
from kumo.compute.virt.fake import FakeDriver
from kumo.compute.virt.qemu.driver import QemuDriver


@dataclass
class Harness:
    """A driver ready for ``spawn``, and an image file it can boot."""

    driver: VirtDriver
    image: BootImage
    scratch: list[Path] = field(default_factory=list)  # removed after the test
    taps: list[str] = field(default_factory=list)  # tap devices made for the test, deleted after it


async def fake_harness(tmp_path: Path) -> Harness:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\0" * 4096)
    return Harness(create_driver("fake"), BootImage(image))


#: A boot sector that prints a line on COM1 and halts: enough of an OS for the contract (no ACPI, so
#: a clean shutdown is ignored and falls back to a hard stop, as with any uncooperative guest).
#: cld; xor ax,ax; mov ds,ax; mov si,msg; mov dx,0x3f8; l: lodsb; test al,al; jz d; out dx,al; jmp l; d: hlt; jmp d
BOOT_SECTOR = (bytes.fromhex("fc31c08ed8be167cbaf803ac84c07403eeebf8f4ebfd") + b"KUMO-CONTRACT-BOOT\r\n\0")


def bootable_raw(path: Path) -> Path:
    sector = BOOT_SECTOR.ljust(510, b"\0") + b"\x55\xaa"
    path.write_bytes(sector.ljust(1 << 20, b"\0"))
    return path


async def qemu_harness(tmp_path: Path) -> Harness:
    """Real QEMU processes (TCG) booting :data:`BOOT_SECTOR` from a raw image."""
    if not shutil.which("qemu-system-x86_64") or not shutil.which("qemu-img"):
        pytest.skip("qemu-system-x86_64 / qemu-img not installed (scripts/install-system-deps.sh)")
    image = bootable_raw(tmp_path / "image.raw")
    run = Path(tempfile.mkdtemp(prefix="kq-"))  # short: Unix socket paths are limited to 108 bytes
    driver = create_driver("qemu", instances_path=tmp_path / "instances", run_dir=run, accel="tcg",
                           shutdown_timeout=1.0, vnc=True)
    driver.detach_timeout = 1.0  # the boot sector has no ACPI: it never releases a NIC; do not wait 10 s for that
    return Harness(driver, BootImage(image), [run])


HARNESSES: dict[str, Callable[[Path], Awaitable[Harness]]] = {"fake": fake_harness, "qemu": qemu_harness}
MARKS: dict[str, list[pytest.MarkDecorator]] = {"qemu": [pytest.mark.qemu]}


def test_every_registered_driver_has_a_harness() -> None:
    assert set(HARNESSES) == set(DRIVERS)


@pytest.fixture(params=[pytest.param(name, marks=MARKS.get(name, [])) for name in sorted(DRIVERS)])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    h = await HARNESSES[request.param](tmp_path)
    await h.driver.init_host("contract-host")
    yield h
    for leftover in await h.driver.list_instances():
        await h.driver.destroy(leftover)
    await h.driver.cleanup_host()
    for path in h.scratch:
        shutil.rmtree(path, ignore_errors=True)
    for tap in h.taps:
        await asyncio.to_thread(subprocess.run, ["ip", "link", "del", tap], check=False, capture_output=True)


def new_id() -> str:
    return str(uuid4())


def make_spec(**overrides: object) -> InstanceSpec:
    values: dict[str, object] = {
        "uuid": new_id(), "name": "vm", "hostname": "vm", "vcpus": 1, "memory_mb": 64, "root_gb": 1,
        "image_id": new_id(), "metadata": {"role": "test"}, "user_data": b"#cloud-config\n",
    }
    values.update(overrides)
    return InstanceSpec(**values)  # type: ignore[arg-type]


async def spawned(h: Harness, **overrides: object) -> str:
    spec = make_spec(**overrides)
    await h.driver.spawn(spec, h.image)
    return spec.uuid


async def prepare(h: Harness, uuid: str, setup: str | None) -> None:
    """Bring the guest to a state; stops are hard, so a guest that ignores ACPI costs no timeout."""
    if setup == "power_off":
        await h.driver.power_off(uuid, timeout=0)
    elif setup is not None:
        await getattr(h.driver, setup)(uuid)


async def state(h: Harness, uuid: str) -> PowerState:
    return (await h.driver.get_info(uuid)).power_state


async def eventually(read: Callable[[], Awaitable[bytes]], seconds: float = 15.0) -> bytes:
    """What ``read`` returns once it is not empty (or the last empty answer after ``seconds``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not (data := await read()) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    return data


def used(r: HostResources) -> tuple[int, int, int, int]:
    return r.vcpus_used, r.memory_mb_used, r.local_gb_used, r.running_vms


async def test_spawn_runs_and_lists(harness: Harness) -> None:
    uuid = await spawned(harness, vcpus=2, memory_mb=128)
    info = await harness.driver.get_info(uuid)
    assert (info.uuid, info.power_state, info.vcpus, info.memory_mb) == (uuid, PowerState.RUNNING, 2, 128)
    assert uuid in await harness.driver.list_instances()
    assert await harness.driver.list_instance_infos() == {uuid: info}


async def test_spawning_an_existing_uuid_leaves_it_alone(harness: Harness) -> None:
    uuid = await spawned(harness)
    with pytest.raises(InstanceExists):
        await harness.driver.spawn(make_spec(uuid=uuid), harness.image)
    assert await state(harness, uuid) == PowerState.RUNNING


async def test_power_off_and_on(harness: Harness) -> None:
    uuid = await spawned(harness)
    await harness.driver.power_off(uuid, timeout=0)
    assert await state(harness, uuid) == PowerState.SHUTDOWN
    await harness.driver.power_off(uuid)  # already off: a no-op, so retries are safe
    assert uuid in await harness.driver.list_instances()  # disks stay
    await harness.driver.power_on(uuid)
    assert await state(harness, uuid) == PowerState.RUNNING
    await harness.driver.power_on(uuid)
    assert await state(harness, uuid) == PowerState.RUNNING


@pytest.mark.parametrize("hard", [False, True])
async def test_reboot_keeps_running(harness: Harness, hard: bool) -> None:
    uuid = await spawned(harness)
    await harness.driver.reboot(uuid, hard=hard)
    assert await state(harness, uuid) == PowerState.RUNNING


async def test_hard_reboot_recovers_a_stopped_guest(harness: Harness) -> None:
    uuid = await spawned(harness)
    await harness.driver.power_off(uuid, timeout=0)
    with pytest.raises(InvalidPowerState):
        await harness.driver.reboot(uuid, hard=False)
    await harness.driver.reboot(uuid, hard=True)
    assert await state(harness, uuid) == PowerState.RUNNING


async def test_pause_unpause(harness: Harness) -> None:
    uuid = await spawned(harness)
    await harness.driver.pause(uuid)
    assert await state(harness, uuid) == PowerState.PAUSED
    await harness.driver.unpause(uuid)
    assert await state(harness, uuid) == PowerState.RUNNING


async def test_suspend_resume(harness: Harness) -> None:
    uuid = await spawned(harness)
    await harness.driver.suspend(uuid)
    assert await state(harness, uuid) == PowerState.SUSPENDED
    await harness.driver.resume(uuid)
    assert await state(harness, uuid) == PowerState.RUNNING


@pytest.mark.parametrize(("setup", "action"), [
    ("power_off", "pause"), ("power_off", "suspend"), ("power_off", "unpause"), ("power_off", "resume"),
    ("pause", "suspend"), ("pause", "resume"), ("pause", "power_on"),
    ("suspend", "pause"), ("suspend", "unpause"), ("suspend", "power_on"),
])
async def test_illegal_transitions_change_nothing(harness: Harness, setup: str | None, action: str) -> None:
    uuid = await spawned(harness)
    await prepare(harness, uuid, setup)
    before = await state(harness, uuid)
    with pytest.raises(InvalidPowerState) as caught:
        await getattr(harness.driver, action)(uuid)
    assert (caught.value.uuid, caught.value.action, caught.value.state) == (uuid, action, before)
    assert await state(harness, uuid) == before


@pytest.mark.parametrize(("setup", "action"), [
    (None, "power_on"), (None, "unpause"), (None, "resume"), ("power_off", "power_off"),
    ("pause", "pause"), ("suspend", "suspend"),
])
async def test_asking_for_the_current_state_is_a_no_op(harness: Harness, setup: str | None, action: str) -> None:
    uuid = await spawned(harness)
    await prepare(harness, uuid, setup)
    before = await state(harness, uuid)
    await getattr(harness.driver, action)(uuid)
    assert await state(harness, uuid) == before


async def test_destroy_is_idempotent(harness: Harness) -> None:
    uuid = await spawned(harness)
    await harness.driver.destroy(uuid)
    assert uuid not in await harness.driver.list_instances()
    await harness.driver.destroy(uuid)
    await harness.driver.destroy(new_id())
    with pytest.raises(InstanceNotFound):
        await harness.driver.get_info(uuid)


@pytest.mark.parametrize("action", ["power_off", "power_on", "pause", "unpause", "suspend", "resume",
                                    "get_console_output", "get_info"])
async def test_unknown_instance_is_not_found(harness: Harness, action: str) -> None:
    with pytest.raises(InstanceNotFound):
        await getattr(harness.driver, action)(new_id())
    with pytest.raises(InstanceNotFound):
        await harness.driver.reboot(new_id(), hard=True)


async def test_failed_spawn_leaves_nothing(harness: Harness, tmp_path: Path) -> None:
    before = await harness.driver.get_available_resource()
    spec = make_spec()
    with pytest.raises(SpawnError) as caught:
        await harness.driver.spawn(spec, BootImage(tmp_path / "no-such-image.qcow2", "qcow2"))
    assert caught.value.uuid == spec.uuid
    assert spec.uuid not in await harness.driver.list_instances()
    assert used(await harness.driver.get_available_resource()) == used(before)
    await harness.driver.spawn(spec, harness.image)  # and the uuid is free to try again
    assert await state(harness, spec.uuid) == PowerState.RUNNING


async def test_resources_account_every_instance(harness: Harness) -> None:
    before = await harness.driver.get_available_resource()
    assert before.hypervisor_hostname == "contract-host"
    assert before.vcpus > 0 and before.memory_mb > 0 and before.local_gb > 0
    first = await spawned(harness, vcpus=2, memory_mb=96, root_gb=1, ephemeral_gb=1, swap_mb=512)
    await spawned(harness, vcpus=1, memory_mb=64, root_gb=1)
    await harness.driver.power_off(first, timeout=0)  # a stopped guest keeps its claim
    after = await harness.driver.get_available_resource()
    assert used(after) == (before.vcpus_used + 3, before.memory_mb_used + 160, before.local_gb_used + 4,
                           before.running_vms + 2)
    await harness.driver.destroy(first)
    assert used(await harness.driver.get_available_resource())[3] == before.running_vms + 1


async def test_snapshot_writes_the_disk(harness: Harness, tmp_path: Path) -> None:
    uuid = await spawned(harness)
    out = tmp_path / "snaps"
    out.mkdir()
    await harness.driver.snapshot(uuid, out / "snap.img")
    assert [p.name for p in out.iterdir()] == ["snap.img"]
    assert (out / "snap.img").stat().st_size > 0
    assert await state(harness, uuid) == PowerState.RUNNING


async def test_console_output_records_the_life(harness: Harness) -> None:
    uuid = await spawned(harness)
    first = await eventually(lambda: harness.driver.get_console_output(uuid))  # a real guest takes a moment
    assert first
    await harness.driver.reboot(uuid, hard=True)
    assert len(await harness.driver.get_console_output(uuid)) >= len(first)


async def test_resize_keeps_the_power_state(harness: Harness) -> None:
    uuid = await spawned(harness, vcpus=1, memory_mb=64, root_gb=1)
    try:
        await harness.driver.power_off(uuid, timeout=0)
        await harness.driver.resize(uuid, make_spec(uuid=uuid, vcpus=2, memory_mb=128, root_gb=2))
    except UnsupportedOperation as exc:
        assert str(exc)  # a driver may refuse, but must say why
        return
    info = await harness.driver.get_info(uuid)
    assert (info.power_state, info.vcpus, info.memory_mb) == (PowerState.SHUTDOWN, 2, 128)
    with pytest.raises(UnsupportedOperation):  # disks never shrink
        await harness.driver.resize(uuid, make_spec(uuid=uuid, vcpus=2, memory_mb=128, root_gb=1))
    await harness.driver.power_on(uuid)
    await harness.driver.resize(uuid, make_spec(uuid=uuid, vcpus=4, memory_mb=256, root_gb=2))
    info = await harness.driver.get_info(uuid)
    assert (info.power_state, info.vcpus, info.memory_mb) == (PowerState.RUNNING, 4, 256)
    await harness.driver.pause(uuid)
    with pytest.raises(InvalidPowerState):
        await harness.driver.resize(uuid, make_spec(uuid=uuid, vcpus=8, memory_mb=256, root_gb=2))


# -- interfaces (os-interface): NICs hot-plugged into and out of guests

def new_nic(h: Harness) -> NicSpec:
    """A NIC on a tap of its own: a persistent tap for QEMU (root only), any name for drivers without a kernel."""
    port = new_id()
    tap = f"kt{port[:8]}"
    if isinstance(h.driver, QemuDriver):
        if os.geteuid() != 0 or not shutil.which("ip"):
            pytest.skip("tap devices need root and iproute2")
        subprocess.run(["ip", "tuntap", "add", "mode", "tap", "name", tap], check=True, capture_output=True)
        h.taps.append(tap)
    mac = "fa:16:3e:" + ":".join(port[i:i + 2] for i in (9, 11, 14))
    return NicSpec(port_id=port, mac_address=mac, tap_name=tap, mtu=1400)


async def guest_macs(h: Harness, uuid: str) -> list[str]:
    """The MACs of the guest's NICs as its hypervisor holds them (QEMU's own devices while it runs)."""
    if isinstance(h.driver, QemuDriver):
        return await h.driver.guest_macs(uuid)
    assert isinstance(h.driver, FakeDriver)
    return [n.mac_address for n in h.driver.spec_of(uuid).nics]


async def test_attach_interface_plugs_a_running_guest_and_survives_a_restart(harness: Harness) -> None:
    uuid = await spawned(harness)
    nic = new_nic(harness)
    await harness.driver.attach_interface(uuid, nic)
    assert await guest_macs(harness, uuid) == [nic.mac_address]
    assert await state(harness, uuid) == PowerState.RUNNING
    with pytest.raises(VirtError):
        await harness.driver.attach_interface(uuid, nic)
    assert await guest_macs(harness, uuid) == [nic.mac_address]
    await harness.driver.power_off(uuid, timeout=0)
    await harness.driver.power_on(uuid)
    assert await guest_macs(harness, uuid) == [nic.mac_address]


async def test_interfaces_of_a_stopped_guest_change_its_next_boot(harness: Harness) -> None:
    uuid = await spawned(harness)
    first, second = new_nic(harness), new_nic(harness)
    await harness.driver.power_off(uuid, timeout=0)
    await harness.driver.attach_interface(uuid, first)
    await harness.driver.attach_interface(uuid, second)
    assert await state(harness, uuid) == PowerState.SHUTDOWN
    await harness.driver.detach_interface(uuid, first.port_id)
    await harness.driver.detach_interface(uuid, first.port_id)  # not there any more: a no-op
    await harness.driver.power_on(uuid)
    assert await guest_macs(harness, uuid) == [second.mac_address]


async def test_detach_interface_of_a_running_guest_is_done_or_refused_whole(harness: Harness) -> None:
    """A guest must release a PCI NIC itself: either it is gone, or VirtError and the guest still has it."""
    uuid = await spawned(harness)
    nic = new_nic(harness)
    await harness.driver.attach_interface(uuid, nic)
    try:
        await harness.driver.detach_interface(uuid, nic.port_id)
    except VirtError:
        assert await guest_macs(harness, uuid) == [nic.mac_address]
        await harness.driver.power_off(uuid, timeout=0)  # a stopped guest always lets go
        await harness.driver.detach_interface(uuid, nic.port_id)
        await harness.driver.power_on(uuid)
    assert await guest_macs(harness, uuid) == []
    await harness.driver.detach_interface(uuid, new_id())  # a port the guest never had: a no-op


async def test_interfaces_refuse_a_suspended_or_unknown_guest(harness: Harness) -> None:
    uuid = await spawned(harness)
    nic = new_nic(harness)
    await harness.driver.suspend(uuid)
    with pytest.raises(InvalidPowerState):
        await harness.driver.attach_interface(uuid, nic)
    await harness.driver.resume(uuid)
    assert await guest_macs(harness, uuid) == []
    with pytest.raises(InstanceNotFound):
        await harness.driver.attach_interface(new_id(), nic)
    with pytest.raises(InstanceNotFound):
        await harness.driver.detach_interface(new_id(), nic.port_id)
