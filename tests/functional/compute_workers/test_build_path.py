"""The build path over the bus: conductor -> scheduler (claims) -> compute agent -> fake driver.

No API here (the servers API has its own suite): instances are written as
the API writes them and the conductor is cast to, so these tests pin the
workers' contract: states, claims, reschedules, faults, events.
"""

from __future__ import annotations

import asyncio

from buildtest import SMALL, build, events, fake_driver, faults, nodes, wait_for
from kumotest import Cloud
from sqlalchemy import update

from kumo.core.models import ServiceRecord


async def test_build_goes_active_and_claims_the_host(fleet_cloud: Cloud) -> None:
    _ctx, [uuid] = await build(fleet_cloud)
    inst = await wait_for(fleet_cloud, uuid, vm_state="active", task_state=None)
    assert inst.power_state == 1 and inst.launched_at is not None and inst.host
    assert await fake_driver(fleet_cloud, inst.host).list_instances() == [uuid]
    node = (await nodes(fleet_cloud))[inst.host]
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (1, 512, 1)
    assert ("conductor_schedule_and_build_instances", "Success") in await events(fleet_cloud, uuid)
    assert ("compute__do_build_and_run_instance", "Success") in await events(fleet_cloud, uuid)


async def test_instances_spread_over_hosts_by_ram(fleet_cloud: Cloud) -> None:
    _ctx, uuids = await build(fleet_cloud, 3)
    hosts = {(await wait_for(fleet_cloud, u, vm_state="active")).host for u in uuids}
    assert len(hosts) == 3


async def test_no_host_big_enough_is_error_with_the_filter_that_said_no(fleet_cloud: Cloud) -> None:
    huge = {**SMALL, "memory_mb": 64 * 1024}
    _ctx, [uuid] = await build(fleet_cloud, flavor=huge)
    inst = await wait_for(fleet_cloud, uuid, vm_state="error", task_state=None)
    assert inst.host is None
    [message] = await faults(fleet_cloud, uuid)
    assert message.startswith("No valid host was found. 3 hosts: ") and "RamFilter removed 3" in message
    assert ("conductor_schedule_and_build_instances", "Error") in await events(fleet_cloud, uuid)


async def test_failed_spawn_is_rescheduled_on_another_host(fleet_cloud: Cloud) -> None:
    assert fleet_cloud.node.fleet is not None
    agents = fleet_cloud.node.fleet.agents
    for agent in agents[:2]:  # two of three hosts fail every spawn: whichever is tried first, it is rescheduled
        agent.driver.fail_spawns_matching(lambda spec: True, "disk on fire")  # type: ignore[attr-defined]
    _ctx, [uuid] = await build(fleet_cloud)
    inst = await wait_for(fleet_cloud, uuid, vm_state="active")
    assert inst.host == agents[2].host
    usage = await nodes(fleet_cloud)
    assert [usage[a.host].memory_mb_used for a in agents] == [0, 0, 512]  # failed hosts gave their claims back
    trail = await events(fleet_cloud, uuid)
    failures = trail.count(("compute__do_build_and_run_instance", "Error"))
    assert failures >= 1  # equal hosts: the first in line is a failing one
    assert trail.count(("conductor_schedule_and_build_instances", "Success")) == failures + 1


async def test_every_host_failing_ends_in_error_after_max_attempts(fleet_cloud: Cloud) -> None:
    assert fleet_cloud.node.fleet is not None
    for agent in fleet_cloud.node.fleet.agents:
        agent.driver.fail_spawns_matching(lambda spec: True, "no luck")  # type: ignore[attr-defined]
    _ctx, [uuid] = await build(fleet_cloud)
    inst = await wait_for(fleet_cloud, uuid, vm_state="error")
    assert inst.host is None
    [message] = await faults(fleet_cloud, uuid)
    assert message.startswith("Exceeded maximum number of retries. Exceeded max scheduling attempts 3")
    assert message.endswith("Last exception: no luck")
    assert all(n.memory_mb_used == 0 for n in (await nodes(fleet_cloud)).values())


async def test_a_failed_reschedule_keeps_the_spawn_error(fleet_cloud: Cloud) -> None:
    """One host that cannot spawn: no host is left to retry on, and the fault says why the spawn failed."""
    assert fleet_cloud.node.fleet is not None
    agents = fleet_cloud.node.fleet.agents
    async with fleet_cloud.node.db.session() as s:  # the other hosts are down
        await s.execute(update(ServiceRecord).where(ServiceRecord.host.in_([a.host for a in agents[1:]]))
                        .values(forced_down=True))
    agents[0].driver.fail_spawns_matching(lambda spec: True, "QEMU failed to start: no such machine")  # type: ignore[attr-defined]
    _ctx, [uuid] = await build(fleet_cloud)
    await wait_for(fleet_cloud, uuid, vm_state="error")
    [message] = await faults(fleet_cloud, uuid)
    assert message.startswith("No valid host was found")
    assert message.endswith("Last exception: QEMU failed to start: no such machine")


async def test_concurrent_builds_never_overcommit(fleet_cloud: Cloud) -> None:
    # 3 hosts x 4 vCPU x 4 ratio = 48 vCPUs; RAM 4096-512 reserved = 3584 MB/host -> 7 smalls per host = 21.
    batches = [build(fleet_cloud, 5) for _ in range(6)]  # 30 instances at once
    results = await asyncio.gather(*batches)
    uuids = [u for _ctx, us in results for u in us]
    states = [await wait_for(fleet_cloud, u, task_state=None) for u in uuids]
    active = [s for s in states if s.vm_state == "active"]
    assert len(active) == 20  # 4 full batches of 5 fit in 21 places; a batch is all or nothing
    for node in (await nodes(fleet_cloud)).values():
        assert node.memory_mb_used <= node.memory_mb - 512
        assert node.memory_mb_used == 512 * sum(1 for s in active if s.host == node.host)


async def test_stuck_build_is_swept_to_error(fleet_cloud: Cloud) -> None:
    from kumo.compute.conductor.manager import ConductorManager
    from kumo.compute.rpcapi import ComputeAgentAPI, SchedulerAPI

    from buildtest import new_instances  # noqa: I001 - a build nobody casts: the message was "lost"

    _ctx, [uuid], _request = await new_instances(fleet_cloud)
    options = fleet_cloud.node.settings.compute.model_copy(update={"build_timeout": 0.01})
    bus = fleet_cloud.node.bus
    assert bus is not None
    conductor = ConductorManager(fleet_cloud.node.db, options, SchedulerAPI(bus), ComputeAgentAPI(bus))
    await asyncio.sleep(0.05)
    assert await conductor.sweep_build_timeouts() == [uuid]
    inst = await wait_for(fleet_cloud, uuid, vm_state="error", task_state=None)
    assert inst.vm_state == "error"
    assert await faults(fleet_cloud, uuid) == ["Instance build timed out. Set to error state."]
