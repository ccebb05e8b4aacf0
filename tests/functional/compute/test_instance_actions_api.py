"""``/servers/{id}/os-instance-actions``: what `openstack server event list/show` reads, per microversion."""

from __future__ import annotations

import datetime as dt
import hashlib

from computetest import ComputeEnv, fault
from kumotest import Cloud
from sqlalchemy import select, update
from test_server_actions import act, make_instance, serve

from kumo.compute.models import Instance, InstanceAction, InstanceActionEvent
from kumo.core.db import utcnow

KEYS = {"action", "instance_uuid", "request_id", "user_id", "project_id", "start_time", "message"}


async def _stopped_with_event(cloud: Cloud, env: ComputeEnv) -> tuple[str, str]:
    """A server with a ``stop`` action whose agent event failed on ``fakehost``; returns (server, request id)."""
    alice = await env.user("alice", "alpha")
    await serve(cloud)
    server = await make_instance(cloud, alice)
    r = await act(env, alice, server, {"os-stop": None})
    request_id = r.headers["x-openstack-request-id"]
    async with cloud.node.db.session() as s:
        action = await s.scalar(select(InstanceAction.id).where(InstanceAction.request_id == request_id))
        assert action is not None
        now = utcnow()
        s.add(InstanceActionEvent(action_id=action, event="compute_stop_instance", start_time=now,
                                  finish_time=now, result="Error", details="guest refused", host="fakehost"))
    return server, request_id


async def test_list_and_show_across_versions(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    admin = await env.admin()
    server, request_id = await _stopped_with_event(cloud, env)
    r = await env.call(alice, "GET", f"/servers/{server}/os-instance-actions")
    [action] = r.json()["instanceActions"]
    assert set(action) == KEYS
    assert (action["action"], action["request_id"], action["user_id"]) == ("stop", request_id, alice.user_id)
    assert (action["instance_uuid"], action["project_id"], action["message"]) == (server, alice.project_id, None)
    assert dt.datetime.strptime(action["start_time"], "%Y-%m-%dT%H:%M:%S.%f")

    path = f"/servers/{server}/os-instance-actions/{request_id}"
    assert "events" not in (await env.call(alice, "GET", path)).json()["instanceAction"]  # 2.1: admin only
    [event] = (await env.call(admin, "GET", path)).json()["instanceAction"]["events"]
    assert set(event) == {"event", "start_time", "finish_time", "result", "traceback"}
    assert (event["event"], event["result"], event["traceback"]) == ("compute_stop_instance", "Error", "guest refused")

    [event] = (await env.call(alice, "GET", path, version="2.51")).json()["instanceAction"]["events"]
    assert set(event) == {"event", "start_time", "finish_time", "result"}
    body = (await env.call(alice, "GET", path, version="2.58")).json()["instanceAction"]
    assert set(body) == KEYS | {"updated_at", "events"}

    host_id = hashlib.sha224((alice.project_id + "fakehost").encode()).hexdigest()
    [event] = (await env.call(alice, "GET", path, version="2.62")).json()["instanceAction"]["events"]
    assert set(event) == {"event", "start_time", "finish_time", "result", "hostId"}
    assert event["hostId"] == host_id
    [event] = (await env.call(admin, "GET", path, version="2.62")).json()["instanceAction"]["events"]
    assert (event["host"], event["hostId"]) == ("fakehost", host_id)
    assert "details" not in event
    [event] = (await env.call(admin, "GET", path, version="2.84")).json()["instanceAction"]["events"]
    assert event["details"] == "guest refused"
    [event] = (await env.call(alice, "GET", path, version="2.84")).json()["instanceAction"]["events"]
    assert "details" not in event and "traceback" not in event


async def test_missing_action_other_project_and_reader(cloud: Cloud, env: ComputeEnv) -> None:
    server, request_id = await _stopped_with_event(cloud, env)
    alice = await env.user("alice", "alpha")
    r = await env.call(alice, "GET", f"/servers/{server}/os-instance-actions/req-nope", expect=404)
    assert fault(r, "itemNotFound", 404) == "Action req-nope not found"
    bob = await env.user("bob", "beta")
    r = await env.call(bob, "GET", f"/servers/{server}/os-instance-actions", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance {server} could not be found."
    rita = await env.user("rita", "alpha", role="reader")
    await env.call(rita, "GET", f"/servers/{server}/os-instance-actions")
    await env.call(rita, "GET", f"/servers/{server}/os-instance-actions/{request_id}")


async def test_deleted_server_readable_from_2_21(cloud: Cloud, env: ComputeEnv) -> None:
    server, _ = await _stopped_with_event(cloud, env)
    alice = await env.user("alice", "alpha")
    async with cloud.node.db.session() as s:
        await s.execute(update(Instance).where(Instance.uuid == server).values(deleted_at=utcnow(),
                                                                                vm_state="deleted"))
    await env.call(alice, "GET", f"/servers/{server}/os-instance-actions", version="2.20", expect=404)
    r = await env.call(alice, "GET", f"/servers/{server}/os-instance-actions", version="2.21")
    assert [a["action"] for a in r.json()["instanceActions"]] == ["stop"]


async def test_paging_and_time_filters_from_2_58(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    await serve(cloud)
    server = await make_instance(cloud, alice, locked=False)
    ids = []
    for body in ({"lock": None}, {"unlock": None}, {"os-stop": None}):
        ids.append((await act(env, alice, server, body)).headers["x-openstack-request-id"])
    base = f"/servers/{server}/os-instance-actions"
    r = await env.call(alice, "GET", base, version="2.58", params={"limit": "2"})
    body = r.json()
    assert [a["request_id"] for a in body["instanceActions"]] == ids[::-1][:2]
    [link] = body["links"]
    assert link["rel"] == "next"
    assert f"/v2.1/servers/{server}/os-instance-actions?limit=2&marker={ids[1]}" in link["href"]
    r = await env.call(alice, "GET", base, version="2.58", params={"limit": "2", "marker": ids[1]})
    assert [a["request_id"] for a in r.json()["instanceActions"]] == [ids[0]]
    assert "links" not in r.json()
    r = await env.call(alice, "GET", base, version="2.58", params={"marker": "req-x"}, expect=400)
    assert fault(r, "badRequest", 400) == "Marker req-x could not be found."
    await env.call(alice, "GET", base, version="2.57", params={"bogus": "1"})
    r = await env.call(alice, "GET", base, version="2.58", params={"bogus": "1"}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('bogus' was unexpected)"
    await env.call(alice, "GET", base, version="2.65", params={"changes-before": "2020-01-01T00:00:00Z"},
                   expect=400)
    future = (utcnow() + dt.timedelta(hours=1)).isoformat()
    r = await env.call(alice, "GET", base, version="2.58", params={"changes-since": future})
    assert r.json()["instanceActions"] == []
    r = await env.call(alice, "GET", base, version="2.66", params={"changes-before": future})
    assert len(r.json()["instanceActions"]) == 3
    r = await env.call(alice, "GET", base, version="2.66",
                       params={"changes-since": future, "changes-before": "2020-01-01T00:00:00"}, expect=400)
    assert fault(r, "badRequest", 400) == "The value of changes-since must be less than or equal to changes-before."
    r = await env.call(alice, "GET", base, version="2.58", params={"changes-since": "yesterday"}, expect=400)
    assert "'yesterday' is not a 'date-time'" in fault(r, "badRequest", 400)
    r = await env.call(alice, "GET", base, version="2.58", params={"limit": "0"})
    assert r.json()["instanceActions"] == []
