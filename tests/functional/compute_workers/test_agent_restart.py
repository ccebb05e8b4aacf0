"""Agent restarts: what runs keeps running, the database is corrected, nothing is lost or duplicated."""

from __future__ import annotations

from buildtest import build, faults, nodes, wait_for
from kumotest import Cloud

from kumo.compute.fleet import ComputeFleet
from kumo.compute.instances import save_instance
from kumo.compute.virt.base import PowerState


async def restart_agents(cloud: Cloud) -> ComputeFleet:
    """Stop every agent of the cloud and start new ones on the same (still running) hypervisors."""
    node = cloud.node
    assert node.fleet is not None and node.db is not None and node.bus is not None
    drivers = {a.host: a.driver for a in node.fleet.agents}
    await node.fleet.stop()
    node.fleet = ComputeFleet(node.settings, node.db, node.bus, images=node.image_client, drivers=drivers)
    await node.fleet.start()
    return node.fleet


async def test_restart_adopts_running_guests_and_fixes_what_changed(fleet_cloud: Cloud) -> None:
    _ctx, uuids = await build(fleet_cloud, 5)
    rows = [await wait_for(fleet_cloud, u, vm_state="active", task_state=None) for u in uuids]
    fleet = fleet_cloud.node.fleet
    assert fleet is not None
    usage_before = {h: n.memory_mb_used for h, n in (await nodes(fleet_cloud)).items()}
    by_uuid = {r.uuid: r for r in rows}
    killed, vanished, deleting, stopping, untouched = uuids
    fleet.agent(by_uuid[killed].host).driver.kill(killed)  # type: ignore[attr-defined]
    fleet.agent(by_uuid[vanished].host).driver.vanish(vanished)  # type: ignore[attr-defined]
    async with fleet_cloud.node.db.session() as s:  # requests whose messages died with the old agent
        await save_instance(s, deleting, task_state="deleting")
        await save_instance(s, stopping, task_state="powering-off")

    fleet = await restart_agents(fleet_cloud)

    assert (await wait_for(fleet_cloud, untouched, vm_state="active", task_state=None)).power_state == 1
    assert (await wait_for(fleet_cloud, killed, vm_state="stopped")).power_state == PowerState.SHUTDOWN
    assert (await wait_for(fleet_cloud, vanished, vm_state="error")).power_state == PowerState.NOSTATE
    assert "missing from the hypervisor" in (await faults(fleet_cloud, vanished))[-1]
    await wait_for(fleet_cloud, deleting, deleted=True)
    # The stop never reached the hypervisor: the task is cleared and the guest, still running, stays ACTIVE.
    assert (await wait_for(fleet_cloud, stopping, vm_state="active", task_state=None)).power_state == 1
    running = sorted([u for a in fleet.agents for u in await a.driver.list_instances()])
    assert running == sorted([killed, stopping, untouched])
    usage_after = {h: n.memory_mb_used for h, n in (await nodes(fleet_cloud)).items()}
    assert sum(usage_after.values()) == sum(usage_before.values()) - 512  # only the deleted one freed its room


async def test_restart_mid_build_never_leaves_build(fleet_cloud: Cloud) -> None:
    fleet = fleet_cloud.node.fleet
    assert fleet is not None
    for agent in fleet.agents:
        agent.driver.spawn_seconds = 5  # type: ignore[attr-defined]
    _ctx, [uuid] = await build(fleet_cloud)
    inst = await wait_for(fleet_cloud, uuid, task_state="spawning")
    fleet = await restart_agents(fleet_cloud)  # cancels the spawn mid-way
    inst = await wait_for(fleet_cloud, uuid, vm_state="error", task_state=None)
    assert "restarted while the instance was building" in (await faults(fleet_cloud, uuid))[-1]
    assert [await a.driver.list_instances() for a in fleet.agents] == [[], [], []]
    assert inst.host is not None  # still holds its claim until deleted, as Nova's ERROR instances do
