"""``POST /servers/{id}/action``: lock/unlock, resize, createImage, console output and rebuild."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from computetest import ComputeEnv, fault
from kumotest import Cloud
from sqlalchemy import select
from test_server_actions import Recorder, act, action_names, heartbeat, instance, make_instance, serve

from kumo.compute.models import InstanceAction, InstanceActionEvent, Quota

KERNEL = "8b7f3a1e-2c4d-4e5f-9a6b-0c1d2e3f4a5b"


async def _events(cloud: Cloud, server: str) -> list[tuple[str, str | None]]:
    async with cloud.node.db.session() as s:
        rows = await s.execute(select(InstanceActionEvent.event, InstanceActionEvent.result)
                               .join(InstanceAction, InstanceAction.id == InstanceActionEvent.action_id)
                               .where(InstanceAction.instance_uuid == server).order_by(InstanceActionEvent.id))
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_lock_refuses_actions_for_members_not_admins(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    await serve(cloud)
    server = await make_instance(cloud, alice)
    await act(env, alice, server, {"lock": None})
    row = await instance(cloud, server)
    assert (row.locked, row.locked_by) == (True, "owner")
    r = await act(env, alice, server, {"os-stop": None}, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Instance {server} is locked"
    r = await act(env, alice, server, {"reboot": {"type": "HARD"}}, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Instance {server} is locked"
    await act(env, await env.admin(), server, {"os-stop": None})
    await act(env, alice, server, {"lock": {}})  # the owner locking again changes nothing
    await act(env, alice, server, {"unlock": None})
    assert not (await instance(cloud, server)).locked
    assert await action_names(cloud, server) == ["lock", "stop", "unlock"]
    assert await _events(cloud, server) == [("api_lock", "Success"), ("api_unlock", "Success")]


async def test_admin_lock_needs_override_to_unlock(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    admin = await env.admin()
    server = await make_instance(cloud, alice)
    await act(env, admin, server, {"lock": None})
    assert (await instance(cloud, server)).locked_by == "admin"
    r = await act(env, alice, server, {"unlock": None}, expect=403)
    assert "unlock:unlock_override" in fault(r, "forbidden", 403)
    assert (await instance(cloud, server)).locked
    await act(env, admin, server, {"unlock": None})
    assert not (await instance(cloud, server)).locked


async def test_lock_reason_from_2_73(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    server = await make_instance(cloud, alice)
    await act(env, alice, server, {"lock": {"locked_reason": "ignored below 2.73"}}, version="2.72")
    assert (await instance(cloud, server)).locked_reason is None
    await act(env, alice, server, {"unlock": None})
    r = await act(env, alice, server, {"lock": {"reason": "x"}}, version="2.73", expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('reason' was unexpected)"
    r = await act(env, alice, server, {"lock": {"locked_reason": ""}}, version="2.73", expect=400)
    assert "is too short" in fault(r, "badRequest", 400)
    await act(env, alice, server, {"lock": {"locked_reason": "maintenance"}}, version="2.73")
    row = await instance(cloud, server)
    assert (row.locked, row.locked_reason) == (True, "maintenance")
    await act(env, alice, server, {"unlock": None}, version="2.73")
    assert (await instance(cloud, server)).locked_reason is None


async def test_resize_casts_to_conductor(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    conductor = Recorder()  # the in-process conductor would act on it: record the call instead
    cloud.node.compute_deps.conductor = conductor  # type: ignore[union-attr,assignment]
    await heartbeat(cloud)
    server = await make_instance(cloud, alice, flavor_id="1")
    r = await act(env, alice, server, {"resize": {"flavorRef": "2", "OS-DCF:diskConfig": "AUTO"}})
    assert (await instance(cloud, server)).task_state == "resize_prep"
    name, args = (await conductor.wait())[0]
    assert name == "resize_instance"
    assert args["ctx"].request_id == r.headers["x-openstack-request-id"]
    assert (args["instance_uuid"], args["flavor"]["flavorid"], args["flavor"]["memory_mb"]) == (server, "2", 2048)
    assert await action_names(cloud, server) == ["resize"]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"flavorRef": "1"}, 400, "When resizing, instances must change flavor!"),
    ({"flavorRef": "nope"}, 400, "Flavor nope could not be found."),
    ({"flavorRef": ""}, 400, "Invalid input for field/attribute flavorRef. Value: . '' is too short"),
    ({"flavorRef": "2", "OS-DCF:diskConfig": "SOME"}, 400,
     "Invalid input for field/attribute OS-DCF:diskConfig. Value: SOME. 'SOME' is not one of ['AUTO', 'MANUAL']"),
    ({}, 400, "'flavorRef' is a required property"),
])
async def test_resize_refusals(cloud: Cloud, env: ComputeEnv, body: dict[str, Any], status: int,
                               message: str) -> None:
    alice = await env.user("alice", "alpha")
    await heartbeat(cloud)
    server = await make_instance(cloud, alice, flavor_id="1")
    r = await act(env, alice, server, {"resize": body}, expect=status)
    assert fault(r, "badRequest", status) == message
    assert (await instance(cloud, server)).task_state is None


async def test_resize_state_service_and_quota(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    paused = await make_instance(cloud, alice, vm_state="paused")
    r = await act(env, alice, paused, {"resize": {"flavorRef": "2"}}, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Cannot 'resize' instance {paused} while it is in vm_state paused"
    server = await make_instance(cloud, alice, flavor_id="1")
    r = await act(env, alice, server, {"resize": {"flavorRef": "2"}}, expect=409)  # no agent heartbeat
    assert fault(r, "conflictingRequest", 409) == "Service is unavailable at this time."
    await heartbeat(cloud)
    async with cloud.node.db.session() as s:
        s.add(Quota(project_id=alice.project_id, resource="cores", hard_limit=2))
    r = await act(env, alice, server, {"resize": {"flavorRef": "4"}}, expect=403)
    assert fault(r, "forbidden", 403) == "Quota exceeded for cores: Requested 3, but already used 2 of 2 cores"


async def test_create_image_below_and_from_2_45(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    recorder = await serve(cloud)
    server = await make_instance(cloud, alice, vm_state="stopped", image_ref="base-image-id",
                                 system_metadata={"image_disk_format": "raw", "image_min_ram": "128",
                                                  "image_kernel_id": KERNEL, "image_img_signature": "s"})
    r = await act(env, alice, server, {"createImage": {"name": "snap", "metadata": {"purpose": "test"}}})
    assert r.content == b""
    image_id = r.headers["Location"].rsplit("/", 1)[-1]
    assert r.headers["Location"].endswith(f"/image/images/{image_id}")
    assert (await instance(cloud, server)).task_state == "image_snapshot_pending"  # as Nova's API
    name, args = (await recorder.wait())[0]
    assert (name, args["image_id"]) == ("snapshot_instance", image_id)
    image = (await cloud.client.get(f"/image/v2/images/{image_id}", headers=alice.headers)).json()
    assert (image["name"], image["status"], image["visibility"]) == ("snap", "queued", "private")
    assert (image["disk_format"], image["container_format"], image["min_ram"]) == ("raw", "bare", 128)
    assert (image["instance_uuid"], image["image_type"], image["purpose"]) == (server, "snapshot", "test")
    assert (image["base_image_ref"], image["kernel_id"]) == ("base-image-id", KERNEL)
    assert "img_signature" not in image
    other = await make_instance(cloud, alice)
    r = await act(env, alice, other, {"createImage": {"name": "snap2"}}, version="2.45")
    assert set(r.json()) == {"image_id"}
    assert "Location" not in r.headers
    assert await action_names(cloud, other) == ["createImage"]


async def test_create_image_refusals(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    server = await make_instance(cloud, alice, vm_state="error")
    r = await act(env, alice, server, {"createImage": {"name": "snap"}}, expect=409)
    assert fault(r, "conflictingRequest", 409) == \
        f"Cannot 'createImage' instance {server} while it is in vm_state error"
    r = await act(env, alice, server, {"createImage": {}}, expect=400)
    assert fault(r, "badRequest", 400) == "'name' is a required property"
    r = await act(env, alice, server, {"createImage": {"name": " x"}}, expect=400)
    assert "The name must be" in fault(r, "badRequest", 400)
    r = await act(env, alice, server, {"createImage": {"name": "x", "metadata": {"k": 1}}}, expect=400)
    assert fault(r, "badRequest", 400) == "Invalid input for field/attribute metadata. Value: {'k': 1}. " \
                                          "1 is not of type 'string'"
    locked = await make_instance(cloud, alice, locked=True, locked_by="admin")
    await serve(cloud)
    await act(env, alice, locked, {"createImage": {"name": "locked-is-fine"}})  # Nova: no lock check


async def test_console_output(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    recorder = await serve(cloud)
    recorder.console = "line1\x07\nline2\x1b[0m\n"
    server = await make_instance(cloud, alice)
    r = await act(env, alice, server, {"os-getConsoleOutput": {"length": 5}}, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Instance {server} is not ready"  # agent not up
    await heartbeat(cloud)
    r = await act(env, alice, server, {"os-getConsoleOutput": {"length": "5"}}, expect=200)
    assert r.json() == {"output": "line1\nline2[0m\n"}
    assert recorder.calls[-1][1]["tail_length"] == 5
    await act(env, alice, server, {"os-getConsoleOutput": {"length": -1}}, expect=200)
    assert recorder.calls[-1][1]["tail_length"] is None
    await act(env, alice, server, {"os-getConsoleOutput": {}}, expect=200)
    r = await act(env, alice, server, {"os-getConsoleOutput": {"length": -2}}, expect=400)
    assert fault(r, "badRequest", 400) == "Invalid input for field/attribute length. Value: -2. " \
                                          "-2 is less than the minimum of -1"
    r = await act(env, alice, server, {"os-getConsoleOutput": {"length": "x"}}, expect=400)
    assert "does not match '^-?[0-9]+$'" in fault(r, "badRequest", 400)
    unscheduled = await make_instance(cloud, alice, vm_state="building", host=None, launched=False)
    r = await act(env, alice, unscheduled, {"os-getConsoleOutput": {}}, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Instance {unscheduled} is not ready"
    rita = await env.user("rita", "alpha", role="reader")
    await act(env, rita, server, {"os-getConsoleOutput": {}}, expect=403)
    assert await action_names(cloud, server) == []


async def test_rebuild_is_delegated(cloud: Cloud, env: ComputeEnv) -> None:
    servers = importlib.import_module("kumo.compute.api.servers")
    if not hasattr(servers, "rebuild_server"):
        pytest.skip("kumo.compute.api.servers.rebuild_server is not written yet")
    alice = await env.user("alice", "alpha")
    server = await make_instance(cloud, alice)
    r = await act(env, alice, server, {"rebuild": "not-an-object"}, expect=400)
    assert "is not of type 'object'" in fault(r, "badRequest", 400)
