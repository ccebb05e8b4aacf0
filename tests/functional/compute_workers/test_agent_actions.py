"""The compute agent's side of each action: from the task state the API leaves to the end state.

The API half (state checks, 409s) has its own suite; here the task state is
set as the API sets it and the agent is cast to, as in production.
"""

from __future__ import annotations

import pytest
from buildtest import SMALL, build, context, events, fake_driver, faults, nodes, row, wait_for
from kumotest import Cloud

from kumo.compute.context import RequestContext
from kumo.compute.instances import start_action, save_instance
from kumo.compute.rpcapi import ComputeAgentAPI
from kumo.compute.virt.base import PowerState


async def active(cloud: Cloud) -> tuple[RequestContext, str, str]:
    ctx, [uuid] = await build(cloud)
    inst = await wait_for(cloud, uuid, vm_state="active", task_state=None)
    assert inst.host
    return ctx, uuid, inst.host


def agents(cloud: Cloud) -> ComputeAgentAPI:
    assert cloud.node.compute_deps is not None
    return cloud.node.compute_deps.agents


async def request(cloud: Cloud, uuid: str, action: str, task_state: str) -> RequestContext:
    """What the API does before casting: a new request id, its action, the task state."""
    ctx = context()
    async with cloud.node.db.session() as s:
        start_action(s, ctx, [uuid], action)
        assert await save_instance(s, uuid, expected_task_state=None, task_state=task_state)
    return ctx


@pytest.mark.parametrize("steps", [
    [("stop", "powering-off", "stop_instance", "stopped", PowerState.SHUTDOWN),
     ("start", "powering-on", "start_instance", "active", PowerState.RUNNING)],
    [("pause", "pausing", "pause_instance", "paused", PowerState.PAUSED),
     ("unpause", "unpausing", "unpause_instance", "active", PowerState.RUNNING)],
    [("suspend", "suspending", "suspend_instance", "suspended", PowerState.SUSPENDED),
     ("resume", "resuming", "resume_instance", "active", PowerState.RUNNING)],
])
async def test_power_actions_round_trip(fleet_cloud: Cloud, steps: list[tuple[str, str, str, str, int]]) -> None:
    _ctx, uuid, host = await active(fleet_cloud)
    for action, task, method, vm_state, power in steps:
        ctx = await request(fleet_cloud, uuid, action, task)
        await getattr(agents(fleet_cloud), method)(ctx, host, uuid)
        inst = await wait_for(fleet_cloud, uuid, vm_state=vm_state, task_state=None)
        assert inst.power_state == power
        assert (await fake_driver(fleet_cloud, host).get_info(uuid)).power_state == power
    trail = await events(fleet_cloud, uuid)
    assert (f"compute_{steps[0][2]}", "Success") in trail


async def test_hard_reboot_recovers_a_crashed_guest(fleet_cloud: Cloud) -> None:
    _ctx, uuid, host = await active(fleet_cloud)
    fake_driver(fleet_cloud, host).kill(uuid, PowerState.CRASHED)
    ctx = await request(fleet_cloud, uuid, "reboot", "rebooting_hard")
    await agents(fleet_cloud).reboot_instance(ctx, host, uuid, "HARD")
    inst = await wait_for(fleet_cloud, uuid, vm_state="active", task_state=None)
    assert inst.power_state == PowerState.RUNNING


async def test_failed_action_keeps_vm_state_and_records_fault(fleet_cloud: Cloud) -> None:
    _ctx, uuid, host = await active(fleet_cloud)
    fake_driver(fleet_cloud, host).kill(uuid, PowerState.SHUTDOWN)  # soft reboot needs a running guest
    ctx = await request(fleet_cloud, uuid, "reboot", "rebooting")
    await agents(fleet_cloud).reboot_instance(ctx, host, uuid, "SOFT")
    inst = await wait_for(fleet_cloud, uuid, task_state=None)
    assert inst.vm_state == "active"
    assert "Cannot soft reboot instance" in (await faults(fleet_cloud, uuid))[-1]
    assert ("compute_reboot_instance", "Error") in await events(fleet_cloud, uuid)


async def test_delete_releases_the_claim_and_the_guest(fleet_cloud: Cloud) -> None:
    _ctx, uuid, host = await active(fleet_cloud)
    ctx = await request(fleet_cloud, uuid, "delete", "deleting")
    await agents(fleet_cloud).terminate_instance(ctx, host, uuid)
    inst = await wait_for(fleet_cloud, uuid, deleted=True)
    assert inst.vm_state == "deleted" and inst.terminated_at is not None
    assert await fake_driver(fleet_cloud, host).list_instances() == []
    assert (await nodes(fleet_cloud))[host].memory_mb_used == 0


async def test_delete_during_build_wins(fleet_cloud: Cloud) -> None:
    assert fleet_cloud.node.fleet is not None
    for agent in fleet_cloud.node.fleet.agents:
        agent.driver.spawn_seconds = 0.3  # type: ignore[attr-defined]
    _ctx, [uuid] = await build(fleet_cloud)
    inst = await wait_for(fleet_cloud, uuid, task_state="spawning")
    assert inst.host
    async with fleet_cloud.node.db.session() as s:
        assert await save_instance(s, uuid, task_state="deleting")
    await agents(fleet_cloud).terminate_instance(context(), inst.host, uuid)
    await wait_for(fleet_cloud, uuid, deleted=True)
    assert await fake_driver(fleet_cloud, inst.host).list_instances() == []
    assert (await nodes(fleet_cloud))[inst.host].memory_mb_used == 0


BIGGER = {**SMALL, "flavorid": "b", "name": "bigger", "vcpus": 2, "memory_mb": 1024, "root_gb": 2}


async def resized(cloud: Cloud) -> tuple[str, str]:
    """An instance resized from SMALL to BIGGER, waiting for confirm or revert."""
    assert cloud.node.compute_deps is not None
    _ctx, uuid, host = await active(cloud)
    ctx = await request(cloud, uuid, "resize", "resize_prep")
    await cloud.node.compute_deps.conductor.resize_instance(ctx, uuid, BIGGER)
    inst = await wait_for(cloud, uuid, vm_state="resized", task_state=None)
    assert inst.flavor["name"] == "bigger" and inst.system_metadata["old_flavor"]["name"] == "small"
    assert (await nodes(cloud))[host].memory_mb_used == 512 + 1024  # both sizes held until confirm/revert
    assert fake_driver(cloud, host).spec_of(uuid).memory_mb == 1024
    return uuid, host


async def test_resize_then_confirm_frees_the_old_size(fleet_cloud: Cloud) -> None:
    uuid, host = await resized(fleet_cloud)
    ctx = await request(fleet_cloud, uuid, "confirmResize", "resize_confirming")
    await agents(fleet_cloud).confirm_resize(ctx, host, uuid)
    inst = await wait_for(fleet_cloud, uuid, vm_state="active", task_state=None)
    assert inst.flavor["name"] == "bigger" and "old_flavor" not in inst.system_metadata
    assert (await nodes(fleet_cloud))[host].memory_mb_used == 1024


async def test_resize_then_revert_restores_the_old_size(fleet_cloud: Cloud) -> None:
    uuid, host = await resized(fleet_cloud)
    ctx = await request(fleet_cloud, uuid, "revertResize", "resize_reverting")
    await agents(fleet_cloud).revert_resize(ctx, host, uuid)
    inst = await wait_for(fleet_cloud, uuid, vm_state="active", task_state=None)
    assert inst.flavor["name"] == "small" and "old_flavor" not in inst.system_metadata
    assert (await nodes(fleet_cloud))[host].memory_mb_used == 512
    assert fake_driver(fleet_cloud, host).spec_of(uuid).memory_mb == 512


async def test_resize_without_room_keeps_the_instance(fleet_cloud: Cloud) -> None:
    assert fleet_cloud.node.compute_deps is not None
    _ctx, uuid, host = await active(fleet_cloud)
    ctx = await request(fleet_cloud, uuid, "resize", "resize_prep")
    await fleet_cloud.node.compute_deps.conductor.resize_instance(ctx, uuid, {**SMALL, "memory_mb": 8192})
    inst = await wait_for(fleet_cloud, uuid, vm_state="active", task_state=None)
    assert inst.flavor["memory_mb"] == 512
    assert "has no room" in (await faults(fleet_cloud, uuid))[-1]
    assert (await nodes(fleet_cloud))[host].memory_mb_used == 512


async def test_console_output_tail(fleet_cloud: Cloud) -> None:
    _ctx, uuid, host = await active(fleet_cloud)
    text = await agents(fleet_cloud).get_console_output(context(), host, uuid, None)
    assert "spawned vm-0" in text
    assert await agents(fleet_cloud).get_console_output(context(), host, uuid, 0) == ""


async def test_rebuild_respawns_and_keeps_a_stopped_instance_stopped(fleet_cloud: Cloud) -> None:
    _ctx, uuid, host = await active(fleet_cloud)
    ctx = await request(fleet_cloud, uuid, "stop", "powering-off")
    await agents(fleet_cloud).stop_instance(ctx, host, uuid)
    await wait_for(fleet_cloud, uuid, vm_state="stopped", task_state=None)
    ctx = await request(fleet_cloud, uuid, "rebuild", "rebuilding")
    await agents(fleet_cloud).rebuild_instance(ctx, host, uuid, {"id": "img2", "properties": {"os_type": "linux"}})
    inst = await wait_for(fleet_cloud, uuid, vm_state="stopped", task_state=None)
    assert inst.power_state == PowerState.SHUTDOWN
    assert fake_driver(fleet_cloud, host).spec_of(uuid).image_id == "img2"
    assert ("compute_rebuild_instance", "Success") in await events(fleet_cloud, uuid)
    assert (await row(fleet_cloud, uuid)).vm_state == "stopped"
