"""Making the database agree with the hypervisor: at agent start, and periodically after.

At start (Nova's ``init_host``: ``_destroy_evacuated_instances`` +
``_init_instance`` for each instance) the agent compares the instances the
database places on its host with what the driver really holds:

* an instance being deleted is deleted (the guest destroyed, the row marked);
* an instance still BUILDING was interrupted mid-spawn: any half-made guest
  is destroyed and the instance goes to ERROR with a fault saying so (Nova
  does the same; a reschedule would race the build-timeout sweep);
* an action interrupted half-way (task state left set) is finished from the
  hypervisor's truth: the task is cleared and vm/power state synced;
* a guest the database says is running but the hypervisor no longer has is
  ERROR with a fault (it cannot be started again from nothing);
* a guest the hypervisor has for an instance that is deleted, or placed on
  another host, is destroyed (Nova's ``running_deleted_instance_action=reap``);
  guests unknown to the database are left alone and logged.

Nothing is restarted that was running: a running guest is simply adopted.

Periodically (Nova's ``_sync_power_states``) the same power sync runs for
idle instances: a guest that stopped outside Kumo shows SHUTOFF, one that
runs though the user stopped it is stopped again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from kumo.compute.instances import add_fault, save_instance
from kumo.compute.models import Instance
from kumo.compute.states import PowerState, TaskState, VmState
from kumo.compute.virt.base import InstanceInfo, VirtError

if TYPE_CHECKING:
    from kumo.compute.manager import ComputeManager

log = logging.getLogger("kumo.compute.reconcile")

#: vm_state -> what a guest in that state should be doing.
_EXPECTED_POWER = {VmState.ACTIVE: PowerState.RUNNING, VmState.STOPPED: PowerState.SHUTDOWN,
                   VmState.PAUSED: PowerState.PAUSED, VmState.SUSPENDED: PowerState.SUSPENDED,
                   VmState.RESIZED: None, VmState.ERROR: None}


async def instances_by_host(agent: ComputeManager, hosts: list[str], *, idle_only: bool = False
                            ) -> dict[str, list[Instance]]:
    """The live instances the database places on ``hosts`` (one read for a whole fleet)."""
    found: dict[str, list[Instance]] = {h: [] for h in hosts}
    async with agent.db.session() as s:
        for start in range(0, len(hosts), 500):
            stmt = select(Instance).where(Instance.host.in_(hosts[start:start + 500]), Instance.deleted_at.is_(None))
            if idle_only:
                stmt = stmt.where(Instance.task_state.is_(None), Instance.vm_state.in_(
                    [VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED]))
            for row in await s.scalars(stmt):
                found[row.host or ""].append(row)
    return found


async def reconcile_host(agent: ComputeManager, rows: list[Instance] | None = None) -> dict[str, int]:
    """Run once before the agent consumes its topic; returns counts of what was corrected, for the log.

    ``rows`` are the instances placed on the host when the caller read them already.
    """
    guests = await agent.driver.list_instance_infos()
    if rows is None:
        rows = (await instances_by_host(agent, [agent.host]))[agent.host]
    counts = {"adopted": 0, "deleted": 0, "failed_builds": 0, "lost": 0, "synced": 0, "reaped": 0}
    for row in rows:
        info = guests.pop(row.uuid, None)
        if row.task_state == TaskState.DELETING:
            await agent.driver.destroy(row.uuid)
            await agent.mark_deleted(row.uuid)
            counts["deleted"] += 1
        elif row.vm_state == VmState.BUILDING:
            if info is not None:
                await agent.driver.destroy(row.uuid)
            await _set_error(agent, row, "The compute agent restarted while the instance was building.")
            counts["failed_builds"] += 1
        elif info is None:
            await _set_error(agent, row, f"Instance {row.uuid} is missing from the hypervisor on {agent.host}.")
            counts["lost"] += 1
        else:
            counts["synced" if await sync_power_state(agent, row, info, clear_task=True) else "adopted"] += 1
    await _reap(agent, guests, counts)
    if any(counts.values()):
        log.info("host %s reconciled: %s", agent.host, ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return counts


async def _set_error(agent: ComputeManager, row: Instance, message: str) -> None:
    async with agent.db.session() as s:
        if await save_instance(s, row.uuid, expected_vm_state=row.vm_state, vm_state=VmState.ERROR, task_state=None,
                               power_state=int(PowerState.NOSTATE)):
            add_fault(s, row.uuid, message, code=500, host=agent.host)
    log.warning("instance %s set to ERROR: %s", row.uuid, message)


async def _reap(agent: ComputeManager, guests: dict[str, InstanceInfo], counts: dict[str, int]) -> None:
    """Destroy guests whose instance is deleted or lives elsewhere; leave unknown ones alone."""
    if not guests:
        return
    async with agent.db.session() as s:
        known = {uuid: (deleted_at, host) for uuid, deleted_at, host in await s.execute(
            select(Instance.uuid, Instance.deleted_at, Instance.host).where(Instance.uuid.in_(list(guests))))}
    for uuid in guests:
        if uuid not in known:
            log.warning("guest %s on %s belongs to no instance Kumo knows; leaving it alone", uuid, agent.host)
            continue
        deleted_at, host = known[uuid]
        if deleted_at is not None or host != agent.host:
            log.warning("destroying guest %s: its instance is %s", uuid,
                        "deleted" if deleted_at is not None else f"on host {host}")
            await agent.driver.destroy(uuid)
            counts["reaped"] += 1


async def sync_power_state(agent: ComputeManager, row: Instance, info: InstanceInfo | None, *,
                           clear_task: bool = False) -> bool:
    """Bring one instance's power (and, where Nova does, vm) state in line with the hypervisor; True if changed."""
    power = info.power_state if info is not None else PowerState.NOSTATE
    values: dict[str, object] = {}
    if int(power) != row.power_state:
        values["power_state"] = int(power)
    if clear_task and row.task_state is not None:
        values["task_state"] = None
        expected = _EXPECTED_POWER.get(VmState(row.vm_state)) if row.vm_state in _EXPECTED_POWER else None
        if expected is not None and power != expected and power in _EXPECTED_POWER.values():
            # The interrupted action got as far as the hypervisor: take its result.
            for vm_state, wanted in _EXPECTED_POWER.items():
                if wanted == power:
                    values["vm_state"] = vm_state
                    break
    elif row.vm_state == VmState.ACTIVE and power in (PowerState.SHUTDOWN, PowerState.CRASHED):
        values["vm_state"] = VmState.STOPPED  # stopped outside Kumo: Nova calls the stop API, ending STOPPED
    elif row.vm_state == VmState.STOPPED and power == PowerState.RUNNING:
        try:  # the user wants it stopped (Nova: "Instance is not stopped. Calling the stop API.")
            await agent.driver.power_off(row.uuid, agent.options.shutdown_timeout)
            values["power_state"] = int(PowerState.SHUTDOWN)
        except VirtError as exc:
            log.warning("could not stop %s, which runs though it should not: %s", row.uuid, exc)
    if not values:
        return False
    async with agent.db.session() as s:
        await save_instance(s, row.uuid, expected_task_state=row.task_state, **values)
    log.info("instance %s synced to the hypervisor: %s", row.uuid, values)
    return True


async def sync_power_states(agent: ComputeManager, rows: list[Instance] | None = None) -> int:
    """The periodic sync for idle instances of this host (busy ones are left to their action)."""
    try:
        infos = await agent.driver.list_instance_infos()
    except VirtError as exc:
        log.warning("power-state sync on %s skipped: %s", agent.host, exc)
        return 0
    if rows is None:
        rows = (await instances_by_host(agent, [agent.host], idle_only=True))[agent.host]
    changed = 0
    for row in rows:
        async with agent.locked(row.uuid):
            if await sync_power_state(agent, row, infos.get(row.uuid)):
                changed += 1
    return changed
