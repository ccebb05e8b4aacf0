"""Nova's services (``os-services``): list per microversion, up/down, enable/disable, force down, delete."""

from __future__ import annotations

import datetime as dt
import uuid

from computetest import ComputeEnv, fault
from kumotest import Cloud

from kumo.compute.models import ComputeNode, Instance
from kumo.core.db import utcnow
from kumo.core.models import ServiceRecord


async def add_service(cloud: Cloud, host: str, binary: str = "nova-compute", *, age: float = 0,
                      **fields: object) -> str:
    row_id = uuid.uuid4().hex
    seen = utcnow() - dt.timedelta(seconds=age)
    async with cloud.node.db.session() as s:
        s.add(ServiceRecord(id=row_id, host=host, binary=binary, topic="", role="compute", report_count=1,
                            created_at=seen, updated_at=seen, **fields))
    return row_id


async def add_instance(cloud: Cloud, host: str, project_id: str = "p1", **fields: object) -> str:
    server = str(uuid.uuid4())
    async with cloud.node.db.session() as s:
        s.add(Instance(uuid=server, project_id=project_id, user_id="u1", display_name=f"vm-{server[:4]}",
                       vm_state="active", host=host, reservation_id="r-1", flavor={}, **fields))
    return server


def by_host(services: list[dict[str, object]]) -> dict[tuple[object, object], dict[str, object]]:
    """The services of this test's hosts (the fixture's own host runs real agents too)."""
    return {(s["host"], s["binary"]): s for s in services if s["host"] != "test-host"}


async def test_list_per_microversion_with_state_and_zone(env: ComputeEnv) -> None:
    admin = await env.admin()
    up = await add_service(env.cloud, "c1")
    await add_service(env.cloud, "c2", age=3600, disabled=True, disabled_reason="broken")
    await add_service(env.cloud, "c3", forced_down=True)
    await add_service(env.cloud, "ctl", "nova-conductor")
    await add_service(env.cloud, "ctl", "kumo-api")

    old = by_host((await env.call(admin, "GET", "/os-services")).json()["services"])
    assert ("ctl", "kumo-api") not in old
    assert set(old) == {("c1", "nova-compute"), ("c2", "nova-compute"), ("c3", "nova-compute"),
                        ("ctl", "nova-conductor")}
    c1 = old[("c1", "nova-compute")]
    assert set(c1) == {"id", "binary", "host", "zone", "status", "state", "updated_at", "disabled_reason"}
    assert isinstance(c1["id"], int)
    assert (c1["zone"], c1["status"], c1["state"], c1["disabled_reason"]) == ("nova", "enabled", "up", None)
    assert dt.datetime.strptime(str(c1["updated_at"]), "%Y-%m-%dT%H:%M:%S.%f")
    c2 = old[("c2", "nova-compute")]
    assert (c2["status"], c2["state"], c2["disabled_reason"]) == ("disabled", "down", "broken")
    assert old[("c3", "nova-compute")]["state"] == "down"
    assert old[("ctl", "nova-conductor")]["zone"] == "internal"

    v211 = by_host((await env.call(admin, "GET", "/os-services", version="2.11")).json()["services"])
    assert v211[("c3", "nova-compute")]["forced_down"] is True
    assert v211[("c1", "nova-compute")]["forced_down"] is False

    v253 = by_host((await env.call(admin, "GET", "/os-services", version="2.53")).json()["services"])
    assert v253[("c1", "nova-compute")]["id"] == str(uuid.UUID(up))
    assert v253[("c1", "nova-compute")]["id"] != old[("c1", "nova-compute")]["id"]


async def test_filters_and_strict_query(env: ComputeEnv) -> None:
    admin = await env.admin()
    await add_service(env.cloud, "c1")
    await add_service(env.cloud, "ctl", "nova-scheduler")
    r = await env.call(admin, "GET", "/os-services", params={"binary": "nova-scheduler"})
    assert sorted(s["host"] for s in r.json()["services"]) == ["ctl", "test-host"]
    r = await env.call(admin, "GET", "/os-services", params={"host": "c1", "binary": "nova-compute"})
    assert [s["host"] for s in r.json()["services"]] == ["c1"]
    await env.call(admin, "GET", "/os-services", params={"bogus": "1"}, version="2.74")
    r = await env.call(admin, "GET", "/os-services", params={"bogus": "1"}, version="2.75", expect=400)
    assert "bogus" in fault(r, "badRequest", 400)


async def test_members_are_refused(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    sid = await add_service(env.cloud, "c1")
    await env.call(alice, "GET", "/os-services", expect=403)
    await env.call(alice, "PUT", "/os-services/disable", json={"host": "c1", "binary": "nova-compute"}, expect=403)
    await env.call(alice, "PUT", f"/os-services/{uuid.UUID(sid)}", version="2.53", json={"status": "disabled"},
                   expect=403)
    await env.call(alice, "DELETE", f"/os-services/{uuid.UUID(sid)}", version="2.53", expect=403)


async def test_legacy_actions(env: ComputeEnv) -> None:
    admin = await env.admin()
    await add_service(env.cloud, "c1")
    body = {"host": "c1", "binary": "nova-compute"}
    r = await env.call(admin, "PUT", "/os-services/disable", json=body)
    assert r.json() == {"service": {"host": "c1", "binary": "nova-compute", "status": "disabled"}}
    r = await env.call(admin, "PUT", "/os-services/disable-log-reason", json={**body, "disabled_reason": "maint"})
    assert r.json() == {"service": {"host": "c1", "binary": "nova-compute", "status": "disabled",
                                    "disabled_reason": "maint"}}
    listed = (await env.call(admin, "GET", "/os-services", params={"host": "c1"})).json()["services"][0]
    assert (listed["status"], listed["disabled_reason"]) == ("disabled", "maint")
    r = await env.call(admin, "PUT", "/os-services/enable", json=body)
    assert r.json() == {"service": {"host": "c1", "binary": "nova-compute", "status": "enabled"}}
    listed = (await env.call(admin, "GET", "/os-services", params={"host": "c1"})).json()["services"][0]
    assert (listed["status"], listed["disabled_reason"], listed["state"]) == ("enabled", None, "up")

    r = await env.call(admin, "PUT", "/os-services/disable-log-reason", json=body, expect=400)
    assert fault(r, "badRequest", 400) == "Missing disabled reason field"
    r = await env.call(admin, "PUT", "/os-services/force-down", json=body, expect=404)
    assert fault(r, "itemNotFound", 404) == "Unknown action"
    r = await env.call(admin, "PUT", "/os-services/force-down", json={**body, "forced_down": True}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('forced_down' was unexpected)"
    r = await env.call(admin, "PUT", "/os-services/force-down", version="2.11", json=body, expect=400)
    assert fault(r, "badRequest", 400) == "Missing forced_down field"
    r = await env.call(admin, "PUT", "/os-services/force-down", version="2.11", json={**body, "forced_down": True})
    assert r.json() == {"service": {"host": "c1", "binary": "nova-compute", "forced_down": True}}
    listed = (await env.call(admin, "GET", "/os-services", version="2.11", params={"host": "c1"})).json()
    assert (listed["services"][0]["state"], listed["services"][0]["forced_down"]) == ("down", True)

    r = await env.call(admin, "PUT", "/os-services/disable", json={"host": "nope", "binary": "nova-compute"},
                       expect=404)
    assert fault(r, "itemNotFound", 404) == "Could not find binary nova-compute on host nope."
    r = await env.call(admin, "PUT", "/os-services/disable", json={"host": "c1", "binary": "nova-scheduler"},
                       expect=400)
    assert fault(r, "badRequest", 400) == ("Updating a nova-scheduler service is not supported. Only nova-compute "
                                           "services can be updated.")
    r = await env.call(admin, "PUT", "/os-services/disable", json={"binary": "nova-compute"}, expect=400)
    assert fault(r, "badRequest", 400) == "'host' is a required property"
    r = await env.call(admin, "PUT", "/os-services/disable", json={"host": "a b", "binary": "nova-compute"},
                       expect=400)
    assert "does not match" in fault(r, "badRequest", 400)


async def test_update_by_uuid(env: ComputeEnv) -> None:
    admin = await env.admin()
    sid = str(uuid.UUID(await add_service(env.cloud, "c1")))
    r = await env.call(admin, "PUT", f"/os-services/{sid}", version="2.53",
                       json={"status": "disabled", "disabled_reason": "maintenance"})
    service = r.json()["service"]
    assert service["id"] == sid
    assert (service["status"], service["disabled_reason"], service["state"], service["zone"]) == \
        ("disabled", "maintenance", "up", "nova")
    assert service["forced_down"] is False
    r = await env.call(admin, "PUT", f"/os-services/{sid}", version="2.53", json={"forced_down": "yes"})
    assert (r.json()["service"]["forced_down"], r.json()["service"]["state"]) == (True, "down")
    r = await env.call(admin, "PUT", f"/os-services/{sid}", version="2.53",
                       json={"status": "enabled", "forced_down": False})
    assert (r.json()["service"]["status"], r.json()["service"]["disabled_reason"]) == ("enabled", None)
    assert r.json()["service"]["state"] == "up"

    r = await env.call(admin, "PUT", f"/os-services/{sid}", version="2.53",
                       json={"status": "enabled", "disabled_reason": "x"}, expect=400)
    assert fault(r, "badRequest", 400) == "Specifying 'disabled_reason' with status 'enabled' is invalid."
    r = await env.call(admin, "PUT", f"/os-services/{sid}", version="2.53", json={}, expect=400)
    assert fault(r, "badRequest", 400) == ("No updates were requested. Fields 'status' or 'forced_down' should be "
                                           "specified.")
    r = await env.call(admin, "PUT", f"/os-services/{sid}", version="2.53", json={"status": "off"}, expect=400)
    assert "is not one of ['enabled', 'disabled']" in fault(r, "badRequest", 400)
    r = await env.call(admin, "PUT", "/os-services/disable", version="2.53", json={"status": "disabled"},
                       expect=400)
    assert fault(r, "badRequest", 400) == "Invalid uuid disable"
    missing = str(uuid.uuid4())
    r = await env.call(admin, "PUT", f"/os-services/{missing}", version="2.53", json={"status": "disabled"},
                       expect=404)
    assert fault(r, "itemNotFound", 404) == f"Service {missing} could not be found."
    conductor = str(uuid.UUID(await add_service(env.cloud, "ctl", "nova-conductor")))
    r = await env.call(admin, "PUT", f"/os-services/{conductor}", version="2.53", json={"status": "disabled"},
                       expect=400)
    assert "Only nova-compute services can be updated." in fault(r, "badRequest", 400)


async def test_delete(env: ComputeEnv) -> None:
    admin = await env.admin()
    busy = str(uuid.UUID(await add_service(env.cloud, "c1")))
    server = await add_instance(env.cloud, "c1")
    r = await env.call(admin, "DELETE", f"/os-services/{busy}", version="2.53", expect=409)
    assert fault(r, "conflictingRequest", 409) == ("Unable to delete compute service that is hosting instances. "
                                                   "Migrate or delete the instances first.")
    async with env.cloud.node.db.session() as s:
        row = await s.get(Instance, server)
        assert row is not None
        row.deleted_at = utcnow()
        s.add(ComputeNode(uuid=str(uuid.uuid4()), host="c1", hypervisor_hostname="c1.local", hypervisor_type="QEMU",
                          vcpus=4, memory_mb=4096, local_gb=40))
    await env.call(admin, "DELETE", f"/os-services/{busy}", version="2.53", expect=204)
    await env.call(admin, "DELETE", f"/os-services/{busy}", version="2.53", expect=404)
    hypervisors = (await env.call(admin, "GET", "/os-hypervisors")).json()["hypervisors"]
    assert [h for h in hypervisors if h["hypervisor_hostname"] == "c1.local"] == []

    await add_service(env.cloud, "ctl", "nova-scheduler")
    legacy = (await env.call(admin, "GET", "/os-services", params={"host": "ctl"})).json()["services"][0]["id"]
    await env.call(admin, "DELETE", f"/os-services/{legacy}", expect=204)
    assert (await env.call(admin, "GET", "/os-services", params={"host": "ctl"})).json()["services"] == []
    r = await env.call(admin, "DELETE", "/os-services/abc", expect=400)
    assert fault(r, "badRequest", 400) == "Invalid input received: id must be an integer"
    r = await env.call(admin, "DELETE", "/os-services/abc", version="2.53", expect=400)
    assert fault(r, "badRequest", 400) == "Invalid uuid abc"
    r = await env.call(admin, "DELETE", "/os-services/12345", expect=404)
    assert fault(r, "itemNotFound", 404) == "Service 12345 could not be found."
