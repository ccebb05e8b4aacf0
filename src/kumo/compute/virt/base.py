"""The virt driver contract: what the compute agent may ask of a hypervisor.

Nova's ``nova/virt/driver.py`` is the model for *how* the contract is written
(each method's docstring is the rule every driver keeps, checked by one
contract suite, ``tests/unit/compute/virt/test_virt_drivers.py``), not for its
size: Nova's ``ComputeDriver`` has 111 methods; ours has the dozen the agent
drives. Only plain frozen values cross the boundary (``InstanceSpec`` in,
``InstanceInfo``/``HostResources`` out), so a driver never sees a DB row and
this package imports nothing else from ``kumo.compute``.

Rules that hold for every method:

* Methods are asyncio coroutines and never block the event loop.
* The caller serialises operations on one instance (the agent's per-uuid
  lock, as Nova's ``@utils.synchronized(instance.uuid)``); calls for
  different instances may overlap.
* An unknown uuid raises ``InstanceNotFound``, except in ``destroy``.
* An action from a power state it cannot leave raises ``InvalidPowerState``
  and changes nothing; asking for the state the instance is already in
  (``power_off`` a SHUTDOWN instance, ``pause`` a PAUSED one) is a no-op, so
  the agent can safely retry after a restart. ``TRANSITIONS`` is the table.
* A hypervisor that cannot be reached raises ``HostDown`` (Nova's
  ``HypervisorUnavailable``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import ClassVar

MAX_CONSOLE_BYTES = 100 * 1024  # libvirt's cap on console output, which Nova inherits


class PowerState(IntEnum):
    """What the hypervisor says a guest is doing: Nova's ``compute/power_state.py`` codes."""

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


# -- exceptions: drivers translate their own failures (QMP, subprocess) into these once.

class VirtError(Exception):
    """Base of every error a virt driver raises on purpose."""


class SpawnError(VirtError):
    """``spawn`` failed; everything it had made is already removed (Nova's BuildAbortException path)."""

    def __init__(self, uuid: str, reason: str) -> None:
        self.uuid = uuid
        self.reason = reason
        super().__init__(f"Failed to spawn instance {uuid}: {reason}")


class InstanceExists(VirtError):
    """``spawn`` for a uuid the hypervisor already holds; that instance is untouched (Nova's InstanceExists)."""

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        super().__init__(f"Instance {uuid} already exists on this hypervisor.")


class InstanceNotFound(VirtError):
    """The hypervisor has no instance with this uuid (Nova's InstanceNotFound from the driver)."""

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        super().__init__(f"Instance {uuid} could not be found on this hypervisor.")


class InvalidPowerState(VirtError):
    """The action is illegal from the instance's current power state (e.g. pause a SHUTDOWN guest)."""

    def __init__(self, uuid: str, action: str, state: PowerState) -> None:
        self.uuid = uuid
        self.action = action
        self.state = state
        super().__init__(f"Cannot {action.replace('_', ' ')} instance {uuid} while it is {state.name}.")


class UnsupportedOperation(VirtError, NotImplementedError):
    """This driver cannot do this at all (Nova raises NotImplementedError from the base driver)."""


class HostDown(VirtError):
    """The hypervisor cannot be reached; nothing was changed (Nova's HypervisorUnavailable)."""


# -- values crossing the boundary

@dataclass(frozen=True, slots=True)
class NicSpec:
    """One port to plug. The network agent made the tap; the driver only attaches it."""

    port_id: str
    mac_address: str
    tap_name: str | None = None
    mtu: int | None = None


@dataclass(frozen=True, slots=True)
class BootImage:
    """The image files a guest boots from, already on local disk (the agent's image cache).

    ``disk_format`` is Glance's (``raw``, ``qcow2``, ``iso`` ...); ``kernel``
    and ``ramdisk`` are set when the image names a ``kernel_id``/``ramdisk_id``
    (direct kernel boot, as Nova's libvirt driver does for AMI-style images).
    """

    path: Path
    disk_format: str = "raw"
    kernel: Path | None = None
    ramdisk: Path | None = None


@dataclass(frozen=True, slots=True)
class ConsoleEndpoint:
    """Where a guest's remote console answers on its host, for the console proxy there.

    ``kind`` is ``vnc`` (an RFB server) or ``serial`` (raw bytes of the first
    serial port); ``path`` is a Unix socket: consoles never listen on the
    network, the proxy on the same host connects to them (Nova's
    ``ConsoleVNC``/``ConsoleSerial`` with a host and port instead).
    """

    kind: str
    path: Path


#: Called as handler(uuid, power_state) when a guest changes state on its own (Nova's LifecycleEvent).
LifecycleHandler = Callable[[str, "PowerState"], None]


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """Everything the hypervisor needs to build one guest: flavor, image, identity and boot data.

    Sizes follow Nova's flavor fields (``root_gb``/``ephemeral_gb`` in GiB,
    ``swap_mb`` in MiB). ``image_properties`` are Glance's (``hw_disk_bus``,
    ``hw_vif_model``, ``os_type`` ...). ``user_data`` is already base64-decoded.
    """

    uuid: str
    name: str
    hostname: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    image_id: str | None = None
    image_properties: Mapping[str, str] = field(default_factory=dict)
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    user_data: bytes | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    key_data: str | None = None
    key_name: str | None = None
    config_drive: bool = False
    #: The config drive's files (``openstack/latest/meta_data.json`` -> bytes) when ``config_drive`` is set.
    config_drive_files: Mapping[str, bytes] = field(default_factory=dict)
    nics: tuple[NicSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.vcpus < 1 or self.memory_mb < 1:
            raise ValueError(f"instance {self.uuid} needs at least 1 vCPU and 1 MB of memory")
        if min(self.root_gb, self.ephemeral_gb, self.swap_mb) < 0:
            raise ValueError(f"instance {self.uuid} has a negative disk size")

    @property
    def disk_gb(self) -> int:
        """Local disk the guest claims: root + ephemeral + swap rounded up to GiB, as Nova's placement DISK_GB."""
        return self.root_gb + self.ephemeral_gb + math.ceil(self.swap_mb / 1024)


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One guest as the hypervisor sees it now (Nova's ``hardware.InstanceInfo``)."""

    uuid: str
    power_state: PowerState
    memory_mb: int
    vcpus: int
    cpu_time_ns: int | None = None


@dataclass(frozen=True, slots=True)
class HostResources:
    """The host's capacity and what its instances hold (Nova's ``get_available_resource`` dict, typed).

    ``*_used`` are the sums over every instance the hypervisor holds, whatever
    its power state: a stopped guest keeps its claim so ``power_on`` cannot fail
    for lack of room (Nova's resource tracker counts usage the same way).
    ``hypervisor_version`` is Nova's integer form (QEMU 8.2.1 -> 8002001).
    """

    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str
    cpu_info: Mapping[str, object]
    running_vms: int


# -- the power-state table: action -> (states it may start from, state it ends in; None = unchanged)

_ALL = frozenset(PowerState) - {PowerState.NOSTATE}
TRANSITIONS: Mapping[str, tuple[frozenset[PowerState], PowerState | None]] = {
    "power_off": (_ALL - {PowerState.SHUTDOWN}, PowerState.SHUTDOWN),
    "power_on": (frozenset({PowerState.SHUTDOWN, PowerState.CRASHED}), PowerState.RUNNING),
    "soft_reboot": (frozenset({PowerState.RUNNING}), PowerState.RUNNING),
    "hard_reboot": (_ALL, PowerState.RUNNING),
    "pause": (frozenset({PowerState.RUNNING}), PowerState.PAUSED),
    "unpause": (frozenset({PowerState.PAUSED}), PowerState.RUNNING),
    "suspend": (frozenset({PowerState.RUNNING}), PowerState.SUSPENDED),
    "resume": (frozenset({PowerState.SUSPENDED}), PowerState.RUNNING),
    "resize": (frozenset({PowerState.RUNNING, PowerState.SHUTDOWN}), None),
    "snapshot": (_ALL, None),
}


def plan_transition(action: str, uuid: str, current: PowerState) -> PowerState | None:
    """The state ``action`` leads to from ``current``; None when it is already done (a no-op).

    Raises InvalidPowerState when ``current`` is neither a legal start nor the
    action's target. Hard reboot is Nova's recovery tool, so it starts from any
    state; soft reboot needs a running guest to cooperate.
    """
    allowed, target = TRANSITIONS[action]
    if current in allowed:
        return current if target is None else target
    if current == target:
        return None
    raise InvalidPowerState(uuid, action, current)


class VirtDriver(ABC):
    """A hypervisor on one host. One instance of the driver per compute agent."""

    name: ClassVar[str] = ""
    #: Whether ``spawn`` needs the image on local disk; a driver that only pretends (fake) does not.
    needs_image_files: ClassVar[bool] = True
    _lifecycle_handler: LifecycleHandler | None = None

    def set_lifecycle_handler(self, handler: LifecycleHandler | None) -> None:
        """Register who hears about guests that change state outside Kumo (a guest powered off from inside,
        a QEMU killed). Drivers that cannot notice such changes never call it; the agent's periodic
        power-state sync catches them instead."""
        self._lifecycle_handler = handler

    def emit_lifecycle(self, uuid: str, state: PowerState) -> None:
        if self._lifecycle_handler is not None:
            self._lifecycle_handler(uuid, state)

    @abstractmethod
    async def init_host(self, host: str) -> None:
        """Prepare the hypervisor; called once by the agent before anything else.

        ``host`` is the compute host name (Nova's ``CONF.host``) and becomes
        ``hypervisor_hostname``. Guests that are already running are left alone:
        the agent reconciles them with ``list_instances`` afterwards.
        """

    async def cleanup_host(self) -> None:
        """Release connections on agent shutdown. Guests keep running, as in Nova."""

    @abstractmethod
    async def spawn(self, spec: InstanceSpec, image: BootImage | None) -> None:
        """Create the guest and boot it; on return it is RUNNING and in ``list_instances``.

        ``image`` is the image already on local disk (the agent's image
        cache), or None to boot from volume. On any failure everything spawn
        made (disks, processes, sockets, console logs) is removed before
        ``SpawnError`` is raised, so the instance is not in ``list_instances``
        and host usage is unchanged (Nova's ``spawn``: "must clean up after
        itself"). An existing uuid raises ``InstanceExists``.
        """

    @abstractmethod
    async def destroy(self, uuid: str) -> None:
        """Stop the guest hard and delete everything it had on this host.

        Succeeds when the instance is already gone (Nova's ``destroy``), so a
        delete can always be retried.
        """

    @abstractmethod
    async def power_off(self, uuid: str, timeout: float = 60) -> None:
        """Stop the guest: ACPI shutdown, then hard stop after ``timeout`` seconds (0 = hard at once).

        Ends SHUTDOWN; the guest's disks stay. From any state but SHUTDOWN
        (which is a no-op), as Nova's ``power_off(timeout, retry_interval)``.
        """

    @abstractmethod
    async def power_on(self, uuid: str) -> None:
        """Boot a SHUTDOWN or CRASHED guest from its disks; RUNNING is a no-op."""

    @abstractmethod
    async def reboot(self, uuid: str, hard: bool) -> None:
        """Restart the guest; ends RUNNING.

        Soft asks the guest (ACPI) and needs it RUNNING; hard resets it from
        any state and is how an operator recovers a stuck guest, as Nova's
        ``reboot(reboot_type='HARD')``.
        """

    @abstractmethod
    async def pause(self, uuid: str) -> None:
        """Freeze the vCPUs in memory (RUNNING -> PAUSED)."""

    @abstractmethod
    async def unpause(self, uuid: str) -> None:
        """Thaw a paused guest (PAUSED -> RUNNING)."""

    @abstractmethod
    async def suspend(self, uuid: str) -> None:
        """Save the guest's memory to disk and stop it (RUNNING -> SUSPENDED), Nova's managed save."""

    @abstractmethod
    async def resume(self, uuid: str) -> None:
        """Restore a suspended guest from its saved memory (SUSPENDED -> RUNNING)."""

    @abstractmethod
    async def snapshot(self, uuid: str, target: Path) -> None:
        """Write a consistent copy of the root disk to ``target`` (a standalone image file).

        A running guest is quiesced or briefly paused for the copy and left in
        its previous power state. The file has the disk format of the image
        the instance booted from (raw when it booted from a volume), as Nova's
        libvirt driver does by default, so the agent uploads it to Glance with
        that ``disk_format``. ``target`` appears whole or not at all: a failure
        leaves no partial file.
        """

    @abstractmethod
    async def get_info(self, uuid: str) -> InstanceInfo:
        """The guest as the hypervisor sees it now; raises ``InstanceNotFound``."""

    @abstractmethod
    async def list_instances(self) -> list[str]:
        """Uuids of every guest the hypervisor really holds, in any power state.

        The agent's truth after a restart: instances the DB places here but
        missing from this list are gone, extra ones are orphans (Nova's
        ``_destroy_evacuated_instances`` / ``_sync_power_states`` use it so).
        """

    @abstractmethod
    async def get_available_resource(self) -> HostResources:
        """The host's capacity and its instances' usage, for the resource tracker and scheduler."""

    @abstractmethod
    async def get_console_output(self, uuid: str) -> bytes:
        """The tail of the guest's serial console log (at most ``MAX_CONSOLE_BYTES``, as libvirt's)."""

    @abstractmethod
    async def resize(self, uuid: str, new_spec: InstanceSpec) -> None:
        """Apply a new flavor on this host, keeping the power state (RUNNING or SHUTDOWN).

        Disks may grow, never shrink (``UnsupportedOperation``, as Nova's
        "Unable to resize disk down"). Drivers that cannot resize raise
        ``UnsupportedOperation`` with the reason; nothing is changed either way.
        """

    async def confirm_resize(self, uuid: str) -> None:
        """Forget what the last ``resize`` kept for a revert (old disks); the new size stays.

        Drivers that keep nothing need not override this.
        """

    async def revert_resize(self, uuid: str, old_spec: InstanceSpec) -> None:
        """Undo the last ``resize``: the guest gets ``old_spec`` and the disks it had, power state kept.

        Unlike ``resize`` this may shrink: it restores what resize kept.
        Drivers that cannot revert raise ``UnsupportedOperation``.
        """
        raise UnsupportedOperation(f"{self.name} cannot revert a resize of instance {uuid}")

    async def get_console_endpoint(self, uuid: str, kind: str) -> ConsoleEndpoint:
        """Where the guest's ``kind`` console (``vnc`` or ``serial``) answers on this host.

        Drivers without remote consoles raise ``UnsupportedOperation`` (Nova's
        ConsoleTypeUnavailable); an unknown uuid raises ``InstanceNotFound``.
        """
        raise UnsupportedOperation(f"{self.name} has no {kind} console for instance {uuid}")

    async def attach_interface(self, uuid: str, nic: NicSpec) -> None:
        """Give the guest one more NIC on ``nic.tap_name`` (the network agent made the tap already).

        A guest whose hypervisor process runs (RUNNING, PAUSED, CRASHED) gets
        it hot-plugged now; a SHUTDOWN guest gets it in its definition only,
        so the next ``power_on`` boots with it. Either way the NIC stays part
        of the guest across stops, reboots and resizes, as Nova's libvirt
        driver changes the live domain and its persistent config together.
        A SUSPENDED guest raises ``InvalidPowerState`` (its saved memory
        expects the devices it had). A port the guest already has raises
        ``VirtError``. On failure the guest has no trace of the NIC, so the
        agent can give the port back (Nova's InterfaceAttachFailed). Drivers
        without hotplug raise ``UnsupportedOperation`` (Nova's
        AttachInterfaceNotSupported).
        """
        raise UnsupportedOperation(f"{self.name} cannot attach interfaces to instance {uuid}")

    async def detach_interface(self, uuid: str, port_id: str) -> None:
        """Take the NIC of ``port_id`` away from the guest, live and from its definition.

        A running guest must release a PCI device itself (the hypervisor only
        asks), so the call waits a bounded time; a guest that does not let
        go raises ``VirtError`` and keeps the NIC in its definition, and the
        agent keeps the port (Nova's InterfaceDetachFailed). A port the guest
        does not have is a no-op, so a detach interrupted half-way (or
        released late by the guest) can simply be retried. A SUSPENDED guest
        raises ``InvalidPowerState``; drivers without hotplug raise
        ``UnsupportedOperation``.
        """
        raise UnsupportedOperation(f"{self.name} cannot detach interfaces from instance {uuid}")

    async def image_files_in_use(self) -> set[Path]:
        """The agent's cached image files that some guest still needs (a disk backed by them).

        The image cache never evicts these. Drivers that keep no reference to
        the cache after ``spawn`` return nothing.
        """
        return set()

    async def list_instance_infos(self) -> dict[str, InstanceInfo]:
        """``get_info`` for every instance at once, for the agent's power-state sync.

        Instances that vanish between the listing and the lookup are skipped.
        Drivers may override this with one cheaper query.
        """
        infos: dict[str, InstanceInfo] = {}
        for uuid in await self.list_instances():
            try:
                infos[uuid] = await self.get_info(uuid)
            except InstanceNotFound:
                continue
        return infos

