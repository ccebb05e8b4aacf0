"""``POST /servers/{id}/action``: the lifecycle actions, their states, locks, policy and races.

No compute agent runs in this suite: instances are written straight into
the database in the state a test needs, and a :class:`Recorder` serves the
``compute.fakehost`` bus topic to observe the casts the API sends. The
helpers here are shared by the other server-action test modules.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from computetest import Caller, ComputeEnv, fault
from kumotest import Cloud
from sqlalchemy import select

from kumo.compute.models import Instance, InstanceAction
from kumo.core.db import utcnow
from kumo.core.models import ServiceRecord

HOST = "fakehost"


class Recorder:
    """A fake compute agent: every method records its arguments (console output answers ``console``)."""

    def __init__(self, console: str = "boot ok\n") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.console = console

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def record(*args: Any, **kwargs: Any) -> Any:
            if args:  # called directly as a ConductorAPI / ComputeAgentAPI stand-in
                kwargs = {"ctx": args[0], "instance_uuid": args[1], "flavor": args[2], **kwargs}
            self.calls.append((name, kwargs))
            return self.console if name == "get_console_output" else None

        return record

    async def wait(self, count: int = 1) -> list[tuple[str, dict[str, Any]]]:
        for _ in range(200):
            if len(self.calls) >= count:
                return self.calls
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {count} casts, got {self.calls}")


async def serve(cloud: Cloud, topic: str = f"compute.{HOST}") -> Recorder:
    recorder = Recorder()
    await cloud.node.bus.serve(topic, recorder)
    return recorder


async def heartbeat(cloud: Cloud, host: str = HOST) -> None:
    """Make ``host``'s compute agent look up (a fresh nova-compute heartbeat)."""
    async with cloud.node.db.session() as s:
        s.add(ServiceRecord(host=host, binary="nova-compute", topic=f"compute.{host}", role="compute",
                            updated_at=utcnow()))


async def make_instance(cloud: Cloud, owner: Caller, *, vm_state: str = "active", task_state: str | None = None,
                        host: str | None = HOST, launched: bool = True, flavor_id: str = "1",
                        **fields: Any) -> str:
    flavor = (await cloud.node.flavors.get(None, flavor_id)).snapshot()
    instance_uuid = str(uuid.uuid4())
    async with cloud.node.db.session() as s:
        s.add(Instance(uuid=instance_uuid, project_id=owner.project_id, user_id=owner.user_id,
                       display_name="vm", vm_state=vm_state, task_state=task_state, power_state=1, host=host,
                       node=host, flavor=flavor, image_ref=fields.pop("image_ref", None),
                       reservation_id="r-test", launched_at=utcnow() if launched else None, **fields))
    return instance_uuid


async def instance(cloud: Cloud, instance_uuid: str) -> Instance:
    async with cloud.node.db.session() as s:
        row = await s.scalar(select(Instance).where(Instance.uuid == instance_uuid))
        assert row is not None
        return row


async def action_names(cloud: Cloud, instance_uuid: str) -> list[str]:
    async with cloud.node.db.session() as s:
        rows = await s.scalars(select(InstanceAction.action).where(InstanceAction.instance_uuid == instance_uuid)
                               .order_by(InstanceAction.id))
        return list(rows)


async def act(env: ComputeEnv, who: Caller, server: str, body: Any, *, expect: int | None = 202,
              version: str | None = None) -> Any:
    return await env.call(who, "POST", f"/servers/{server}/action", json=body, expect=expect, version=version)


# Nova's action key -> (vm_state it starts from, task state set, instance action, cast method, vm_state refused in).
SIMPLE = {
    "os-stop": ("active", "powering-off", "stop", "stop_instance", "stopped"),
    "os-start": ("stopped", "powering-on", "start", "start_instance", "active"),
    "pause": ("active", "pausing", "pause", "pause_instance", "paused"),
    "unpause": ("paused", "unpausing", "unpause", "unpause_instance", "active"),
    "suspend": ("active", "suspending", "suspend", "suspend_instance", "stopped"),
    "resume": ("suspended", "resuming", "resume", "resume_instance", "active"),
    "revertResize": ("resized", "resize_reverting", "revertResize", "revert_resize", "active"),
}
NOVA_NAMES = {"os-stop": "stop", "os-start": "start"}


@pytest.mark.parametrize("key", list(SIMPLE))
async def test_simple_action_sets_task_records_and_casts(cloud: Cloud, env: ComputeEnv, key: str) -> None:
    start, task, action, method, _ = SIMPLE[key]
    alice = await env.user("alice", "alpha")
    recorder = await serve(cloud)
    server = await make_instance(cloud, alice, vm_state=start)
    r = await act(env, alice, server, {key: None})
    assert r.content == b""
    row = await instance(cloud, server)
    assert (row.vm_state, row.task_state) == (start, task)
    assert await action_names(cloud, server) == [action]
    calls = await recorder.wait()
    assert calls[0][0] == method
    assert calls[0][1]["instance_uuid"] == server
    assert calls[0][1]["ctx"]["request_id"] == r.headers["x-openstack-request-id"]


@pytest.mark.parametrize("key", list(SIMPLE))
async def test_simple_action_refused_in_wrong_state(cloud: Cloud, env: ComputeEnv, key: str) -> None:
    *_, wrong = SIMPLE[key]
    alice = await env.user("alice", "alpha")
    server = await make_instance(cloud, alice, vm_state=wrong)
    r = await act(env, alice, server, {key: {}}, expect=409)
    name = NOVA_NAMES.get(key, key)
    assert fault(r, "conflictingRequest", 409) == f"Cannot '{name}' instance {server} while it is in vm_state {wrong}"
    assert await action_names(cloud, server) == []


async def test_busy_instance_is_refused_with_task_state(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    server = await make_instance(cloud, alice, task_state="pausing")
    r = await act(env, alice, server, {"os-stop": None}, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Cannot 'stop' instance {server} while it is in task_state pausing"


async def test_stop_without_host_is_not_ready(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    server = await make_instance(cloud, alice, host=None)
    r = await act(env, alice, server, {"os-stop": None}, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Instance {server} is not ready"


async def test_never_launched_instance_cannot_pause(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    server = await make_instance(cloud, alice, launched=False)
    r = await act(env, alice, server, {"pause": None}, expect=409)
    assert "while it is in launched_at None" in fault(r, "conflictingRequest", 409)


async def test_confirm_resize_answers_204(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    recorder = await serve(cloud)
    server = await make_instance(cloud, alice, vm_state="resized")
    r = await act(env, alice, server, {"confirmResize": None}, expect=204)
    assert r.content == b""
    assert (await instance(cloud, server)).task_state == "resize_confirming"
    assert (await recorder.wait())[0][0] == "confirm_resize"
    assert await action_names(cloud, server) == ["confirmResize"]
    other = await make_instance(cloud, alice)
    r = await act(env, alice, other, {"confirmResize": None}, expect=409)
    assert fault(r, "conflictingRequest", 409) == \
        f"Cannot 'confirmResize' instance {other} while it is in vm_state active"


@pytest.mark.parametrize(("kind", "task"), [("SOFT", "rebooting"), ("hard", "rebooting_hard")])
async def test_reboot(cloud: Cloud, env: ComputeEnv, kind: str, task: str) -> None:
    alice = await env.user("alice", "alpha")
    recorder = await serve(cloud)
    server = await make_instance(cloud, alice)
    await act(env, alice, server, {"reboot": {"type": kind}})
    assert (await instance(cloud, server)).task_state == task
    name, args = (await recorder.wait())[0]
    assert (name, args["reboot_type"]) == ("reboot_instance", kind.upper())
    assert await action_names(cloud, server) == ["reboot"]


async def test_hard_reboot_overrides_soft_reboot_and_works_when_stopped(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    await serve(cloud)
    rebooting = await make_instance(cloud, alice, task_state="rebooting")
    r = await act(env, alice, rebooting, {"reboot": {"type": "SOFT"}}, expect=409)
    assert "while it is in task_state rebooting" in fault(r, "conflictingRequest", 409)
    await act(env, alice, rebooting, {"reboot": {"type": "HARD"}})
    assert (await instance(cloud, rebooting)).task_state == "rebooting_hard"
    stopped = await make_instance(cloud, alice, vm_state="stopped")
    r = await act(env, alice, stopped, {"reboot": {"type": "SOFT"}}, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Cannot 'reboot' instance {stopped} while it is in vm_state stopped"
    await act(env, alice, stopped, {"reboot": {"type": "HARD"}})


@pytest.mark.parametrize(("body", "message"), [
    ({"reboot": {}}, "'type' is a required property"),
    ({"reboot": {"type": "WARM"}}, "Invalid input for field/attribute type. Value: WARM. 'WARM' is not one of "
                                   "['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"),
    ({"reboot": {"type": "HARD", "force": True}}, "Additional properties are not allowed ('force' was unexpected)"),
    ({"reboot": "HARD"}, "Invalid input for field/attribute reboot. Value: HARD. \"HARD\" is not of type 'object'"),
    ({"frobnicate": {}}, "There is no such action: frobnicate"),
    ({"os-stop": None, "os-start": None}, "Malformed request body"),
    ({}, "Malformed request body"),
    ([], "Malformed request body"),
])
async def test_bad_bodies(cloud: Cloud, env: ComputeEnv, body: Any, message: str) -> None:
    alice = await env.user("alice", "alpha")
    server = await make_instance(cloud, alice)
    r = await act(env, alice, server, body, expect=400)
    assert fault(r, "badRequest", 400) == message


async def test_malformed_json_and_unknown_action_on_missing_server(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    server = await make_instance(cloud, alice)
    r = await env.call(alice, "POST", f"/servers/{server}/action", content=b"{nope",
                       headers={"Content-Type": "application/json"}, expect=400)
    assert fault(r, "badRequest", 400) == "Malformed request body"
    r = await env.call(alice, "POST", f"/servers/{server}/action", content=b"", expect=400)
    assert fault(r, "badRequest", 400) == "Malformed request body"
    missing = str(uuid.uuid4())
    await act(env, alice, missing, {"frobnicate": None}, expect=400)
    r = await act(env, alice, missing, {"os-stop": None}, expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance {missing} could not be found."


async def test_other_project_gets_404_reader_gets_403(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    bob = await env.user("bob", "beta")
    rita = await env.user("rita", "alpha", role="reader")
    server = await make_instance(cloud, alice)
    r = await act(env, bob, server, {"os-stop": None}, expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance {server} could not be found."
    r = await act(env, rita, server, {"os-stop": None}, expect=403)
    assert "os_compute_api:servers:stop" in fault(r, "forbidden", 403)
    r = await act(env, rita, server, {"pause": None}, expect=403)
    assert "os-pause-server:pause" in fault(r, "forbidden", 403)
    assert (await instance(cloud, server)).task_state is None
    await act(env, await env.admin(), server, {"os-stop": None})


async def test_two_concurrent_stops_one_wins(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    recorder = await serve(cloud)
    server = await make_instance(cloud, alice)
    results = await asyncio.gather(*(act(env, alice, server, {"os-stop": None}, expect=None) for _ in range(2)))
    assert sorted(r.status_code for r in results) == [202, 409]
    loser = next(r for r in results if r.status_code == 409)
    assert fault(loser, "conflictingRequest", 409) == \
        f"Cannot 'stop' instance {server} while it is in task_state powering-off"
    assert await action_names(cloud, server) == ["stop"]
    await recorder.wait()
    await asyncio.sleep(0.05)
    assert len(recorder.calls) == 1


async def test_reset_state_is_admin_only_and_recorded(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    admin = await env.admin()
    server = await make_instance(cloud, alice, vm_state="error", task_state="rebuilding")
    r = await act(env, alice, server, {"os-resetState": {"state": "active"}}, expect=403)
    assert "os-admin-actions:reset_state" in fault(r, "forbidden", 403)
    r = await act(env, admin, server, {"os-resetState": {"state": "paused"}}, expect=400)
    assert "'paused' is not one of ['active', 'error']" in fault(r, "badRequest", 400)
    await act(env, admin, server, {"os-resetState": {"state": "active"}})
    row = await instance(cloud, server)
    assert (row.vm_state, row.task_state) == ("active", None)
    await act(env, admin, server, {"os-resetState": {"state": "error"}})
    assert (await instance(cloud, server)).vm_state == "error"
    assert await action_names(cloud, server) == ["resetState", "resetState"]
