"""NICs plugged into and out of a running QEMU over QMP (what libvirt's attach-device/detach-device do).

A hot-plugged NIC is a tap backend (``netdev_add``, id ``net-<port[:11]>``)
and a PCI device on it (``device_add``, id ``nic-<port[:11]>``). NICs from
the command line carry no device id (:mod:`kumo.compute.virt.qemu.cmdline`),
so unplugging finds a NIC by its MAC address among every peripheral QEMU
holds, whichever way it got there, and takes its backend from the device.

Unplugging a PCI device needs the guest: ``device_del`` only asks (an ACPI
eject request on the ``pc`` machine) and the device goes when the guest lets
go. :func:`unplug` waits for that a bounded time and otherwise fails,
leaving the request pending; a guest that releases it later just makes the
next attempt find no device and drop the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient

from kumo.compute.virt.base import NicSpec, VirtError
from kumo.compute.virt.qemu import qmp
from kumo.compute.virt.qemu.cmdline import NIC_MODELS, CommandLineError

PERIPHERALS = ("/machine/peripheral", "/machine/peripheral-anon")
POLL_SECONDS = 0.1


def netdev_id(port_id: str) -> str:
    return f"net-{port_id[:11]}"


def device_id(port_id: str) -> str:
    return f"nic-{port_id[:11]}"


def nic_model(image_properties: dict[str, str] | Any) -> str:
    """The QEMU device of the guest's NICs: ``hw_vif_model`` as the command line reads it."""
    model = image_properties.get("hw_vif_model") or "virtio"
    if model not in NIC_MODELS:
        raise CommandLineError(f"hw_vif_model {model!r} is not supported; choose from {', '.join(NIC_MODELS)}")
    return model


async def plug(socket: Path, nic: NicSpec, model: str) -> None:
    """Add the tap backend and the NIC on it; a device QEMU refuses takes its backend with it."""
    if not nic.tap_name:
        raise VirtError(f"port {nic.port_id} has no tap device to attach")
    netdev = netdev_id(nic.port_id)
    device: dict[str, Any] = {"driver": NIC_MODELS[model], "id": device_id(nic.port_id), "netdev": netdev,
                              "mac": nic.mac_address, "romfile": ""}
    if nic.mtu and model == "virtio":
        device["host_mtu"] = int(nic.mtu)
    async with qmp.session(socket) as client:
        await qmp.execute(client, "netdev_add", {"type": "tap", "id": netdev, "ifname": nic.tap_name,
                                                 "script": "no", "downscript": "no"})
        try:
            await qmp.execute(client, "device_add", device)
        except qmp.QmpError:
            with contextlib.suppress(qmp.QmpError):
                await qmp.execute(client, "netdev_del", {"id": netdev})
            raise


async def find(client: QMPClient, mac: str) -> tuple[str, str | None] | None:
    """``(QOM path, netdev id)`` of the peripheral with this MAC address, or None."""
    wanted = mac.lower()
    for parent in PERIPHERALS:
        for child in await qmp.execute(client, "qom-list", {"path": parent}):
            if not str(child.get("type", "")).startswith("child<"):
                continue
            path = f"{parent}/{child['name']}"
            try:
                found = await qmp.execute(client, "qom-get", {"path": path, "property": "mac"})
            except qmp.QmpError:
                continue  # not a NIC
            if str(found).lower() == wanted:
                with contextlib.suppress(qmp.QmpError):
                    return path, str(await qmp.execute(client, "qom-get", {"path": path, "property": "netdev"}))
                return path, None
    return None


async def macs(socket: Path) -> list[str]:
    """The MAC addresses of every NIC the running QEMU holds (for checks and tests)."""
    found: list[str] = []
    async with qmp.session(socket) as client:
        for parent in PERIPHERALS:
            for child in await qmp.execute(client, "qom-list", {"path": parent}):
                if str(child.get("type", "")).startswith("child<"):
                    with contextlib.suppress(qmp.QmpError):
                        found.append(str(await qmp.execute(client, "qom-get", {"path": f"{parent}/{child['name']}",
                                                                              "property": "mac"})).lower())
    return found


async def unplug(socket: Path, nic: NicSpec, timeout: float) -> None:
    """Ask the guest to release the NIC, wait up to ``timeout`` seconds, then drop its backend.

    No device with the MAC (never plugged, or released late) only drops a
    backend left over under the hot-plug id. A guest that keeps the device
    raises VirtError with the backend still in place.
    """
    loop = asyncio.get_running_loop()
    async with qmp.session(socket) as client:
        found = await find(client, nic.mac_address)
        if found is None:
            with contextlib.suppress(qmp.QmpError):
                await qmp.execute(client, "netdev_del", {"id": netdev_id(nic.port_id)})
            return
        path, netdev = found
        try:
            await qmp.execute(client, "device_del", {"id": path})
        except qmp.QmpError as exc:
            if "in the process of unplug" not in str(exc):
                raise
    deadline = loop.time() + timeout
    while True:  # a session per look: the monitor stays free for power-state reads meanwhile
        async with qmp.session(socket) as client:
            if await find(client, nic.mac_address) is None:
                if netdev:
                    with contextlib.suppress(qmp.QmpError):  # QEMU may drop a backend with its last device
                        await qmp.execute(client, "netdev_del", {"id": netdev})
                return
        if loop.time() >= deadline:
            raise VirtError(f"the guest did not release the NIC of port {nic.port_id} within {timeout:.0f}s "
                            "(the unplug request stays pending)")
        await asyncio.sleep(POLL_SECONDS)
