"""The QEMU virt driver: one ``qemu-system-x86_64`` process per running guest, driven over QMP.

Power states are read from the host, never remembered: no process means
SHUTDOWN (or SUSPENDED when saved memory is on disk); a live process is
asked over QMP (``running``, ``paused``, ``shutdown``, ``guest-panicked``
...). So an agent restart loses nothing: guests keep running in their own
sessions, ``init_host`` finds them again from their directories and pid
files, and the agent adopts them (Nova's libvirt driver relies on libvirtd
for the same).

How each action maps onto QEMU (Nova's libvirt driver in brackets):

* stop: ACPI ``system_powerdown``, then ``quit`` after the timeout
  [``shutdown`` then ``destroy``]; start: a new process from ``guest.json``;
* soft reboot: ACPI powerdown, wait, start again; a guest that ignores it
  is hard-rebooted [``_soft_reboot`` falls back the same way]; hard reboot:
  a new process [``_hard_reboot`` re-creates the domain];
* pause/unpause: ``stop``/``cont``; suspend: ``stop``, ``migrate`` to
  ``memory.state``, ``quit``; resume: a process started with ``-incoming
  defer``, ``migrate-incoming`` from the file, ``cont`` [managed save];
* snapshot: ``stop`` (QEMU drains and flushes), ``qemu-img convert``,
  ``cont`` [cold/live snapshot]; resize: power off, grow disks, new
  definition, start, the old disks kept until confirm or revert.

A QEMU that ends on its own (the guest powered off, the process killed) is
noticed at once through a pidfd and reported with ``emit_lifecycle``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import shlex
import shutil
import signal
from dataclasses import replace
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
from kumo.compute.virt.qemu import disk, nics, process, qmp
from kumo.compute.virt.qemu.accel import Accel, choose_accel
from kumo.compute.virt.qemu.cmdline import CommandLineError, LaunchOptions, qemu_argv
from kumo.compute.virt.qemu.guest import GuestDefinition, GuestPaths
from kumo.compute.virt.qemu.host import cpu_info, host_memory_mb, qemu_version

log = logging.getLogger("kumo.compute.qemu")

GIB = disk.GIB
#: QMP run states -> Nova power states (anything not listed is NOSTATE).
RUN_STATES = {
    "running": PowerState.RUNNING, "suspended": PowerState.RUNNING, "debug": PowerState.RUNNING,
    "paused": PowerState.PAUSED, "prelaunch": PowerState.PAUSED, "inmigrate": PowerState.PAUSED,
    "postmigrate": PowerState.PAUSED, "finish-migrate": PowerState.PAUSED, "save-vm": PowerState.PAUSED,
    "restore-vm": PowerState.PAUSED, "io-error": PowerState.PAUSED,
    "shutdown": PowerState.SHUTDOWN,
    "internal-error": PowerState.CRASHED, "guest-panicked": PowerState.CRASHED, "watchdog": PowerState.CRASHED,
}
SNAPSHOT_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx")
QUIT_SECONDS = 5.0
CONSOLE_LOG_MAX = 2 << 20  # virtlogd's default max_size
CONSOLE_LOG_KEEP = 1 << 20
DETACH_SECONDS = 10.0  # how long a running guest gets to release a NIC (libvirt's detach retries take ~8 s)


class QemuDriver(VirtDriver):
    """Guests as QEMU processes on this host. Options are the ``compute.qemu_*`` settings."""

    name = "qemu"

    def __init__(self, *, instances_path: str | Path, run_dir: str | Path, accel: str = "auto",
                 qemu_binary: str = "qemu-system-x86_64", shutdown_timeout: float = 60.0,
                 start_timeout: float = 30.0, vnc: bool = True) -> None:
        self.instances_path = Path(instances_path)
        self.run_dir = Path(run_dir)
        self.wanted_accel = accel
        self.qemu_binary = qemu_binary
        self.shutdown_timeout = shutdown_timeout
        self.start_timeout = start_timeout
        self.vnc = vnc
        self.host = "localhost"
        self.qemu = ""
        self.accel = Accel("tcg", "not chosen yet")
        self.version = (0, 0, 0)
        self._watches: dict[str, process.ExitWatch] = {}
        self.detach_timeout = DETACH_SECONDS

    # -- host

    async def init_host(self, host: str) -> None:
        self.host = host
        found = shutil.which(self.qemu_binary)
        if found is None:
            raise HostDown(f"{self.qemu_binary} is not installed (Debian package qemu-system-x86); "
                           "install it or set compute.driver = \"fake\"")
        self.qemu = found
        self.version = await qemu_version(found)
        self.accel = await choose_accel(found, self.wanted_accel)
        log.info("QEMU %s on %s: accelerator %s (%s)", ".".join(map(str, self.version)), host,
                 self.accel.name.upper(), self.accel.reason)
        for path in (self.instances_path, self.run_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        await self._adopt_and_tidy()

    async def _adopt_and_tidy(self) -> None:
        """Watch the guests still running from before; remove what an interrupted spawn left."""
        adopted = 0
        for entry in sorted(self.instances_path.iterdir()):
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            paths = self._paths(entry.name)
            pid = self._live_pid(paths)
            if not paths.definition.is_file():
                log.warning("removing %s: a spawn that never finished", entry)
                if pid is not None:
                    await self._end_process(paths, pid, graceful=0)
                self._remove_files(paths)
            elif pid is not None:
                self._watch(paths.uuid, pid)
                adopted += 1
        if adopted:
            log.info("found %d running guest(s) from before; they keep running", adopted)

    async def cleanup_host(self) -> None:
        for watch in self._watches.values():
            watch.cancel()
        self._watches.clear()

    async def get_available_resource(self) -> HostResources:
        specs = [d.spec for d in self._definitions().values()]
        stat = os.statvfs(self.instances_path)
        major, minor, micro = self.version
        return HostResources(
            vcpus=os.cpu_count() or 1, memory_mb=host_memory_mb(), local_gb=stat.f_blocks * stat.f_frsize // GIB,
            vcpus_used=sum(s.vcpus for s in specs), memory_mb_used=sum(s.memory_mb for s in specs),
            local_gb_used=sum(s.disk_gb for s in specs),
            # libvirt says "QEMU" for both; Kumo names the accelerator that really runs the guests.
            hypervisor_type="KVM" if self.accel.name == "kvm" else "QEMU",
            hypervisor_version=major * 1_000_000 + minor * 1000 + micro, hypervisor_hostname=self.host,
            cpu_info={**cpu_info(), "accelerator": self.accel.name, "accelerator_reason": self.accel.reason},
            running_vms=len(specs))  # Nova counts every domain the hypervisor holds, stopped ones too

    async def image_files_in_use(self) -> set[Path]:
        return {Path(d.base) for d in self._definitions().values() if d.base}

    # -- lookups

    def _paths(self, uuid: str) -> GuestPaths:
        return GuestPaths.of(self.instances_path, self.run_dir, uuid)

    def _definitions(self) -> dict[str, GuestDefinition]:
        found: dict[str, GuestDefinition] = {}
        for entry in self.instances_path.glob("*/guest.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                found[entry.parent.name] = GuestDefinition.from_json(entry.read_text())
        return found

    def _existing(self, uuid: str) -> tuple[GuestPaths, GuestDefinition]:
        paths = self._paths(uuid)
        try:
            return paths, GuestDefinition.load(paths)
        except FileNotFoundError:
            raise InstanceNotFound(uuid) from None

    def _live_pid(self, paths: GuestPaths) -> int | None:
        try:
            pid = int(paths.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process.is_guest_process(pid, paths.uuid) else None

    async def _power_state(self, paths: GuestPaths) -> PowerState:
        pid = self._live_pid(paths)
        if pid is None:
            return PowerState.SUSPENDED if paths.memory_state.is_file() else PowerState.SHUTDOWN
        try:
            status = await qmp.command(paths.qmp, "query-status", timeout=5)
        except qmp.QmpError as exc:
            log.warning("instance %s: QEMU (pid %d) runs but its monitor does not answer: %s", paths.uuid, pid, exc)
            return PowerState.NOSTATE
        return RUN_STATES.get(str(status.get("status")), PowerState.NOSTATE)

    async def get_info(self, uuid: str) -> InstanceInfo:
        paths, definition = self._existing(uuid)
        state = await self._power_state(paths)
        return InstanceInfo(uuid, state, definition.spec.memory_mb, definition.spec.vcpus)

    async def list_instances(self) -> list[str]:
        return sorted(self._definitions())

    # -- processes

    def _watch(self, uuid: str, pid: int) -> None:
        old = self._watches.pop(uuid, None)
        if old is not None:
            old.cancel()
        self._watches[uuid] = process.ExitWatch(pid, lambda: self._exited(uuid, pid))

    def _exited(self, uuid: str, pid: int) -> None:
        """QEMU ended without the driver asking (the guest powered off, or the process was killed)."""
        self._watches.pop(uuid, None)
        paths = self._paths(uuid)
        state = PowerState.SUSPENDED if paths.memory_state.is_file() else PowerState.SHUTDOWN
        log.info("instance %s: QEMU (pid %d) ended on its own; the guest is %s", uuid, pid, state.name)
        self.emit_lifecycle(uuid, state)

    async def _launch(self, paths: GuestPaths, definition: GuestDefinition, *, incoming: bool = False) -> int:
        """Start QEMU for the guest and wait until its monitor answers; QEMU's own error if it does not start."""
        paths.run.mkdir(parents=True, exist_ok=True, mode=0o700)
        for sock in (paths.qmp, paths.serial, paths.vnc, paths.pidfile):
            sock.unlink(missing_ok=True)
        opts = LaunchOptions(qemu=self.qemu, accel=self.accel.name, vnc=self.vnc, incoming=incoming)
        argv = qemu_argv(definition, paths, opts)
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with paths.qemu_log.open("a") as fh:
            fh.write(f"=== {stamp} kumo starts: {shlex.join(argv)}\n")
            start_offset = fh.tell()
        pid = process.launch(argv, paths.qemu_log)
        paths.pidfile.write_text(f"{pid}\n")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            if process.has_ended(pid):  # our unreaped child, so the pid cannot have been recycled
                process.reap(pid)
                paths.pidfile.unlink(missing_ok=True)
                raise VirtError(f"QEMU failed to start: {self._qemu_error(paths, start_offset)}")
            if paths.qmp.exists():
                with contextlib.suppress(qmp.QmpError):
                    await qmp.command(paths.qmp, "query-status", timeout=5)
                    break
            if loop.time() > deadline:
                await self._end_process(paths, pid, graceful=0)
                raise VirtError(f"QEMU did not open its monitor within {self.start_timeout:.0f}s: "
                                f"{self._qemu_error(paths, start_offset)}")
            await asyncio.sleep(0.01)
        self._watch(paths.uuid, pid)
        return pid

    @staticmethod
    def _qemu_error(paths: GuestPaths, offset: int) -> str:
        try:
            with paths.qemu_log.open("rb") as fh:
                fh.seek(offset)
                text = fh.read(8192).decode(errors="replace")
        except OSError:
            text = ""
        lines = [re.sub(r"^\S+T\S+ ", "", ln).strip() for ln in text.splitlines() if ln.strip()]
        return " / ".join(lines[-3:]) or "it exited without a message"

    async def _end_process(self, paths: GuestPaths, pid: int, *, graceful: float) -> bool:
        """End the guest's QEMU: ACPI powerdown for up to ``graceful`` seconds, then ``quit``, then SIGKILL.

        Returns True when the guest shut itself down within ``graceful``.
        """
        watch = self._watches.pop(paths.uuid, None)
        if watch is not None:
            watch.cancel()
        clean = False
        if graceful > 0:
            with contextlib.suppress(qmp.QmpError):
                await qmp.command(paths.qmp, "system_powerdown", timeout=5)
                clean = await process.wait_gone(pid, paths.uuid, graceful)
        if not clean:
            with contextlib.suppress(qmp.QmpError):
                await qmp.command(paths.qmp, "quit", timeout=QUIT_SECONDS)
            if not await process.wait_gone(pid, paths.uuid, QUIT_SECONDS):
                process.kill(pid, signal.SIGKILL)
                if not await process.wait_gone(pid, paths.uuid, QUIT_SECONDS):
                    raise VirtError(f"QEMU (pid {pid}) of instance {paths.uuid} does not die")
        for leftover in (paths.qmp, paths.serial, paths.vnc, paths.pidfile):
            leftover.unlink(missing_ok=True)
        return clean

    async def _stop(self, paths: GuestPaths, *, graceful: float) -> bool:
        pid = self._live_pid(paths)
        if pid is None:
            return True
        return await self._end_process(paths, pid, graceful=graceful)

    # -- spawn and destroy

    async def spawn(self, spec: InstanceSpec, image: BootImage | None) -> None:
        paths = self._paths(spec.uuid)
        if paths.definition.exists():
            raise InstanceExists(spec.uuid)
        if paths.dir.exists():  # what an interrupted spawn left; nothing runs from it
            self._remove_files(paths)
        try:
            paths.dir.mkdir(parents=True, mode=0o700)
            definition = await self._create_disks(spec, image, paths)
            qemu_argv(definition, paths, LaunchOptions(qemu=self.qemu, accel=self.accel.name, vnc=self.vnc))
            definition.save(paths)
            await self._launch(paths, definition)
        except BaseException as exc:
            await self._discard(paths)
            if isinstance(exc, SpawnError | InstanceExists) or not isinstance(exc, VirtError | OSError |
                                                                              CommandLineError):
                raise
            raise SpawnError(spec.uuid, str(exc)) from exc
        log.info("instance %s spawned: QEMU %s, %d vCPU, %d MB, %d GB", spec.uuid, self.accel.name,
                 spec.vcpus, spec.memory_mb, spec.disk_gb)

    async def _create_disks(self, spec: InstanceSpec, image: BootImage | None, paths: GuestPaths) -> GuestDefinition:
        if image is None:
            raise SpawnError(spec.uuid, "booting from a volume is not supported until the volume service exists")
        if not image.path.is_file():
            raise SpawnError(spec.uuid, f"image file {image.path} is missing")
        size = await disk.check_image(image.path, image.disk_format)
        root = spec.root_gb * GIB
        iso = image.disk_format == "iso"
        if iso:
            await disk.create_blank(paths.disk, root or GIB)
        else:
            if root and size > root:
                raise SpawnError(spec.uuid, f"Flavor's disk is too small for requested image. Flavor disk is "
                                            f"{root} bytes, image is {size} bytes.")
            await disk.create_overlay(paths.disk, image.path, image.disk_format, max(root, size))
        if spec.ephemeral_gb:
            await disk.create_blank(paths.ephemeral, spec.ephemeral_gb * GIB)
        if spec.swap_mb:
            await disk.create_blank(paths.swap, spec.swap_mb << 20)
        if spec.config_drive:
            await disk.make_config_drive(paths.config_drive, spec.config_drive_files)
        if image.kernel is not None:
            disk.link_or_copy(image.kernel, paths.kernel)
            if image.ramdisk is not None:
                disk.link_or_copy(image.ramdisk, paths.ramdisk)
        return GuestDefinition(spec=spec, image_id=spec.image_id, disk_format=image.disk_format,
                               base=str(image.path), direct_kernel=image.kernel is not None, boot_cdrom=iso)

    async def _discard(self, paths: GuestPaths) -> None:
        """Remove a guest completely: its process, then every file."""
        pid = self._live_pid(paths)
        if pid is not None:
            await self._end_process(paths, pid, graceful=0)
        self._remove_files(paths)

    @staticmethod
    def _remove_files(paths: GuestPaths) -> None:
        shutil.rmtree(paths.run, ignore_errors=True)
        shutil.rmtree(paths.dir, ignore_errors=True)
        if paths.dir.exists():
            raise VirtError(f"could not remove {paths.dir}")

    async def destroy(self, uuid: str) -> None:
        paths = self._paths(uuid)
        if not paths.dir.exists() and not paths.run.exists():
            return
        await self._discard(paths)
        log.info("instance %s destroyed", uuid)

    # -- power

    async def power_off(self, uuid: str, timeout: float = 60) -> None:
        if timeout < 0:
            raise ValueError("timeout must be >= 0")
        paths, _ = self._existing(uuid)
        current = await self._power_state(paths)
        if plan_transition("power_off", uuid, current) is None:
            return
        paths.memory_state.unlink(missing_ok=True)  # stopping a suspended guest forgets its memory
        graceful = timeout if current == PowerState.RUNNING else 0
        await self._stop(paths, graceful=graceful)

    async def power_on(self, uuid: str) -> None:
        paths, definition = self._existing(uuid)
        if plan_transition("power_on", uuid, await self._power_state(paths)) is None:
            return
        await self._stop(paths, graceful=0)  # a CRASHED guest's process may still be there
        await self._launch(paths, definition)

    async def reboot(self, uuid: str, hard: bool) -> None:
        paths, definition = self._existing(uuid)
        plan_transition("hard_reboot" if hard else "soft_reboot", uuid, await self._power_state(paths))
        if not hard and not await self._stop(paths, graceful=self.shutdown_timeout):
            log.info("instance %s ignored the ACPI shutdown of a soft reboot; rebooted hard", uuid)
        await self._stop(paths, graceful=0)
        paths.memory_state.unlink(missing_ok=True)
        await self._launch(paths, definition)

    async def pause(self, uuid: str) -> None:
        await self._qmp_transition(uuid, "pause", "stop")

    async def unpause(self, uuid: str) -> None:
        await self._qmp_transition(uuid, "unpause", "cont")

    async def _qmp_transition(self, uuid: str, action: str, command: str) -> None:
        paths, _ = self._existing(uuid)
        if plan_transition(action, uuid, await self._power_state(paths)) is None:
            return
        await qmp.command(paths.qmp, command)

    async def suspend(self, uuid: str) -> None:
        """Pause, write memory and device state to ``memory.state`` (QEMU's migration stream), quit."""
        paths, _ = self._existing(uuid)
        if plan_transition("suspend", uuid, await self._power_state(paths)) is None:
            return
        partial = paths.dir / ".memory.state.part"
        async with qmp.session(paths.qmp) as client:
            await qmp.execute(client, "stop")
            try:
                await qmp.execute(client, "migrate-set-parameters", {"max-bandwidth": 1 << 40})
                await qmp.execute(client, "migrate", {"uri": f"exec:cat > {shlex.quote(str(partial))}"})
                await self._wait_migration(client, uuid)
            except VirtError:
                partial.unlink(missing_ok=True)
                with contextlib.suppress(qmp.QmpError):
                    await qmp.execute(client, "cont")
                raise
        os.replace(partial, paths.memory_state)
        await self._stop(paths, graceful=0)

    @staticmethod
    async def _wait_migration(client: object, uuid: str) -> None:
        while True:
            info = await qmp.execute(client, "query-migrate")  # type: ignore[arg-type]
            status = info.get("status")
            if status == "completed":
                return
            if status in ("failed", "cancelled"):
                raise VirtError(f"saving the memory of instance {uuid} failed: {info.get('error-desc', status)}")
            await asyncio.sleep(0.05)

    async def resume(self, uuid: str) -> None:
        """Start a paused QEMU that reads ``memory.state``, then let it run; the file goes once it is in."""
        paths, definition = self._existing(uuid)
        if plan_transition("resume", uuid, await self._power_state(paths)) is None:
            return
        pid = await self._launch(paths, definition, incoming=True)
        try:
            async with qmp.session(paths.qmp) as client:
                await qmp.execute(client, "migrate-incoming",
                                  {"uri": f"exec:cat {shlex.quote(str(paths.memory_state))}"})
                while (await qmp.execute(client, "query-status"))["status"] == "inmigrate":
                    await asyncio.sleep(0.05)
                await qmp.execute(client, "cont")
        except VirtError as exc:
            await self._end_process(paths, pid, graceful=0)
            raise VirtError(f"resuming instance {uuid} failed (its saved memory is kept): {exc}") from exc
        paths.memory_state.unlink(missing_ok=True)

    # -- disks

    async def snapshot(self, uuid: str, target: Path) -> None:
        paths, definition = self._existing(uuid)
        state = await self._power_state(paths)
        plan_transition("snapshot", uuid, state)
        out_format = definition.disk_format if definition.disk_format in SNAPSHOT_FORMATS else "raw"
        paused_here = state == PowerState.RUNNING
        if paused_here:  # QEMU drains and flushes every disk when the vCPUs stop
            await qmp.command(paths.qmp, "stop")
        try:
            await disk.convert(paths.disk, target, out_format)
        finally:
            if paused_here:
                with contextlib.suppress(qmp.QmpError):
                    await qmp.command(paths.qmp, "cont")

    async def resize(self, uuid: str, new_spec: InstanceSpec) -> None:
        if new_spec.uuid != uuid:
            raise ValueError(f"resize of {uuid} given a spec for {new_spec.uuid}")
        paths, definition = self._existing(uuid)
        old = definition.spec
        if new_spec.root_gb < old.root_gb or new_spec.ephemeral_gb < old.ephemeral_gb:
            raise UnsupportedOperation(f"Unable to resize disk down for instance {uuid}.")
        state = await self._power_state(paths)
        plan_transition("resize", uuid, state)
        was_running = state == PowerState.RUNNING
        await self._stop(paths, graceful=self.shutdown_timeout if was_running else 0)
        backup = paths.resize_backup
        shutil.rmtree(backup, ignore_errors=True)
        backup.mkdir(mode=0o700)
        for path in (paths.disk, paths.ephemeral, paths.swap, paths.definition):
            if path.exists():
                shutil.copy2(path, backup / path.name)
        try:
            if new_spec.root_gb > old.root_gb:
                await disk.grow(paths.disk, max(new_spec.root_gb * GIB, await disk.virtual_size(paths.disk)))
            await self._resize_extra(paths.ephemeral, new_spec.ephemeral_gb * GIB)
            paths.swap.unlink(missing_ok=True)
            if new_spec.swap_mb:
                await disk.create_blank(paths.swap, new_spec.swap_mb << 20)
            resized = GuestDefinition(spec=_keep_drive(new_spec, old), image_id=definition.image_id,
                                      disk_format=definition.disk_format, base=definition.base,
                                      direct_kernel=definition.direct_kernel, boot_cdrom=definition.boot_cdrom)
            resized.save(paths)
            if was_running:
                await self._launch(paths, resized)
        except (VirtError, OSError) as exc:
            await self._restore_backup(paths, was_running)
            raise VirtError(f"resize of instance {uuid} failed, the old size is kept: {exc}") from exc

    @staticmethod
    async def _resize_extra(path: Path, size: int) -> None:
        if size and path.exists():
            await disk.grow(path, size)
        elif size:
            await disk.create_blank(path, size)

    async def _restore_backup(self, paths: GuestPaths, start: bool) -> None:
        await self._stop(paths, graceful=0)
        backup = paths.resize_backup
        for name in ("disk", "disk.eph0", "disk.swap", "guest.json"):
            if (backup / name).exists():
                os.replace(backup / name, paths.dir / name)
            elif name != "guest.json":
                (paths.dir / name).unlink(missing_ok=True)
        shutil.rmtree(backup, ignore_errors=True)
        if start:
            await self._launch(paths, GuestDefinition.load(paths))

    async def confirm_resize(self, uuid: str) -> None:
        paths, _ = self._existing(uuid)
        shutil.rmtree(paths.resize_backup, ignore_errors=True)

    async def revert_resize(self, uuid: str, old_spec: InstanceSpec) -> None:
        paths, definition = self._existing(uuid)
        state = await self._power_state(paths)
        running = state in (PowerState.RUNNING, PowerState.PAUSED)
        if paths.resize_backup.is_dir():
            await self._restore_backup(paths, running)
            return
        # Nothing kept (the resize changed no disk): the old flavor on the same disks.
        await self._stop(paths, graceful=0)
        reverted = GuestDefinition(spec=_keep_drive(old_spec, definition.spec), image_id=definition.image_id,
                                   disk_format=definition.disk_format, base=definition.base,
                                   direct_kernel=definition.direct_kernel, boot_cdrom=definition.boot_cdrom)
        reverted.save(paths)
        if running:
            await self._launch(paths, reverted)

    # -- interfaces (QMP hot-plug: :mod:`kumo.compute.virt.qemu.nics`)

    async def attach_interface(self, uuid: str, nic: NicSpec) -> None:
        """The definition first (so a restart keeps the NIC), then the live plug; a refused plug restores it."""
        paths, definition = self._existing(uuid)
        spec = definition.spec
        if any(n.port_id == nic.port_id for n in spec.nics):
            raise VirtError(f"Instance {uuid} already has a NIC for port {nic.port_id}.")
        state = await self._power_state(paths)
        if state == PowerState.SUSPENDED:
            raise InvalidPowerState(uuid, "attach_interface", state)
        try:
            model = nics.nic_model(spec.image_properties)
        except CommandLineError as exc:
            raise VirtError(str(exc)) from exc
        if not nic.tap_name:
            raise VirtError(f"port {nic.port_id} has no tap device to attach")
        replace(definition, spec=replace(spec, nics=(*spec.nics, nic))).save(paths)
        if self._live_pid(paths) is None:
            return
        try:
            await nics.plug(paths.qmp, nic, model)
        except BaseException:
            definition.save(paths)
            raise
        log.info("instance %s: NIC %s hot-plugged (port %s)", uuid, nic.mac_address, nic.port_id)

    async def detach_interface(self, uuid: str, port_id: str) -> None:
        """The live unplug first (the guest may refuse), then the definition."""
        paths, definition = self._existing(uuid)
        spec = definition.spec
        nic = next((n for n in spec.nics if n.port_id == port_id), None)
        if nic is None:
            return
        state = await self._power_state(paths)
        if state == PowerState.SUSPENDED:
            raise InvalidPowerState(uuid, "detach_interface", state)
        if self._live_pid(paths) is not None:
            await nics.unplug(paths.qmp, nic, self.detach_timeout)
        replace(definition, spec=replace(spec, nics=tuple(n for n in spec.nics if n.port_id != port_id))).save(paths)
        log.info("instance %s: NIC %s detached (port %s)", uuid, nic.mac_address, port_id)

    async def guest_macs(self, uuid: str) -> list[str]:
        """MAC addresses of the NICs the guest has now: QEMU's own devices when it runs, else its definition."""
        paths, definition = self._existing(uuid)
        if self._live_pid(paths) is None:
            return [n.mac_address.lower() for n in definition.spec.nics]
        return await nics.macs(paths.qmp)

    # -- consoles

    async def list_instance_infos(self) -> dict[str, InstanceInfo]:
        """``get_info`` for every guest; the periodic sync's visit also keeps console logs bounded."""
        infos = await super().list_instance_infos()
        for uuid in infos:
            _trim_console(self._paths(uuid).console_log)
        return infos

    async def get_console_output(self, uuid: str) -> bytes:
        paths, _ = self._existing(uuid)
        _trim_console(paths.console_log)
        try:
            with paths.console_log.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - MAX_CONSOLE_BYTES))
                return fh.read()
        except FileNotFoundError:
            return b""

    async def get_console_endpoint(self, uuid: str, kind: str) -> ConsoleEndpoint:
        paths, _ = self._existing(uuid)
        if kind not in ("vnc", "serial") or (kind == "vnc" and not self.vnc):
            raise UnsupportedOperation(f"the qemu driver on {self.host} has no {kind} console")
        state = await self._power_state(paths)
        sock = paths.vnc if kind == "vnc" else paths.serial
        if state not in (PowerState.RUNNING, PowerState.PAUSED) or not sock.exists():
            raise InvalidPowerState(uuid, "get_console", state)
        return ConsoleEndpoint(kind, sock)


def _keep_drive(spec: InstanceSpec, old: InstanceSpec) -> InstanceSpec:
    """``spec`` with the config drive the guest already has (it was written at spawn, never rewritten)."""
    return replace(spec, config_drive=old.config_drive, config_drive_files={})


def _trim_console(path: Path) -> None:
    """Keep a console log under ``CONSOLE_LOG_MAX`` bytes: its last ``CONSOLE_LOG_KEEP`` bytes stay.

    A guest can write to its serial port without end; libvirt bounds the
    file with virtlogd's rotation, Kumo trims in place. QEMU appends
    (``logappend=on`` opens it ``O_APPEND``), so its next write lands at the
    new end; what it writes between the read and the truncation is lost,
    which a console log can afford.
    """
    try:
        size = path.stat().st_size
        if size <= CONSOLE_LOG_MAX:
            return
        with path.open("r+b") as fh:
            fh.seek(size - CONSOLE_LOG_KEEP)
            tail = fh.read()
            fh.seek(0)
            fh.truncate()
            fh.write(tail)
    except OSError:
        return
