"""The conductor's RPC endpoint: schedule builds (and reschedules), start resizes, sweep stuck builds.

Nova's ``ComputeTaskManager.schedule_and_build_instances`` in small: ask the
scheduler for hosts (it claims and assigns them), record the outcome on each
instance's ``create`` action, and cast the build to each chosen host's agent.
A compute agent whose spawn failed sends the instance back here with the host
added to ``retry.hosts``; after ``max_attempts`` hosts the instance goes to
ERROR with Nova's MaxRetriesExceeded message and the last spawn error.

No instance stays in BUILD forever: :meth:`sweep_build_timeouts` (run
periodically by every conductor; the guarded UPDATE makes concurrent sweeps
harmless) sets instances still building after ``build_timeout`` to ERROR,
whatever was lost on the way (a dead agent, a lost message).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select

from kumo.compute import resources
from kumo.compute.context import RequestContext
from kumo.compute.instances import add_fault, finish_event, save_instance, start_event
from kumo.compute.models import Instance
from kumo.compute.network import NetworkAPI
from kumo.compute.rpcapi import ComputeAgentAPI, SchedulerAPI
from kumo.compute.states import TaskState, VmState
from kumo.core.config import ComputeOptions
from kumo.core.db import Database, utcnow

log = logging.getLogger("kumo.compute.conductor")
#: What the bus may call on a conductor.
CONDUCTOR_METHODS = frozenset({"build_instances", "resize_instance", "refresh_network_info"})
SCHEDULE_EVENT = "conductor_schedule_and_build_instances"
RESIZE_EVENT = "conductor_migrate_server"


class ConductorManager:
    def __init__(self, db: Database, options: ComputeOptions, scheduler: SchedulerAPI,
                 agents: ComputeAgentAPI, network: NetworkAPI | None = None) -> None:
        self.db = db
        self.options = options
        self.scheduler = scheduler
        self.agents = agents
        self.network = network

    async def refresh_network_info(self, instance_uuids: list[str]) -> None:
        """Neutron's ``network-changed`` event: re-read the instances' ports (a floating IP came or went)."""
        if self.network is None:
            return
        for uuid in instance_uuids:
            async with self.db.session() as s:
                row = await s.get(Instance, uuid)
                cached = None if row is None or row.deleted_at is not None else list(row.network_info or [])
            if cached is None:
                continue
            fresh = await self.network.refresh(uuid, cached)
            async with self.db.session() as s:
                await save_instance(s, uuid, network_info=fresh)

    async def build_instances(self, ctx: dict[str, Any], instance_uuids: list[str], request: dict[str, Any]) -> None:
        context = RequestContext.from_dict(ctx)
        retry = request.setdefault("retry", {"num_attempts": 0, "hosts": []})
        retry["num_attempts"] = int(retry.get("num_attempts", 0)) + 1
        async with self.db.session() as s:
            for uuid in instance_uuids:
                await start_event(s, context, uuid, SCHEDULE_EVENT)
        if retry["num_attempts"] > self.options.max_attempts:
            last = retry.get("last_error") or "unknown error"
            for uuid in instance_uuids:
                await self._fail_build(context, uuid, f"Exceeded maximum number of retries. Exceeded max "
                                                      f"scheduling attempts {self.options.max_attempts} for "
                                                      f"instance {uuid}. Last exception: {last}")
            return
        try:
            result = await self.scheduler.select_destinations(context, instance_uuids, request)
        except Exception as exc:  # noqa: BLE001 - the scheduler is unreachable: say so on the instances
            log.warning("scheduling %s failed: %s", instance_uuids, exc)
            result = {"error": f"Scheduling failed: {exc}"}
        if "error" in result:
            message = str(result["error"])
            if retry.get("last_error"):  # a reschedule found no host: the spawn failure is the real story
                message = f"{message.rstrip('.')}. Last exception: {retry['last_error']}"
            for uuid in instance_uuids:
                await self._fail_build(context, uuid, message)
            return
        for dest in result["destinations"]:
            async with self.db.session() as s:
                await finish_event(s, context, dest["instance_uuid"], SCHEDULE_EVENT)
            await self.agents.build_and_run_instance(context, dest["host"], dest["instance_uuid"], request)

    async def _fail_build(self, context: RequestContext, uuid: str, message: str) -> None:
        """Nova's ``_set_vm_state_and_notify``: ERROR, no task, a fault with the reason."""
        async with self.db.session() as s:
            if await save_instance(s, uuid, expected_vm_state=VmState.BUILDING, vm_state=VmState.ERROR,
                                   task_state=None):
                add_fault(s, uuid, message, code=500, details=message)  # details keep what 255 chars cut
            await finish_event(s, context, uuid, SCHEDULE_EVENT, error=message)
        log.info("instance %s: build failed: %s", uuid, message)

    async def resize_instance(self, ctx: dict[str, Any], instance_uuid: str, flavor: dict[str, Any],
                              clean_shutdown: bool = True) -> None:
        """Claim the new size on the instance's own host, keep both sizes until confirm/revert, cast the agent."""
        context = RequestContext.from_dict(ctx)
        async with self.db.session() as s:
            await start_event(s, context, instance_uuid, RESIZE_EVENT)
            row = await s.get(Instance, instance_uuid)
            if row is None or row.deleted_at is not None or row.task_state != TaskState.RESIZE_PREP or not row.host:
                await finish_event(s, context, instance_uuid, RESIZE_EVENT, error="Instance is no longer resizing")
                return
            vcpus, ram, disk = resources.flavor_usage(flavor)
            claimed = await resources.claim(s, row.host, vcpus, ram, disk, self.options.reserved_host_memory_mb,
                                            instances=0)
            if not claimed:
                message = (f"No valid host was found. Host {row.host} has no room for flavor "
                           f"{flavor.get('name', flavor.get('flavorid'))} ({vcpus} vCPU, {ram} MB RAM, {disk} GB disk)")
                await save_instance(s, instance_uuid, expected_task_state=TaskState.RESIZE_PREP, task_state=None)
                add_fault(s, instance_uuid, message, code=400)
                await finish_event(s, context, instance_uuid, RESIZE_EVENT, error=message)
                return
            sysmeta = dict(row.system_metadata or {})
            sysmeta["new_flavor"] = flavor
            await save_instance(s, instance_uuid, expected_task_state=TaskState.RESIZE_PREP,
                                task_state=TaskState.RESIZE_MIGRATING, system_metadata=sysmeta)
            await finish_event(s, context, instance_uuid, RESIZE_EVENT)
            host = row.host
        await self.agents.resize_instance(context, host, instance_uuid, flavor, clean_shutdown)

    async def sweep_build_timeouts(self) -> list[str]:
        """Instances building for longer than ``build_timeout`` go to ERROR (Nova's ``_check_instance_build_time``)."""
        timeout = self.options.build_timeout
        if timeout <= 0:
            return []
        cutoff = utcnow() - dt.timedelta(seconds=timeout)
        swept = []
        async with self.db.session() as s:
            stuck = (await s.scalars(select(Instance.uuid).where(
                Instance.vm_state == VmState.BUILDING, Instance.deleted_at.is_(None),
                Instance.created_at < cutoff))).all()
            for uuid in stuck:
                if await save_instance(s, uuid, expected_vm_state=VmState.BUILDING, vm_state=VmState.ERROR,
                                       task_state=None):
                    add_fault(s, uuid, "Instance build timed out. Set to error state.", code=500)
                    swept.append(uuid)
        if swept:
            log.warning("build timed out after %.0f s for %d instance(s): %s", timeout, len(swept),
                        ", ".join(swept))
        return swept
