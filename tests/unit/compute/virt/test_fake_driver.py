"""What the fake adds on top of the contract: faults, delays, outside changes, and scale."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from uuid import uuid4

import pytest

from kumo.compute.virt import FakeDriver, create_driver
from kumo.compute.virt.base import (
    BootImage,
    HostDown,
    InstanceNotFound,
    InstanceSpec,
    PowerState,
    SpawnError,
    VirtError,
)


def spec(name: str = "vm", **overrides: int) -> InstanceSpec:
    sizes = {"vcpus": 1, "memory_mb": 64, "root_gb": 1} | overrides
    return InstanceSpec(uuid=str(uuid4()), name=name, hostname=name, **sizes)


async def booted(driver: FakeDriver, name: str = "vm") -> str:
    s = spec(name)
    await driver.spawn(s, None)
    return s.uuid


async def test_capacity_is_configurable_and_named_by_host() -> None:
    driver = create_driver("fake", vcpus=8, memory_mb=4096, local_gb=100)
    await driver.init_host("compute-7")
    r = await driver.get_available_resource()
    assert (r.vcpus, r.memory_mb, r.local_gb, r.hypervisor_hostname, r.hypervisor_type) == \
        (8, 4096, 100, "compute-7", "fake")
    with pytest.raises(ValueError, match="unknown virt driver"):
        create_driver("xen")


async def test_crash_and_recover() -> None:
    driver = FakeDriver()
    first, second = await booted(driver), await booted(driver)
    driver.crash()
    assert driver.is_down
    for call in (driver.list_instances(), driver.get_info(first), driver.spawn(spec(), None),
                 driver.destroy(first), driver.get_available_resource(), driver.power_on(first)):
        with pytest.raises(HostDown):
            await call
    driver.recover()
    assert set(await driver.list_instances()) == {first, second}
    assert (await driver.get_info(first)).power_state == PowerState.CRASHED
    await driver.power_on(first)
    await driver.reboot(second, hard=True)
    assert {i.power_state for i in (await driver.list_instance_infos()).values()} == {PowerState.RUNNING}
    assert b"fake: host crashed" in await driver.get_console_output(first)


async def test_crash_losing_instances() -> None:
    driver = FakeDriver()
    await booted(driver)
    driver.crash(lose_instances=True)
    driver.recover()
    assert await driver.list_instances() == []
    assert (await driver.get_available_resource()).running_vms == 0


async def test_crash_during_a_slow_spawn_leaves_nothing() -> None:
    driver = FakeDriver(spawn_seconds=0.05)
    s = spec()
    spawning = asyncio.create_task(driver.spawn(s, None))
    await asyncio.sleep(0.01)
    driver.crash()
    with pytest.raises(HostDown):
        await spawning
    driver.recover()
    assert await driver.list_instances() == []


async def test_kill_and_vanish_happen_outside_kumo() -> None:
    driver = FakeDriver()
    killed, crashed, gone = await booted(driver), await booted(driver), await booted(driver)
    driver.kill(killed)
    driver.kill(crashed, PowerState.CRASHED)
    driver.vanish(gone)
    infos = await driver.list_instance_infos()
    assert {u: i.power_state for u, i in infos.items()} == {killed: PowerState.SHUTDOWN,
                                                           crashed: PowerState.CRASHED}
    with pytest.raises(InstanceNotFound):
        driver.kill(gone)
    await driver.power_on(killed)  # what the agent's power sync may do
    assert (await driver.get_info(killed)).power_state == PowerState.RUNNING


async def test_fail_next_spawn_fails_once() -> None:
    driver = FakeDriver()
    driver.fail_next_spawn("no more tap devices")
    s = spec()
    with pytest.raises(SpawnError, match="no more tap devices"):
        await driver.spawn(s, None)
    assert await driver.list_instances() == []
    await driver.spawn(s, None)
    assert await driver.list_instances() == [s.uuid]


async def test_fail_spawns_matching_until_cleared() -> None:
    driver = FakeDriver()
    driver.fail_spawns_matching(lambda s: s.memory_mb > 1024, "out of hugepages")
    with pytest.raises(SpawnError, match="out of hugepages"):
        await driver.spawn(spec(memory_mb=2048), None)
    await driver.spawn(spec(memory_mb=512), None)
    with pytest.raises(SpawnError):
        await driver.spawn(spec(memory_mb=2048), None)
    driver.fail_spawns_matching(None)
    await driver.spawn(spec(memory_mb=2048), None)
    assert len(await driver.list_instances()) == 2


async def test_delays_are_honoured_and_overlap() -> None:
    driver = FakeDriver(spawn_seconds=0.05, action_seconds=0.03)
    start = time.monotonic()
    specs = [spec() for _ in range(20)]
    await asyncio.gather(*(driver.spawn(s, None) for s in specs))
    uuids = [s.uuid for s in specs]
    spawned_in = time.monotonic() - start
    assert 0.05 <= spawned_in < 0.5  # each waits, but not one after the other
    start = time.monotonic()
    await driver.power_off(uuids[0])
    assert time.monotonic() - start >= 0.03
    start = time.monotonic()
    await driver.power_off(uuids[0])  # a no-op does not wait
    assert time.monotonic() - start < 0.03


async def test_console_records_lifecycle() -> None:
    driver = FakeDriver()
    uuid = await booted(driver, "web-1")
    await driver.reboot(uuid, hard=False)
    await driver.pause(uuid)
    await driver.unpause(uuid)
    await driver.power_off(uuid)
    lines = (await driver.get_console_output(uuid)).decode().splitlines()
    assert lines[0].startswith("fake: spawned web-1 as web-1")
    assert lines[1:] == ["fake: rebooted (soft)", "fake: paused", "fake: unpaused", "fake: powered off"]
    for _ in range(1000):
        await driver.reboot(uuid, hard=True)
    assert len((await driver.get_console_output(uuid)).decode().splitlines()) <= 400


async def test_snapshot_copies_the_booted_image(tmp_path: Path) -> None:
    driver = FakeDriver()
    image = tmp_path / "cirros.qcow2"
    image.write_bytes(b"QFI\xfb" + b"x" * 1000)
    s = spec()
    await driver.spawn(s, BootImage(image, "qcow2"))
    await driver.snapshot(s.uuid, tmp_path / "snap")
    assert (tmp_path / "snap").read_bytes() == image.read_bytes()
    from_volume = await booted(driver)
    await driver.snapshot(from_volume, tmp_path / "raw")
    assert (tmp_path / "raw").read_bytes().startswith(b"fake root disk of")
    with pytest.raises(VirtError, match="Snapshot of instance"):
        await driver.snapshot(s.uuid, tmp_path / "missing-dir" / "snap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cirros.qcow2", "raw", "snap"]


async def test_spec_validation_and_disk_rounding() -> None:
    assert spec(root_gb=10, ephemeral_gb=5, swap_mb=1).disk_gb == 16
    with pytest.raises(ValueError):
        spec(vcpus=0)
    with pytest.raises(ValueError):
        spec(root_gb=-1)


async def test_a_thousand_hosts_with_ten_guests_each_is_quick() -> None:
    start = time.monotonic()
    drivers = [FakeDriver(vcpus=64, memory_mb=262_144, local_gb=2000) for _ in range(1000)]
    await asyncio.gather(*(d.init_host(f"host-{i:04d}") for i, d in enumerate(drivers)))
    await asyncio.gather(*(d.spawn(spec(f"vm-{i}-{j}", vcpus=2, memory_mb=2048), None)
                           for i, d in enumerate(drivers) for j in range(10)))
    resources = await asyncio.gather(*(d.get_available_resource() for d in drivers))
    elapsed = time.monotonic() - start
    assert all((r.vcpus_used, r.memory_mb_used, r.running_vms) == (20, 20_480, 10) for r in resources)
    assert len({r.hypervisor_hostname for r in resources}) == 1000
    assert elapsed < 2.0, f"1,000 fake hosts x 10 guests took {elapsed:.2f}s"
