"""Run the compute agents of this process: one real host, or many simulated ones.

``kumo serve --role compute`` runs one agent for this node's host with the
configured virt driver. With the ``fake`` driver, ``compute.fake_hosts = N``
runs N agents in the process (``<host>-fake-0001`` ...), each with its own
driver, topic and compute node, so one machine can stand in for a large
cloud. What would cost N times as much is shared: one heartbeat UPDATE for
every host, and the periodic audits (inventory, usage, power states) are
spread over their interval instead of firing together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from pathlib import Path
from typing import Any

from sqlalchemy import select

from kumo.compute import resources
from kumo.compute.image_cache import ImageCache
from kumo.compute.instances import COMPUTE_BINARY
from kumo.compute.manager import ComputeManager
from kumo.compute.models import ComputeNode
from kumo.compute.network import NetworkAPI, PlugVifs
from kumo.compute.reconcile import instances_by_host, reconcile_host, sync_power_states
from kumo.compute.rpcapi import ConductorAPI, compute_topic
from kumo.compute.virt import create_driver
from kumo.compute.virt.base import VirtDriver, VirtError
from kumo.core.bus import Bus, Consumer
from kumo.core.bus.base import Exposed
from kumo.core.clients import ImageClient
from kumo.core.config import Settings
from kumo.core.db import Database
from kumo.core.heartbeat import Heartbeat

log = logging.getLogger("kumo.compute.fleet")

#: What the bus may call on an agent; anything else (start, stop, audits) is not reachable remotely.
RPC_METHODS = frozenset({
    "build_and_run_instance", "terminate_instance", "stop_instance", "start_instance", "reboot_instance",
    "pause_instance", "unpause_instance", "suspend_instance", "resume_instance", "rebuild_instance",
    "resize_instance", "confirm_resize", "revert_resize", "snapshot_instance", "get_console_output", "get_console",
    "attach_interface", "detach_interface",
})


def make_driver(settings: Settings) -> VirtDriver:
    """The configured driver; the fake one sized and slowed as configured."""
    options = settings.compute
    if options.driver == "fake":
        return create_driver("fake", vcpus=options.fake_vcpus, memory_mb=options.fake_memory_mb,
                             local_gb=options.fake_local_gb, spawn_seconds=options.fake_spawn_seconds)
    if options.driver == "qemu":
        return create_driver("qemu", instances_path=instances_path(settings), run_dir=run_dir(settings),
                             accel=options.qemu_accel, qemu_binary=options.qemu_binary,
                             shutdown_timeout=options.shutdown_timeout, start_timeout=options.qemu_start_timeout,
                             vnc=options.vnc_enabled)
    return create_driver(options.driver)


def instances_path(settings: Settings) -> Path:
    return Path(settings.compute.instances_path) if settings.compute.instances_path else \
        settings.state_dir / "instances"


def run_dir(settings: Settings) -> Path:
    """Sockets and pid files: ``/run/kumo`` for root; a per-user directory under /tmp otherwise."""
    if settings.compute.run_dir:
        return Path(settings.compute.run_dir)
    return Path("/run/kumo") if os.geteuid() == 0 else Path(f"/tmp/kumo-run-{os.geteuid()}")


def image_cache_path(settings: Settings) -> Path:
    return Path(settings.compute.image_cache_path) if settings.compute.image_cache_path else \
        settings.state_dir / "image-cache"


def host_names(settings: Settings) -> list[str]:
    base = settings.node.host
    count = settings.compute.fake_hosts if settings.compute.driver == "fake" else 1
    if count <= 1:
        return [base]
    return [f"{base}-fake-{i:04d}" for i in range(1, count + 1)]


class ComputeFleet:
    """The agents of this process, their heartbeat and their periodic audits."""

    def __init__(self, settings: Settings, db: Database, bus: Bus, *, images: ImageClient | None,
                 drivers: dict[str, VirtDriver] | None = None, image_cache: ImageCache | None = None,
                 network: NetworkAPI | None = None, plug_vifs: dict[str, PlugVifs] | None = None) -> None:
        """``drivers`` (host -> driver) reuses hypervisors that outlive the agents, as real ones do across restarts.

        ``image_cache`` holds the images guests boot from; drivers that need image files get it.
        ``plug_vifs`` (host -> plug) reaches the network agent of hosts that have one; simulated
        hosts have none, and their guests' ports are bound without taps.
        """
        self.settings = settings
        self.db = db
        self.bus = bus
        self.image_cache = image_cache
        conductor = ConductorAPI(bus)
        drivers = drivers or {h: make_driver(settings) for h in host_names(settings)}
        self.agents = [ComputeManager(db=db, host=h, driver=d, options=settings.compute, conductor=conductor,
                                      images=images, image_cache=image_cache, console=settings.console,
                                      network=network, plug_vifs=(plug_vifs or {}).get(h))
                       for h, d in drivers.items()]
        self._consumers: list[Consumer] = []
        self._heartbeat: Heartbeat | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def agent(self, host: str) -> ComputeManager:
        return next(a for a in self.agents if a.host == host)

    async def start(self) -> None:
        """Init drivers, report inventory, heartbeat, reconcile, then consume (so redeliveries find the truth)."""
        for agent in self.agents:
            await agent.driver.init_host(agent.host)
        await self.report_resources(self.agents)
        self._heartbeat = Heartbeat(self.db, hosts=[a.host for a in self.agents], binary=COMPUTE_BINARY,
                                    role="compute", topic="compute.{host}",
                                    interval=self.settings.node.heartbeat_interval)
        await self._heartbeat.start()
        placed = await instances_by_host(self.agents[0], [a.host for a in self.agents])
        for agent in self.agents:
            await reconcile_host(agent, placed[agent.host])
            self._consumers.append(await self.bus.serve(compute_topic(agent.host), Exposed(agent, RPC_METHODS)))
        options = self.settings.compute
        self._tasks.append(asyncio.create_task(self._every(options.resource_interval, self.report_resources),
                                               name="compute-resource-audit"))
        if self.image_cache is not None and options.image_cache_interval > 0:
            self._tasks.append(asyncio.create_task(self._every(options.image_cache_interval, self.evict_images),
                                                   name="compute-image-cache"))
        if options.sync_power_state_interval > 0:
            self._tasks.append(asyncio.create_task(self._every(options.sync_power_state_interval,
                                                               self.sync_power_states), name="compute-power-sync"))
        log.info("compute agents started: %d host(s) with the %s driver", len(self.agents), options.driver)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for consumer in self._consumers:
            await consumer.stop()
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        for agent in self.agents:
            await agent.driver.cleanup_host()

    async def _every(self, interval: float, work: Any) -> None:
        """Run ``work(agents)`` once per ``interval`` for the whole fleet (one batch, not N timers)."""
        await asyncio.sleep(random.uniform(0.5, 1.0) * interval)
        while True:
            try:
                await work(self.agents)
            except Exception:  # noqa: BLE001 - an audit failing (database away) must not end the loop
                log.warning("periodic %s failed", getattr(work, "__name__", work), exc_info=True)
            await asyncio.sleep(interval)

    async def report_resources(self, agents: list[ComputeManager]) -> None:
        """Inventory from each driver, then usage recounted from the instances placed on each host.

        Two transactions for the whole fleet, whatever its size.
        """
        options = self.settings.compute
        reports = {}
        for agent in agents:
            try:
                reports[agent.host] = await agent.driver.get_available_resource()
            except VirtError as exc:
                log.warning("host %s cannot report resources: %s", agent.host, exc)
        if not reports:
            return
        hosts = list(reports)
        async with self.db.session() as s:
            rows = await resources.nodes_by_host(s, hosts)
            for host, res in reports.items():
                resources.apply_inventory(s, rows.get(host), host, res, cpu_ratio=options.cpu_allocation_ratio,
                                          ram_ratio=options.ram_allocation_ratio,
                                          disk_ratio=options.disk_allocation_ratio)
        async with self.db.session() as s:
            corrected = await resources.resync_usage(s, hosts)
        if corrected:
            log.info("usage corrected on %d host(s): %s", len(corrected), ", ".join(corrected[:10]))

    async def evict_images(self, agents: list[ComputeManager]) -> list[str]:
        """Remove cached images that no guest of this process' hosts uses any more."""
        if self.image_cache is None:
            return []
        in_use: set[Path] = set()
        for agent in agents:
            in_use |= await agent.driver.image_files_in_use()
        return await self.image_cache.evict(in_use)

    async def sync_power_states(self, agents: list[ComputeManager]) -> None:
        """Nova's ``_sync_power_states`` for every host, from one read of the fleet's idle instances."""
        idle = await instances_by_host(agents[0], [a.host for a in agents], idle_only=True)
        for agent in agents:
            if idle[agent.host]:
                await sync_power_states(agent, idle[agent.host])

    async def nodes(self) -> list[ComputeNode]:
        async with self.db.session() as s:
            return list(await s.scalars(select(ComputeNode).where(
                ComputeNode.host.in_([a.host for a in self.agents]))))
