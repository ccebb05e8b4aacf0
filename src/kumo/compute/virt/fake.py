"""The fake hypervisor: the whole contract kept in dicts, for tests and for simulating many hosts.

Like Nova's ``nova/virt/fake.py`` it passes the same contract suite as the
real driver, and adds what tests need on top: delays (``spawn_seconds``,
``action_seconds``), fault injection (``fail_next_spawn``,
``fail_spawns_matching``), a host that dies (``crash``/``recover``) and
guests that change outside Kumo (``kill``, ``vanish``) for power-state sync
and reconciliation tests.

A driver is a handful of attributes and one dict of small records: no tasks,
threads or files per instance (only ``snapshot`` touches the disk), so one
process can run thousands of simulated hosts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from kumo.compute.virt.base import (
    MAX_CONSOLE_BYTES,
    BootImage,
    ConsoleEndpoint,
    HostDown,
    HostResources,
    InstanceExists,
    InstanceInfo,
    InstanceNotFound,
    InstanceSpec,
    InvalidPowerState,
    NicSpec,
    PowerState,
    SpawnError,
    UnsupportedOperation,
    VirtDriver,
    VirtError,
    plan_transition,
)

SpawnPredicate = Callable[[InstanceSpec], bool]
CONSOLE_LINES = 200  # kept per guest; older lines are dropped like a rotated log
FAKE_VERSION = 1000  # Nova's fake reports hypervisor_version 1000


@dataclass(slots=True)
class _Guest:
    spec: InstanceSpec
    image_path: Path | None
    power_state: PowerState
    console: list[str]
    consoles: dict[str, asyncio.AbstractServer] = field(default_factory=dict)

    def close_consoles(self) -> None:
        for server in self.consoles.values():
            server.close()
        self.consoles.clear()

    def log(self, line: str) -> None:
        self.console.append(f"fake: {line}")
        if len(self.console) > 2 * CONSOLE_LINES:
            del self.console[:-CONSOLE_LINES]


class FakeDriver(VirtDriver):
    """A hypervisor that only pretends. Defaults match Nova's fake: capacity no test runs out of."""

    name = "fake"
    needs_image_files = False  # spawn accepts None; a given image must exist, as a real driver's would

    def __init__(self, *, vcpus: int = 1000, memory_mb: int = 800_000, local_gb: int = 600_000,
                 spawn_seconds: float = 0.0, action_seconds: float = 0.0) -> None:
        self.host = "fake-host"
        self.vcpus = vcpus
        self.memory_mb = memory_mb
        self.local_gb = local_gb
        self.spawn_seconds = spawn_seconds
        self.action_seconds = action_seconds
        self._guests: dict[str, _Guest] = {}
        self._down = False
        self._fail_next: str | None = None
        self._fail_matching: tuple[SpawnPredicate, str] | None = None
        self._console_dir: Path | None = None
        self._fail_interface: str | None = None

    # -- test controls (not part of VirtDriver)

    def fail_next_spawn(self, reason: str = "injected failure") -> None:
        """The next ``spawn`` raises SpawnError(reason), after its usual delay."""
        self._fail_next = reason

    def fail_spawns_matching(self, predicate: SpawnPredicate | None, reason: str = "injected failure") -> None:
        """Every ``spawn`` whose spec matches fails until this is called again with None."""
        self._fail_matching = None if predicate is None else (predicate, reason)

    def crash(self, *, lose_instances: bool = False) -> None:
        """The host dies: guests become CRASHED (or vanish), every call raises HostDown until ``recover``."""
        self._down = True
        if lose_instances:
            self._guests.clear()
        for guest in self._guests.values():
            guest.power_state = PowerState.CRASHED
            guest.log("host crashed")

    def recover(self) -> None:
        """The hypervisor answers again; crashed guests stay CRASHED until powered on or rebooted."""
        self._down = False

    @property
    def is_down(self) -> bool:
        return self._down

    def kill(self, uuid: str, power_state: PowerState = PowerState.SHUTDOWN) -> None:
        """The guest stops outside Kumo (shut down from inside, or its process killed)."""
        guest = self._guest(uuid)
        guest.power_state = power_state
        guest.log(f"guest went {power_state.name} outside Kumo")

    def vanish(self, uuid: str) -> None:
        """The guest disappears outside Kumo (an operator removed it by hand)."""
        self._guests.pop(self._guest(uuid).spec.uuid).close_consoles()

    def fail_next_interface(self, reason: str = "injected failure") -> None:
        """The next ``attach_interface`` or ``detach_interface`` raises VirtError(reason) and changes nothing."""
        self._fail_interface = reason

    def spec_of(self, uuid: str) -> InstanceSpec:
        """The spec the guest was spawned (or last resized) with, for assertions."""
        return self._guest(uuid).spec

    # -- VirtDriver

    async def init_host(self, host: str) -> None:
        self._check_up()
        self.host = host

    async def spawn(self, spec: InstanceSpec, image: BootImage | None) -> None:
        self._check_up()
        if spec.uuid in self._guests:
            raise InstanceExists(spec.uuid)
        image_path = image.path if image is not None else None
        reason = self._spawn_failure(spec, image_path)
        await self._wait(self.spawn_seconds)
        self._check_up()
        if spec.uuid in self._guests:
            raise InstanceExists(spec.uuid)
        if reason is not None:
            raise SpawnError(spec.uuid, reason)
        guest = _Guest(spec, image_path, PowerState.RUNNING, [])
        guest.log(f"spawned {spec.name} as {spec.hostname} ({spec.vcpus} vCPU, {spec.memory_mb} MB, "
                  f"{spec.disk_gb} GB, {len(spec.nics)} NIC)")
        self._guests[spec.uuid] = guest

    async def destroy(self, uuid: str) -> None:
        self._check_up()
        if uuid not in self._guests:
            return
        await self._wait(self.action_seconds)
        self._check_up()
        guest = self._guests.pop(uuid, None)
        if guest is not None:
            guest.close_consoles()

    async def power_off(self, uuid: str, timeout: float = 60) -> None:
        if timeout < 0:
            raise ValueError("timeout must be >= 0")
        await self._transition(uuid, "power_off", "powered off" if timeout else "powered off (hard)")

    async def power_on(self, uuid: str) -> None:
        await self._transition(uuid, "power_on", "powered on")

    async def reboot(self, uuid: str, hard: bool) -> None:
        await self._transition(uuid, "hard_reboot" if hard else "soft_reboot",
                               "rebooted (hard)" if hard else "rebooted (soft)")

    async def pause(self, uuid: str) -> None:
        await self._transition(uuid, "pause", "paused")

    async def unpause(self, uuid: str) -> None:
        await self._transition(uuid, "unpause", "unpaused")

    async def suspend(self, uuid: str) -> None:
        await self._transition(uuid, "suspend", "suspended")

    async def resume(self, uuid: str) -> None:
        await self._transition(uuid, "resume", "resumed")

    async def snapshot(self, uuid: str, target: Path) -> None:
        plan_transition("snapshot", uuid, self._guest(uuid).power_state)
        await self._wait(self.action_seconds)
        guest = self._guest(uuid)
        try:
            await asyncio.to_thread(_write_disk_copy, guest, target)
        except OSError as exc:
            raise VirtError(f"Snapshot of instance {uuid} to {target} failed: {exc}") from exc
        guest.log(f"snapshot written to {target.name}")

    async def get_info(self, uuid: str) -> InstanceInfo:
        guest = self._guest(uuid)
        return InstanceInfo(uuid, guest.power_state, guest.spec.memory_mb, guest.spec.vcpus, cpu_time_ns=0)

    async def list_instances(self) -> list[str]:
        self._check_up()
        return list(self._guests)

    async def get_available_resource(self) -> HostResources:
        self._check_up()
        specs = [g.spec for g in self._guests.values()]
        return HostResources(
            vcpus=self.vcpus, memory_mb=self.memory_mb, local_gb=self.local_gb,
            vcpus_used=sum(s.vcpus for s in specs), memory_mb_used=sum(s.memory_mb for s in specs),
            local_gb_used=sum(s.disk_gb for s in specs),
            hypervisor_type="fake", hypervisor_version=FAKE_VERSION, hypervisor_hostname=self.host,
            cpu_info={"arch": "x86_64", "model": "fake", "vendor": "Kumo", "features": [],
                      "topology": {"sockets": 1, "cores": self.vcpus, "threads": 1}},
            running_vms=len(specs),
        )

    async def get_console_output(self, uuid: str) -> bytes:
        text = "\n".join(self._guest(uuid).console) + "\n"
        return text.encode()[-MAX_CONSOLE_BYTES:]

    async def get_console_endpoint(self, uuid: str, kind: str) -> ConsoleEndpoint:
        """A Unix socket per guest that greets like the console it stands for and echoes what it is sent.

        The greeting is an RFB version line for ``vnc`` and the console log
        for ``serial``, so console proxies can be tested without QEMU.
        """
        guest = self._guest(uuid)
        if kind not in ("vnc", "serial"):
            raise UnsupportedOperation(f"fake has no {kind} console")
        if self._console_dir is None:
            self._console_dir = Path(tempfile.mkdtemp(prefix="kumo-fake-consoles-"))
        path = self._console_dir / f"{uuid[:8]}-{kind}.sock"
        if kind not in guest.consoles:
            path.unlink(missing_ok=True)
            greeting = b"RFB 003.008\n" if kind == "vnc" else "\r\n".join(guest.console).encode() + b"\r\n"

            async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(greeting)
                while data := await reader.read(4096):
                    writer.write(data)
                    await writer.drain()
                writer.close()

            guest.consoles[kind] = await asyncio.start_unix_server(serve, path=str(path))
        return ConsoleEndpoint(kind, path)

    async def cleanup_host(self) -> None:
        for guest in self._guests.values():
            guest.close_consoles()
        if self._console_dir is not None:
            shutil.rmtree(self._console_dir, ignore_errors=True)
            self._console_dir = None

    async def image_files_in_use(self) -> set[Path]:
        return {g.image_path for g in self._guests.values() if g.image_path is not None}

    async def resize(self, uuid: str, new_spec: InstanceSpec) -> None:
        guest = self._guest(uuid)
        if new_spec.uuid != uuid:
            raise ValueError(f"resize of {uuid} given a spec for {new_spec.uuid}")
        old = guest.spec
        if new_spec.root_gb < old.root_gb or new_spec.ephemeral_gb < old.ephemeral_gb:
            raise UnsupportedOperation(f"Unable to resize disk down for instance {uuid}.")
        plan_transition("resize", uuid, guest.power_state)
        await self._wait(self.action_seconds)
        guest = self._guest(uuid)
        plan_transition("resize", uuid, guest.power_state)
        guest.spec = new_spec
        guest.log(f"resized to {new_spec.vcpus} vCPU, {new_spec.memory_mb} MB, {new_spec.disk_gb} GB")

    async def revert_resize(self, uuid: str, old_spec: InstanceSpec) -> None:
        guest = self._guest(uuid)
        if old_spec.uuid != uuid:
            raise ValueError(f"revert of {uuid} given a spec for {old_spec.uuid}")
        await self._wait(self.action_seconds)
        guest = self._guest(uuid)
        guest.spec = old_spec
        guest.log(f"resize reverted to {old_spec.vcpus} vCPU, {old_spec.memory_mb} MB, {old_spec.disk_gb} GB")

    async def attach_interface(self, uuid: str, nic: NicSpec) -> None:
        """The NIC joins the guest's spec (what a restart would boot with), live or not."""
        guest = self._interface_guest(uuid, "attach_interface")
        if any(n.port_id == nic.port_id for n in guest.spec.nics):
            raise VirtError(f"Instance {uuid} already has a NIC for port {nic.port_id}.")
        await self._wait(self.action_seconds)
        guest = self._interface_guest(uuid, "attach_interface")
        guest.spec = replace(guest.spec, nics=(*guest.spec.nics, nic))
        guest.log(f"NIC {nic.mac_address} attached (port {nic.port_id})")

    async def detach_interface(self, uuid: str, port_id: str) -> None:
        guest = self._interface_guest(uuid, "detach_interface")
        if not any(n.port_id == port_id for n in guest.spec.nics):
            return
        await self._wait(self.action_seconds)
        guest = self._interface_guest(uuid, "detach_interface")
        guest.spec = replace(guest.spec, nics=tuple(n for n in guest.spec.nics if n.port_id != port_id))
        guest.log(f"NIC of port {port_id} detached")

    def _interface_guest(self, uuid: str, action: str) -> _Guest:
        guest = self._guest(uuid)
        if guest.power_state == PowerState.SUSPENDED:
            raise InvalidPowerState(uuid, action, guest.power_state)
        if self._fail_interface is not None:
            reason, self._fail_interface = self._fail_interface, None
            raise VirtError(reason)
        return guest

    # -- helpers

    def _check_up(self) -> None:
        if self._down:
            raise HostDown(f"The fake hypervisor on {self.host} is down.")

    def _guest(self, uuid: str) -> _Guest:
        self._check_up()
        guest = self._guests.get(uuid)
        if guest is None:
            raise InstanceNotFound(uuid)
        return guest

    async def _transition(self, uuid: str, action: str, line: str) -> None:
        """Check, wait as a hypervisor would, then check again and apply (the guest may change meanwhile)."""
        if plan_transition(action, uuid, self._guest(uuid).power_state) is None:
            return
        await self._wait(self.action_seconds)
        guest = self._guest(uuid)
        target = plan_transition(action, uuid, guest.power_state)
        if target is not None:
            guest.power_state = target
            guest.log(line)

    def _spawn_failure(self, spec: InstanceSpec, image_path: Path | None) -> str | None:
        if self._fail_next is not None:
            reason, self._fail_next = self._fail_next, None
            return reason
        if self._fail_matching is not None and self._fail_matching[0](spec):
            return self._fail_matching[1]
        if image_path is not None and not image_path.is_file():
            return f"image file {image_path} is missing"
        return None

    @staticmethod
    async def _wait(seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


def _write_disk_copy(guest: _Guest, target: Path) -> None:
    """Copy the booted image (the fake's "root disk") to ``target`` atomically; raw placeholder if none."""
    partial = target.with_name(f".{target.name}.part")
    try:
        if guest.image_path is not None and guest.image_path.is_file():
            shutil.copyfile(guest.image_path, partial)
        else:
            partial.write_bytes(f"fake root disk of {guest.spec.uuid}\n".encode().ljust(512, b"\0"))
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
