"""The ``qemu-system-x86_64`` command line of a guest, built from its definition (a pure function).

What Nova's libvirt driver writes as domain XML, Kumo writes as arguments:

* ``-nodefaults -no-user-config``: only the devices listed here exist;
* the monitor (QMP) and the serial port on Unix sockets in the guest's run
  directory; the serial port also logs everything to ``console.log`` (the
  ``os-getConsoleOutput`` source), whether or not a console is connected;
* VNC on a Unix socket (no TCP port, so no unauthenticated VNC on any
  network; the console proxy on the same host connects to it);
* virtio disks (``hw_disk_bus`` may ask for ``ide`` or ``sata``) and
  virtio NICs on the tap devices the network agent made (``hw_vif_model``
  may ask for ``e1000``/``rtl8139``), without option ROMs (faster boot);
* direct kernel boot when the image names ``kernel_id``/``ramdisk_id``,
  with ``os_command_line`` or Nova's default ``root=/dev/vda console=tty0
  console=ttyS0``;
* ``hw_machine_type`` (default ``pc``: PCI hotplug, which volume attach needs).
"""

from __future__ import annotations

from dataclasses import dataclass

from kumo.compute.virt.qemu.guest import GuestDefinition, GuestPaths

DEFAULT_MACHINE = "pc"
DEFAULT_COMMAND_LINE = "root=/dev/vda console=tty0 console=ttyS0"
NIC_MODELS = {"virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e", "rtl8139": "rtl8139"}
DISK_BUSES = ("virtio", "ide", "sata", "scsi")


class CommandLineError(ValueError):
    """The definition asks for something this driver cannot express (an unknown bus or NIC model)."""


@dataclass(frozen=True)
class LaunchOptions:
    """Host-wide choices that are not part of a guest's definition."""

    qemu: str = "qemu-system-x86_64"
    accel: str = "tcg"
    vnc: bool = True
    incoming: bool = False  # start paused, waiting for saved memory (resume)


def qemu_argv(definition: GuestDefinition, paths: GuestPaths, opts: LaunchOptions) -> list[str]:
    spec = definition.spec
    props = spec.image_properties
    machine = props.get("hw_machine_type") or DEFAULT_MACHINE
    argv = [opts.qemu, "-name", f"kumo-{spec.uuid},debug-threads=on", "-uuid", spec.uuid,
            "-machine", machine, "-accel", _accel(opts.accel, spec.memory_mb),
            "-m", str(spec.memory_mb), "-smp", str(spec.vcpus),
            "-nodefaults", "-no-user-config", "-rtc", "base=utc", "-msg", "timestamp=on"]
    if opts.accel == "kvm":
        argv += ["-cpu", "host"]
    argv += ["-chardev", f"socket,id=qmp,path={paths.qmp},server=on,wait=off", "-mon", "chardev=qmp,mode=control",
             "-chardev", f"socket,id=serial0,path={paths.serial},server=on,wait=off,"
                         f"logfile={paths.console_log},logappend=on",
             "-serial", "chardev:serial0"]
    if opts.vnc:
        argv += ["-vga", "std", "-display", "none", "-vnc", f"unix:{paths.vnc}"]
    else:
        argv += ["-display", "none"]
    argv += _disks(definition, paths)
    argv += _nics(definition)
    if definition.direct_kernel:
        argv += ["-kernel", str(paths.kernel)]
        if paths.ramdisk.exists():
            argv += ["-initrd", str(paths.ramdisk)]
        argv += ["-append", props.get("os_command_line") or DEFAULT_COMMAND_LINE]
    if opts.incoming:
        argv += ["-S", "-incoming", "defer"]
    return argv


def _accel(accel: str, memory_mb: int) -> str:
    """TCG's translated-code cache sized to the guest (a quarter of its RAM, 32-512 MiB).

    QEMU's default reserves up to 1 GiB per guest and a small guest still
    fills ~60 MiB of it while booting; 32 MiB boots the tiny image as fast
    and keeps ~30 MiB less resident per guest.
    """
    if accel != "tcg":
        return accel
    return f"tcg,tb-size={min(512, max(32, memory_mb // 4))}"


def _disks(definition: GuestDefinition, paths: GuestPaths) -> list[str]:
    spec = definition.spec
    bus = spec.image_properties.get("hw_disk_bus") or "virtio"
    if bus not in DISK_BUSES:
        raise CommandLineError(f"hw_disk_bus {bus!r} is not supported; choose from {', '.join(DISK_BUSES)}")
    argv: list[str] = []
    if bus == "sata":
        argv += ["-device", "ahci,id=ahci0"]
    if bus == "scsi":
        argv += ["-device", "virtio-scsi-pci,id=scsi0"]
    disks = [(paths.disk, "qcow2", False)]
    if spec.ephemeral_gb:
        disks.append((paths.ephemeral, "qcow2", False))
    if spec.swap_mb:
        disks.append((paths.swap, "qcow2", False))
    if spec.config_drive:
        disks.append((paths.config_drive, "raw", True))
    # Direct kernel boot takes boot index 0 itself (QEMU's linuxboot option ROM).
    boot_disk = None if definition.direct_kernel else 1 if definition.boot_cdrom else 0
    for index, (path, fmt, readonly) in enumerate(disks):
        node = f"disk{index}"
        argv += ["-drive", f"file={path},format={fmt},if=none,id={node},discard=unmap"
                           + (",readonly=on" if readonly else "")]
        boot = f",bootindex={boot_disk}" if index == 0 and boot_disk is not None else ""
        argv += ["-device", _disk_device(bus, node, index) + boot]
    if definition.boot_cdrom and definition.base:
        argv += ["-drive", f"file={definition.base},format=raw,if=none,id=cdrom0,media=cdrom,readonly=on",
                 "-device", "ide-cd,drive=cdrom0,bootindex=0"]
    return argv


def _disk_device(bus: str, node: str, index: int) -> str:
    if bus == "virtio":
        return f"virtio-blk-pci,drive={node}"
    if bus == "ide":
        return f"ide-hd,drive={node},bus=ide.{index // 2},unit={index % 2}"
    if bus == "sata":
        return f"ide-hd,drive={node},bus=ahci0.{index}"
    return f"scsi-hd,drive={node},bus=scsi0.0,scsi-id={index}"


def _nics(definition: GuestDefinition) -> list[str]:
    spec = definition.spec
    model = spec.image_properties.get("hw_vif_model") or "virtio"
    if model not in NIC_MODELS:
        raise CommandLineError(f"hw_vif_model {model!r} is not supported; choose from {', '.join(NIC_MODELS)}")
    argv: list[str] = []
    for index, nic in enumerate(spec.nics):
        if not nic.tap_name:
            raise CommandLineError(f"port {nic.port_id} has no tap device to attach")
        argv += ["-netdev", f"tap,id=net{index},ifname={nic.tap_name},script=no,downscript=no"]
        device = f"{NIC_MODELS[model]},netdev=net{index},mac={nic.mac_address},romfile="
        if nic.mtu and model == "virtio":
            device += f",host_mtu={nic.mtu}"
        argv += ["-device", device]
    return argv
