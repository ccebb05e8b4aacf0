"""The compute agent of one host (Nova's ``nova-compute``): the RPC endpoint that drives a virt driver.

It consumes ``compute.<host>`` and turns each message into driver calls and
guarded instance updates: every method moves on only from the task state the
API left (``save_instance(expected_task_state=...)``, the table in
:mod:`kumo.compute.rpcapi`), so a delete that overtook a stop wins, and a
message redelivered after a crash finds nothing left to do. One
``asyncio.Lock`` per instance serialises work on it (Nova's
``@synchronized(instance.uuid)``); different instances run concurrently.

Claims: the scheduler claimed the instance's room on this host. Whoever
takes the instance off the host gives it back, in the same transaction:
a failed spawn (before rescheduling), a delete, a confirmed or reverted
resize (the size no longer held).

Restart safety (:mod:`kumo.compute.reconcile`) and periodic audits live
beside this module; :class:`kumo.compute.fleet.ComputeFleet` runs one or
many of these agents in a process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from kumo.compute import resources
from kumo.compute.consoles import CONSOLE_TYPES, issue_token
from kumo.compute.context import RequestContext
from kumo.compute.image_cache import ImageCache, ImageUnacceptable
from kumo.compute.instances import (
    add_fault,
    finish_event,
    retire,
    save_instance,
    start_event,
)
from kumo.compute.manager_interfaces import InterfaceOperations
from kumo.compute.manager_moves import MoveOperations
from kumo.compute.metadata.content import InstanceMetadata
from kumo.compute.models import Instance
from kumo.compute.network import NetworkAPI, PlugVifs
from kumo.compute.rpcapi import ConductorAPI
from kumo.compute.states import (
    HARD_REBOOT_STATES,
    SOFT_REBOOT_STATES,
    PowerState,
    TaskState,
    VmState,
)
from kumo.compute.virt.base import (
    BootImage,
    ConsoleEndpoint,
    InstanceNotFound,
    InstanceSpec,
    InvalidPowerState,
    NicSpec,
    SpawnError,
    UnsupportedOperation,
    VirtDriver,
    VirtError,
)
from kumo.compute.virt.base import (
    PowerState as DriverPowerState,
)
from kumo.core import errors
from kumo.core.bus import BusError
from kumo.core.clients import ImageClient
from kumo.core.config import ComputeOptions, ConsoleOptions
from kumo.core.db import Database, utcnow

log = logging.getLogger("kumo.compute.agent")
BUILD_EVENT = "compute__do_build_and_run_instance"


def instance_spec(row: Instance, flavor: Mapping[str, Any] | None = None,
                  image: Mapping[str, Any] | None = None) -> InstanceSpec:
    """What the driver needs to build ``row`` (with ``flavor``/``image`` overriding the row's, for resize/rebuild)."""
    flavor = flavor or row.flavor or {}
    sysmeta = row.system_metadata or {}
    props: dict[str, str] = {}
    if image is not None:
        props = {k: str(v) for k, v in (image.get("properties") or {}).items()}
    else:
        props = {k[len("image_"):]: str(v) for k, v in sysmeta.items() if k.startswith("image_")}
    user_data = None
    if row.user_data:
        with contextlib.suppress(binascii.Error, ValueError):
            user_data = base64.b64decode(row.user_data)
    return InstanceSpec(
        uuid=row.uuid, name=row.display_name or row.uuid, hostname=row.hostname or row.uuid,
        vcpus=max(1, int(flavor.get("vcpus", 1))), memory_mb=max(1, int(flavor.get("memory_mb", 1))),
        root_gb=int(flavor.get("root_gb", 0)), ephemeral_gb=int(flavor.get("ephemeral_gb", 0)),
        swap_mb=int(flavor.get("swap", 0) or 0),
        image_id=str(image.get("id")) if image and image.get("id") else row.image_ref,
        image_properties=props, kernel_id=props.get("kernel_id") or None, ramdisk_id=props.get("ramdisk_id") or None,
        user_data=user_data, metadata=dict(row.metadata_ or {}), key_data=row.key_data, key_name=row.key_name,
        config_drive=bool(row.config_drive), nics=nics_of(row.network_info))


def nics_of(network_info: list[dict[str, Any]] | None) -> tuple[NicSpec, ...]:
    """The instance's NICs from its ports (their taps already exist on this host: the network agent keeps
    every port bound here plugged), so a rebuild or resize keeps the guest's network."""
    return tuple(NicSpec(port_id=v["id"], mac_address=v["address"], tap_name=v.get("devname"),
                         mtu=v["network"].get("mtu")) for v in network_info or ())


def _power(state: int) -> int:
    return int(PowerState(int(state)))


class ComputeManager(MoveOperations, InterfaceOperations):
    """The agent of ``host``. RPC methods are listed in :data:`RPC_METHODS`; nothing else is callable over the bus."""

    def __init__(self, *, db: Database, host: str, driver: VirtDriver, options: ComputeOptions,
                 conductor: ConductorAPI, images: ImageClient | None = None,
                 image_cache: ImageCache | None = None, console: ConsoleOptions | None = None,
                 network: NetworkAPI | None = None, plug_vifs: PlugVifs | None = None) -> None:
        self.db = db
        self.network = network
        self.plug_vifs = plug_vifs
        self.console = console or ConsoleOptions()
        self.host = host
        self.driver = driver
        self.options = options
        self.conductor = conductor
        self.images = images
        self.image_cache = image_cache
        self._locks: dict[str, asyncio.Lock] = {}
        self._event_tasks: set[asyncio.Task[None]] = set()
        driver.set_lifecycle_handler(self.handle_lifecycle_event)

    @contextlib.asynccontextmanager
    async def locked(self, uuid: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(uuid, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._locks.get(uuid) is lock:
                del self._locks[uuid]

    async def _row(self, uuid: str) -> Instance | None:
        async with self.db.session() as s:
            row = await s.get(Instance, uuid)
            return None if row is None or row.deleted_at is not None else row

    # -- build

    async def build_and_run_instance(self, ctx: dict[str, Any], instance_uuid: str, request: dict[str, Any]) -> None:
        context = RequestContext.from_dict(ctx)
        async with self.locked(instance_uuid):
            async with self.db.session() as s:
                claimed = await save_instance(s, instance_uuid, expected_task_state=TaskState.SCHEDULING,
                                              expected_vm_state=VmState.BUILDING, task_state=TaskState.SPAWNING)
                await start_event(s, context, instance_uuid, BUILD_EVENT, self.host)
                row = await s.get(Instance, instance_uuid)
            if not claimed or row is None:
                log.info("instance %s is no longer waiting to build here; nothing to do", instance_uuid)
                return
            try:
                nics = await self._allocate_network(row, request.get("networks") or [])
                spec, boot = await self.prepare_guest(context, row, request.get("image"))
                await self.driver.spawn(dataclasses.replace(spec, nics=nics), boot)
            except ImageUnacceptable as exc:
                await self._abort_build(context, row, str(exc))
                return
            except SpawnError as exc:
                await self._reschedule(context, row, request, exc.reason)
                return
            except (VirtError, OSError, errors.KumoError, BusError) as exc:
                await self._reschedule(context, row, request, getattr(exc, "message", None) or str(exc))
                return
            async with self.db.session() as s:
                done = await save_instance(s, instance_uuid, expected_task_state=TaskState.SPAWNING,
                                           vm_state=VmState.ACTIVE, task_state=None,
                                           power_state=int(PowerState.RUNNING), launched_at=utcnow(), progress=100)
                await finish_event(s, context, instance_uuid, BUILD_EVENT, host=self.host)
                current = await s.get(Instance, instance_uuid)
            if not done and (current is None or current.task_state != TaskState.DELETING):
                # Swept to ERROR (or otherwise given up) while spawning: nothing may run for it.
                log.warning("instance %s stopped waiting for its spawn; removing the guest", instance_uuid)
                await self.driver.destroy(instance_uuid)

    async def _allocate_network(self, row: Instance, requested: list[dict[str, Any]]) -> tuple[NicSpec, ...]:
        """Ports made and bound to this host (kept in ``network_info``), their taps made by the host's network agent.

        Nova allocates while the image downloads; here it comes first, so a
        network that cannot give an address fails the build before any disk
        is made. Failures after this point give the ports back
        (:meth:`_deallocate`).
        """
        if self.network is None or not requested:
            return ()
        sysmeta = row.system_metadata or {}
        vifs = await self.network.allocate(row, self.host, requested, list(sysmeta.get("security_groups") or []))
        async with self.db.session() as s:
            await save_instance(s, row.uuid, network_info=vifs)
        row.network_info = vifs
        taps: dict[str, dict[str, Any]] = {}
        if self.plug_vifs is not None:
            taps = await self.plug_vifs(self.host, [v["id"] for v in vifs])
        return tuple(NicSpec(port_id=v["id"], mac_address=v["address"],
                             tap_name=taps.get(v["id"], {}).get("tap") or v["devname"],
                             mtu=taps.get(v["id"], {}).get("mtu") or v["network"].get("mtu")) for v in vifs)

    async def _deallocate(self, uuid: str, network_info: list[dict[str, Any]] | None) -> None:
        """Give the instance's ports back; a network service that is away is logged, never fatal to a delete."""
        if self.network is None:
            return
        try:
            await self.network.deallocate(uuid, network_info)
        except (errors.KumoError, OSError) as exc:
            log.warning("could not release the ports of %s: %s", uuid, exc)

    async def prepare_guest(self, context: RequestContext, row: Instance, image: Mapping[str, Any] | None
                            ) -> tuple[InstanceSpec, BootImage | None]:
        """The spec (with the config drive's files) and the boot image on local disk, fetched into the cache.

        The images are fetched with the caller's token, as Nova's compute
        manager downloads from Glance with ``context.auth_token``.
        """
        spec = instance_spec(row, image=image)
        if spec.config_drive or self.options.force_config_drive:
            files = InstanceMetadata.from_instance(
                row, default_zone=self.options.default_availability_zone).config_drive_files()
            spec = dataclasses.replace(spec, config_drive=True, config_drive_files=files)
        if not self.driver.needs_image_files or self.image_cache is None or not spec.image_id:
            return spec, None
        root = await self.image_cache.fetch(context.auth_token, spec.image_id)
        kernel = ramdisk = None
        if spec.kernel_id:
            kernel = (await self.image_cache.fetch(context.auth_token, spec.kernel_id)).path
        if spec.ramdisk_id:
            ramdisk = (await self.image_cache.fetch(context.auth_token, spec.ramdisk_id)).path
        return spec, BootImage(root.path, root.disk_format, kernel, ramdisk)

    async def _abort_build(self, context: RequestContext, row: Instance, reason: str) -> None:
        """No host can boot this (Nova's BuildAbortException): ERROR with the reason, claim freed, host cleared."""
        log.warning("build of %s aborted: %s", row.uuid, reason)
        await self._deallocate(row.uuid, row.network_info)
        async with self.db.session() as s:
            if await save_instance(s, row.uuid, expected_task_state=TaskState.SPAWNING, vm_state=VmState.ERROR,
                                   task_state=None, host=None, node=None, network_info=[]):
                await resources.release(s, self.host, row.flavor or {})
                add_fault(s, row.uuid, reason, code=500, host=self.host)
            await finish_event(s, context, row.uuid, BUILD_EVENT, error=reason, host=self.host)

    async def _reschedule(self, context: RequestContext, row: Instance, request: dict[str, Any], reason: str) -> None:
        """Give the claim back, leave the host, and let the conductor try another (Nova's RescheduledException)."""
        log.info("spawn of %s on %s failed (%s); rescheduling", row.uuid, self.host, reason)
        await self._deallocate(row.uuid, row.network_info)
        async with self.db.session() as s:
            left = await save_instance(s, row.uuid, expected_task_state=TaskState.SPAWNING,
                                       task_state=TaskState.SCHEDULING, host=None, node=None, network_info=[])
            if left:
                await resources.release(s, self.host, row.flavor or {})
            await finish_event(s, context, row.uuid, BUILD_EVENT, error=reason, host=self.host)
        if not left:
            return
        retry = request.setdefault("retry", {"num_attempts": 1, "hosts": []})
        retry["hosts"] = [*retry.get("hosts", []), self.host]
        retry["last_error"] = reason
        await self.conductor.build_instances(context, [row.uuid], request)

    # -- delete

    async def terminate_instance(self, ctx: dict[str, Any], instance_uuid: str) -> None:
        context = RequestContext.from_dict(ctx)
        async with self.locked(instance_uuid):
            async with self.db.session() as s:
                await start_event(s, context, instance_uuid, "compute_terminate_instance", self.host)
            try:
                await self.driver.destroy(instance_uuid)
            except VirtError as exc:
                await self._fail(context, instance_uuid, "compute_terminate_instance", str(exc),
                                 vm_state=VmState.ERROR)
                return
            row = await self._row(instance_uuid)
            await self._deallocate(instance_uuid, row.network_info if row is not None else None)
            await self.mark_deleted(instance_uuid, context)

    async def mark_deleted(self, instance_uuid: str, context: RequestContext | None = None) -> bool:
        """The guest is gone: retire the instance (row, claim, server group) and close the event."""
        async with self.db.session() as s:
            row = await s.get(Instance, instance_uuid)
            done = row is not None and await retire(s, row)
            if context is not None:
                await finish_event(s, context, instance_uuid, "compute_terminate_instance", host=self.host)
        return done

    # -- power actions (one shape: guarded start, driver call, guarded finish)

    async def _action(self, ctx: dict[str, Any], uuid: str, event: str, expected: Any,
                      call: Callable[[], Awaitable[None]], vm_state: str | None) -> None:
        context = RequestContext.from_dict(ctx)
        async with self.locked(uuid):
            row = await self._row(uuid)
            allowed = expected if isinstance(expected, tuple) else (expected,)
            if row is None or row.task_state not in allowed:
                log.info("instance %s: %s skipped (task_state is %s)", uuid, event,
                         None if row is None else row.task_state)
                return
            async with self.db.session() as s:
                await start_event(s, context, uuid, event, self.host)
            try:
                await call()
            except (VirtError, OSError) as exc:
                await self._fail(context, uuid, event, str(exc), expected=allowed)
                return
            power = await self._power_state(uuid)
            async with self.db.session() as s:
                values: dict[str, Any] = {"task_state": None, "power_state": power}
                if vm_state is not None:
                    values["vm_state"] = vm_state
                await save_instance(s, uuid, expected_task_state=allowed, **values)
                await finish_event(s, context, uuid, event, host=self.host)

    async def _power_state(self, uuid: str) -> int:
        try:
            return int((await self.driver.get_info(uuid)).power_state)
        except InstanceNotFound:
            return int(PowerState.NOSTATE)

    async def _fail(self, context: RequestContext, uuid: str, event: str, reason: str, *,
                    expected: Any = None, vm_state: str | None = None) -> None:
        """The action failed: no task, a fault, the event in error (Nova's ``@wrap_instance_fault``)."""
        log.warning("instance %s: %s failed: %s", uuid, event, reason)
        async with self.db.session() as s:
            values: dict[str, Any] = {"task_state": None}
            if vm_state is not None:
                values["vm_state"] = vm_state
            kwargs = {"expected_task_state": expected} if expected is not None else {}
            await save_instance(s, uuid, **kwargs, **values)
            add_fault(s, uuid, reason, code=500, host=self.host)
            await finish_event(s, context, uuid, event, error=reason, host=self.host)

    async def stop_instance(self, ctx: dict[str, Any], instance_uuid: str, clean_shutdown: bool = True) -> None:
        timeout = self.options.shutdown_timeout if clean_shutdown else 0
        await self._action(ctx, instance_uuid, "compute_stop_instance", TaskState.POWERING_OFF,
                           lambda: self.driver.power_off(instance_uuid, timeout), VmState.STOPPED)

    async def start_instance(self, ctx: dict[str, Any], instance_uuid: str) -> None:
        await self._action(ctx, instance_uuid, "compute_start_instance", TaskState.POWERING_ON,
                           lambda: self.driver.power_on(instance_uuid), VmState.ACTIVE)

    async def reboot_instance(self, ctx: dict[str, Any], instance_uuid: str, reboot_type: str = "SOFT") -> None:
        hard = reboot_type.upper() == "HARD"
        await self._action(ctx, instance_uuid, "compute_reboot_instance",
                           HARD_REBOOT_STATES if hard else SOFT_REBOOT_STATES,
                           lambda: self.driver.reboot(instance_uuid, hard), VmState.ACTIVE)

    async def pause_instance(self, ctx: dict[str, Any], instance_uuid: str) -> None:
        await self._action(ctx, instance_uuid, "compute_pause_instance", TaskState.PAUSING,
                           lambda: self.driver.pause(instance_uuid), VmState.PAUSED)

    async def unpause_instance(self, ctx: dict[str, Any], instance_uuid: str) -> None:
        await self._action(ctx, instance_uuid, "compute_unpause_instance", TaskState.UNPAUSING,
                           lambda: self.driver.unpause(instance_uuid), VmState.ACTIVE)

    async def suspend_instance(self, ctx: dict[str, Any], instance_uuid: str) -> None:
        await self._action(ctx, instance_uuid, "compute_suspend_instance", TaskState.SUSPENDING,
                           lambda: self.driver.suspend(instance_uuid), VmState.SUSPENDED)

    async def resume_instance(self, ctx: dict[str, Any], instance_uuid: str) -> None:
        await self._action(ctx, instance_uuid, "compute_resume_instance", TaskState.RESUMING,
                           lambda: self.driver.resume(instance_uuid), VmState.ACTIVE)

    # -- guests changing on their own (Nova's handle_lifecycle_event)

    def handle_lifecycle_event(self, uuid: str, state: DriverPowerState) -> None:
        """The driver saw a guest change state by itself: sync that instance now, not at the next periodic sync."""
        task = asyncio.get_running_loop().create_task(self._sync_one(uuid), name=f"lifecycle-{uuid}")
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)

    async def _sync_one(self, uuid: str) -> None:
        from kumo.compute.reconcile import sync_power_state

        try:
            async with self.locked(uuid):
                row = await self._row(uuid)
                if row is None or row.host != self.host or row.task_state is not None:
                    return  # an action is under way; it records the outcome itself
                try:
                    info = await self.driver.get_info(uuid)
                except InstanceNotFound:
                    info = None
                await sync_power_state(self, row, info)
        except Exception:  # noqa: BLE001 - the periodic sync will try again
            log.warning("syncing instance %s after a lifecycle event failed", uuid, exc_info=True)

    # -- console

    async def get_console_output(self, ctx: dict[str, Any], instance_uuid: str, tail_length: int | None = None) -> str:
        data = await self.driver.get_console_output(instance_uuid)
        text = data.decode("utf-8", errors="replace")
        if tail_length is not None:
            lines = text.splitlines()
            text = "\n".join(lines[-tail_length:] if tail_length > 0 else [])
        return text

    async def get_console(self, ctx: dict[str, Any], instance_uuid: str, console_type: str) -> dict[str, str]:
        """A token for the guest's remote console and the URL of this host's proxy that takes it.

        Nova's ``get_vnc_console``/``get_serial_console``: the agent of the
        guest's host issues the token, so the URL names the proxy that can
        reach the console.
        """
        if console_type not in CONSOLE_TYPES:
            raise errors.BadRequest(f"Unavailable console type {console_type}.")
        kind = CONSOLE_TYPES[console_type][1]
        try:
            endpoint: ConsoleEndpoint = await self.driver.get_console_endpoint(instance_uuid, kind)
        except UnsupportedOperation:
            raise errors.BadRequest(f"Unavailable console type {console_type}.") from None
        except (InstanceNotFound, InvalidPowerState):
            raise errors.Conflict(f"Instance {instance_uuid} is not ready") from None
        base = self.console.vnc_url() if kind == "vnc" else self.console.serial_url()
        url = await issue_token(self.db, instance_uuid=instance_uuid, host=self.host, console_type=console_type,
                                socket_path=str(endpoint.path), base_url=base, ttl=self.console.token_ttl)
        return {"url": url}
