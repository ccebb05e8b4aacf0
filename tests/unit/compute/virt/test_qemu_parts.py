"""The QEMU driver's pure parts: command line, guest definition, accelerator choice, host facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo.compute.virt.base import InstanceSpec, NicSpec
from kumo.compute.virt.qemu.accel import choose_accel, cpu_virt_flag
from kumo.compute.virt.qemu.cmdline import CommandLineError, LaunchOptions, qemu_argv
from kumo.compute.virt.qemu.guest import GuestDefinition, GuestPaths
from kumo.compute.virt.qemu.host import cpu_info, host_memory_mb

UUID = "0b0e6c55-7c6e-4c43-9d0e-8a1b7c4f0001"


def spec(**overrides: object) -> InstanceSpec:
    values: dict[str, object] = {"uuid": UUID, "name": "vm", "hostname": "vm", "vcpus": 2, "memory_mb": 256,
                                 "root_gb": 1}
    values.update(overrides)
    return InstanceSpec(**values)  # type: ignore[arg-type]


def definition(**overrides: object) -> GuestDefinition:
    direct = bool(overrides.pop("direct_kernel", False))
    cdrom = bool(overrides.pop("boot_cdrom", False))
    return GuestDefinition(spec=spec(**overrides), image_id="img", disk_format="raw", base="/cache/img",
                           direct_kernel=direct, boot_cdrom=cdrom)


PATHS = GuestPaths.of(Path("/var/lib/kumo/instances"), Path("/run/kumo"), UUID)


def pairs(argv: list[str]) -> list[tuple[str, str]]:
    return [(argv[i], argv[i + 1]) for i in range(1, len(argv) - 1) if argv[i].startswith("-")]


def test_command_line_of_a_plain_guest() -> None:
    argv = qemu_argv(definition(), PATHS, LaunchOptions(qemu="/usr/bin/qemu-system-x86_64", accel="tcg"))
    flags = pairs(argv)
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert ("-uuid", UUID) in flags and ("-m", "256") in flags and ("-smp", "2") in flags
    assert ("-machine", "pc") in flags and ("-accel", "tcg,tb-size=64") in flags
    assert "-nodefaults" in argv and "-cpu" not in argv  # TCG keeps QEMU's default CPU model
    assert ("-mon", "chardev=qmp,mode=control") in flags
    serial = next(v for k, v in flags if k == "-chardev" and v.startswith("socket,id=serial0"))
    assert f"path={PATHS.serial}" in serial and f"logfile={PATHS.console_log}" in serial
    assert ("-vnc", f"unix:{PATHS.vnc}") in flags  # never a TCP port
    assert ("-device", "virtio-blk-pci,drive=disk0,bootindex=0") in flags
    assert not any(k in ("-kernel", "-incoming", "-netdev") for k, _ in flags)


def test_kvm_uses_the_host_cpu_and_vnc_can_be_off() -> None:
    argv = qemu_argv(definition(), PATHS, LaunchOptions(accel="kvm", vnc=False))
    assert ("-cpu", "host") in pairs(argv) and ("-accel", "kvm") in pairs(argv)
    assert "-vnc" not in argv and "-vga" not in argv


def test_direct_kernel_boot_and_extra_disks() -> None:
    d = definition(direct_kernel=True, ephemeral_gb=1, swap_mb=512, config_drive=True,
                   image_properties={"os_command_line": "console=ttyS0 quiet"})
    argv = qemu_argv(d, PATHS, LaunchOptions())
    flags = pairs(argv)
    assert ("-kernel", str(PATHS.kernel)) in flags and ("-append", "console=ttyS0 quiet") in flags
    drives = [v for k, v in flags if k == "-drive"]
    assert [d.split(",")[0] for d in drives] == [f"file={p}" for p in (PATHS.disk, PATHS.ephemeral, PATHS.swap,
                                                                       PATHS.config_drive)]
    assert drives[-1].endswith(",readonly=on") and "format=raw" in drives[-1]
    assert not any("bootindex" in v for k, v in flags if k == "-device")  # the kernel boots itself


def test_default_kernel_command_line_is_novas() -> None:
    assert ("-append", "root=/dev/vda console=tty0 console=ttyS0") in pairs(
        qemu_argv(definition(direct_kernel=True), PATHS, LaunchOptions()))


def test_nics_are_taps_without_option_roms() -> None:
    nics = (NicSpec("p1", "fa:16:3e:00:00:01", "tap-p1", 1450), NicSpec("p2", "fa:16:3e:00:00:02", "tap-p2"))
    flags = pairs(qemu_argv(definition(nics=nics), PATHS, LaunchOptions()))
    assert ("-netdev", "tap,id=net0,ifname=tap-p1,script=no,downscript=no") in flags
    assert ("-device", "virtio-net-pci,netdev=net0,mac=fa:16:3e:00:00:01,romfile=,host_mtu=1450") in flags
    assert ("-device", "virtio-net-pci,netdev=net1,mac=fa:16:3e:00:00:02,romfile=") in flags


@pytest.mark.parametrize(("props", "nics", "message"), [
    ({"hw_disk_bus": "floppy"}, (), "hw_disk_bus 'floppy'"),
    ({"hw_vif_model": "ne2k"}, (NicSpec("p", "fa:16:3e:00:00:01", "tap-p"),), "hw_vif_model 'ne2k'"),
    ({}, (NicSpec("p9", "fa:16:3e:00:00:01"),), "port p9 has no tap device"),
])
def test_what_cannot_be_expressed_is_refused(props: dict[str, str], nics: tuple[NicSpec, ...], message: str) -> None:
    with pytest.raises(CommandLineError, match=message):
        qemu_argv(definition(image_properties=props, nics=nics), PATHS, LaunchOptions())


def test_image_properties_choose_machine_bus_and_nic_model() -> None:
    props = {"hw_machine_type": "q35", "hw_disk_bus": "sata", "hw_vif_model": "e1000"}
    flags = pairs(qemu_argv(definition(image_properties=props, nics=(NicSpec("p", "fa:16:3e:00:00:01", "t"),)),
                            PATHS, LaunchOptions()))
    assert ("-machine", "q35") in flags and ("-device", "ahci,id=ahci0") in flags
    assert ("-accel", "tcg,tb-size=64") in flags  # a quarter of the 256 MB guest
    assert ("-device", "ide-hd,drive=disk0,bus=ahci0.0,bootindex=0") in flags
    assert ("-device", "e1000,netdev=net0,mac=fa:16:3e:00:00:01,romfile=") in flags


def test_an_iso_boots_from_a_cdrom_before_the_blank_root_disk() -> None:
    flags = pairs(qemu_argv(definition(boot_cdrom=True), PATHS, LaunchOptions()))
    assert ("-device", "ide-cd,drive=cdrom0,bootindex=0") in flags
    assert ("-device", "virtio-blk-pci,drive=disk0,bootindex=1") in flags


def test_resume_starts_paused_waiting_for_memory() -> None:
    argv = qemu_argv(definition(), PATHS, LaunchOptions(incoming=True))
    assert argv[-3:] == ["-S", "-incoming", "defer"]


def test_definition_round_trips_without_the_config_drive_files() -> None:
    d = definition(user_data=b"#!/bin/sh\n\x00binary", config_drive=True,
                   config_drive_files={"openstack/latest/meta_data.json": b"{}"},
                   nics=(NicSpec("p", "fa:16:3e:00:00:01", "tap-p", 1500),), metadata={"a": "b"})
    back = GuestDefinition.from_json(d.to_json())
    assert back.spec.user_data == d.spec.user_data and back.spec.nics == d.spec.nics
    assert back.spec.config_drive and not back.spec.config_drive_files
    assert (back.image_id, back.disk_format, back.base) == ("img", "raw", "/cache/img")


def test_paths_keep_sockets_short() -> None:
    assert len(str(PATHS.serial)) < 108 and PATHS.qmp.parent == Path("/run/kumo") / UUID
    assert PATHS.disk == Path("/var/lib/kumo/instances") / UUID / "disk"


def test_virt_flag_is_read_from_the_flags_line() -> None:
    assert cpu_virt_flag("processor\t: 0\nflags\t\t: fpu vme vmx sse\n") == "vmx"
    assert cpu_virt_flag("flags\t\t: fpu svm\n") == "svm"
    assert cpu_virt_flag("flags\t\t: fpu sse hypervisor\nmodel name\t: vmx-like\n") is None


async def test_without_the_flag_kvm_is_not_even_probed(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse hypervisor\n")
    accel = await choose_accel("/nonexistent/qemu", "auto", cpuinfo_path=cpuinfo)
    assert accel.name == "tcg" and "no vmx/svm" in accel.reason
    cpuinfo.write_text("flags\t\t: fpu vmx\n")
    accel = await choose_accel("/nonexistent/qemu", "kvm", cpuinfo_path=cpuinfo, kvm_device=tmp_path / "kvm")
    assert accel.name == "tcg" and "not accessible" in accel.reason
    assert (await choose_accel("/nonexistent/qemu", "tcg")).name == "tcg"
    with pytest.raises(ValueError):
        await choose_accel("/nonexistent/qemu", "hvf")


def test_host_facts(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24576000 kB\nMemFree:  1 kB\n")
    assert host_memory_mb(meminfo) == 24000
    info = cpu_info()
    assert {"arch", "model", "vendor", "topology", "features"} <= set(info)


def test_console_logs_stay_bounded(tmp_path: Path) -> None:
    from kumo.compute.virt.qemu.driver import CONSOLE_LOG_KEEP, CONSOLE_LOG_MAX, _trim_console

    log = tmp_path / "console.log"
    log.write_bytes(b"x" * 100)
    _trim_console(log)
    assert log.stat().st_size == 100
    log.write_bytes(b"a" * CONSOLE_LOG_MAX + b"THE-END")
    _trim_console(log)
    data = log.read_bytes()
    assert len(data) == CONSOLE_LOG_KEEP and data.endswith(b"THE-END")
    _trim_console(tmp_path / "missing.log")  # a guest that never wrote: nothing to do


@pytest.mark.parametrize(("memory_mb", "accel"), [(64, "tcg,tb-size=32"), (4096, "tcg,tb-size=512"),
                                                  (1024, "tcg,tb-size=256")])
def test_tcg_code_cache_follows_the_guest_size(memory_mb: int, accel: str) -> None:
    assert ("-accel", accel) in pairs(qemu_argv(definition(memory_mb=memory_mb), PATHS, LaunchOptions()))
