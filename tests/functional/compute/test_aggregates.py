"""Host aggregates (``os-aggregates``) and the availability zones they make.

CRUD and views per microversion, Nova's 400/404/409 rules for names, zones
and hosts, admin-only policy, zones in ``os-availability-zone`` and
``os-services``, and instances booted into a zone landing only on its hosts.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from computetest import ComputeEnv, fault
from kumotest import Cloud, cloud_on
from test_servers_support import make_image

from kumo.compute.models import Instance
from kumo.core.db import utcnow
from kumo.core.models import ServiceRecord

HOST = "test-host"  # the fixture's own fake compute host
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


async def create(env: ComputeEnv, name: str, zone: str | None = None, *, version: str | None = None,
                 expect: int = 200) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if zone is not None:
        body["availability_zone"] = zone
    r = await env.call(await env.admin(), "POST", "/os-aggregates", json={"aggregate": body}, version=version,
                       expect=expect)
    return r.json()  # type: ignore[no-any-return]


async def action(env: ComputeEnv, agg_id: int | str, body: dict[str, Any], *, expect: int = 200,
                 version: str | None = None) -> Any:
    r = await env.call(await env.admin(), "POST", f"/os-aggregates/{agg_id}/action", json=body, expect=expect,
                       version=version)
    return r


async def add_compute(cloud: Cloud, host: str, disabled: bool = False) -> None:
    """A heartbeating ``nova-compute`` service with no agent behind it."""
    async with cloud.node.db.session() as s:
        s.add(ServiceRecord(id=uuid.uuid4().hex, host=host, binary="nova-compute", disabled=disabled,
                            created_at=utcnow(), updated_at=utcnow()))


async def add_instance(cloud: Cloud, host: str) -> None:
    async with cloud.node.db.session() as s:
        s.add(Instance(uuid=str(uuid.uuid4()), project_id="p1", user_id="u1", display_name="vm", vm_state="active",
                       host=host, reservation_id="r-1", flavor={}))


async def test_crud_views_and_microversions(env: ComputeEnv) -> None:
    admin = await env.admin()
    created = (await create(env, "rack-1", "az1"))["aggregate"]
    assert set(created) == {"availability_zone", "created_at", "deleted", "deleted_at", "id", "name", "updated_at"}
    assert (created["name"], created["availability_zone"], created["deleted"]) == ("rack-1", "az1", False)
    assert TIME.match(created["created_at"]) and created["updated_at"] is None and created["deleted_at"] is None
    agg_id = created["id"]
    assert isinstance(agg_id, int)

    shown = (await env.call(admin, "GET", f"/os-aggregates/{agg_id}")).json()["aggregate"]
    assert shown == {**created, "hosts": [], "metadata": {"availability_zone": "az1"}}
    at_241 = (await env.call(admin, "GET", f"/os-aggregates/{agg_id}", version="2.41")).json()["aggregate"]
    assert uuid.UUID(at_241["uuid"]) and at_241["id"] == agg_id
    assert "uuid" in (await create(env, "rack-2", version="2.41"))["aggregate"]
    listed = (await env.call(admin, "GET", "/os-aggregates", version="2.41")).json()["aggregates"]
    assert (listed[0]["name"], listed[0]["availability_zone"], listed[0]["uuid"]) == ("rack-1", "az1", at_241["uuid"])
    assert [a["name"] for a in listed] == ["rack-1", "rack-2"]
    assert "uuid" not in (await env.call(admin, "GET", "/os-aggregates")).json()["aggregates"][0]

    r = await env.call(admin, "PUT", f"/os-aggregates/{agg_id}",
                       json={"aggregate": {"name": "  rack-one ", "availability_zone": "az2"}})
    updated = r.json()["aggregate"]
    assert (updated["name"], updated["availability_zone"], updated["metadata"]) == ("rack-one", "az2",
                                                                                      {"availability_zone": "az2"})
    assert TIME.match(updated["updated_at"])

    r = await action(env, agg_id, {"set_metadata": {"metadata": {"ssd": "true", "gpu": "no"}}})
    assert r.json()["aggregate"]["metadata"] == {"availability_zone": "az2", "ssd": "true", "gpu": "no"}
    r = await action(env, agg_id, {"set_metadata": {"metadata": {"gpu": None, "never-there": None, "ssd": "x"}}})
    assert r.json()["aggregate"]["metadata"] == {"availability_zone": "az2", "ssd": "x"}

    r = await env.call(admin, "DELETE", f"/os-aggregates/{agg_id}")
    assert r.content == b""
    message = fault(await env.call(admin, "GET", f"/os-aggregates/{agg_id}", expect=None), "itemNotFound", 404)
    assert message == f"Aggregate {agg_id} could not be found."
    assert [a["name"] for a in (await env.call(admin, "GET", "/os-aggregates")).json()["aggregates"]] == ["rack-2"]


async def test_bad_input_and_name_conflicts(env: ComputeEnv) -> None:
    admin = await env.admin()
    agg_id = (await create(env, "rack", "az1"))["aggregate"]["id"]
    message = fault(await env.call(admin, "POST", "/os-aggregates", json={"aggregate": {"name": "rack"}},
                                   expect=None), "conflictingRequest", 409)
    assert message == "Aggregate rack already exists."
    other = (await create(env, "other"))["aggregate"]["id"]
    r = await env.call(admin, "PUT", f"/os-aggregates/{other}", json={"aggregate": {"name": "rack"}}, expect=409)
    assert fault(r, "conflictingRequest", 409) == "Aggregate rack already exists."

    cases: list[tuple[str, str, Any, str]] = [
        ("POST", "/os-aggregates", {"aggregate": {"name": " x "}},
         "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with "
         "whitespace."),
        ("POST", "/os-aggregates", {"aggregate": {"name": "x", "availability_zone": "bad:az"}},
         "Invalid input for field/attribute availability_zone. Value: bad:az. 'bad:az' is not valid under any of "
         "the given schemas"),
        ("POST", "/os-aggregates", {"aggregate": {"name": "x", "availability_zone": ""}}, "is not valid under any"),
        ("POST", "/os-aggregates", {"aggregate": {"name": "x" * 256}}, "is too long"),
        ("POST", "/os-aggregates", {"aggregate": {"name": "x", "foo": 1}},
         "Additional properties are not allowed ('foo' was unexpected)"),
        ("POST", "/os-aggregates", {"aggregate": {}}, "'name' is a required property"),
        ("PUT", f"/os-aggregates/{agg_id}", {"aggregate": {}},
         "Invalid input for field/attribute aggregate. Value: {}. {} is not valid under any of the given schemas"),
        ("PUT", "/os-aggregates/foo", {"aggregate": {"name": "y"}}, "Invalid input received: id must be an integer"),
        ("PUT", f"/os-aggregates/{agg_id}", {"aggregate": {"availability_zone": None}},
         f"Cannot update aggregate {agg_id}. Reason: Aggregate rack does not support empty named availability "
         "zone."),
        ("POST", f"/os-aggregates/{agg_id}/action", {"append_host": {"host": "h"}},
         "There is no such action: append_host"),
        ("POST", f"/os-aggregates/{agg_id}/action", {"add_host": {"host": "bad:host"}}, "does not match"),
        ("POST", f"/os-aggregates/{agg_id}/action", {"add_host": {"host": "a", "x": 1}},
         "Additional properties are not allowed ('x' was unexpected)"),
        ("POST", f"/os-aggregates/{agg_id}/action", {"set_metadata": {"metadata": {"": "v"}}},
         "Additional properties are not allowed ('' was unexpected)"),
        ("POST", f"/os-aggregates/{agg_id}/action", {"set_metadata": {"metadata": {"k": "v" * 256}}},
         "is too long"),
        ("POST", f"/os-aggregates/{agg_id}/action", {"set_metadata": {"metadata": {"availability_zone": None}}},
         f"Cannot update metadata of aggregate {agg_id}. Reason: Aggregate rack does not support empty named "
         "availability zone."),
        ("DELETE", "/os-aggregates/x1", None, "Invalid input received: id must be an integer"),
    ]
    for method, path, body, expected in cases:
        r = await env.call(admin, method, path, json=body, expect=None)
        assert expected in fault(r, "badRequest", 400), (method, path, body, r.text)

    # unknown aggregates are 404 everywhere
    for method, path, body in [("GET", "/os-aggregates/999", None), ("DELETE", "/os-aggregates/999", None),
                               ("PUT", "/os-aggregates/999", {"aggregate": {"name": "z"}}),
                               ("POST", "/os-aggregates/999/action", {"set_metadata": {"metadata": {"a": "b"}}})]:
        r = await env.call(admin, method, path, json=body, expect=None)
        assert fault(r, "itemNotFound", 404) == "Aggregate 999 could not be found."

    # 2.81 image pre-caching: not below 2.81, then validated and refused
    await env.call(admin, "POST", f"/os-aggregates/{agg_id}/images", json={"cache": []}, expect=404)
    image = str(uuid.uuid4())
    r = await env.call(admin, "POST", f"/os-aggregates/{agg_id}/images", version="2.81",
                       json={"cache": [{"id": image}, {"id": image}]}, expect=None)
    assert fault(r, "badRequest", 400) == "Duplicate images in request"
    r = await env.call(admin, "POST", "/os-aggregates/999/images", version="2.81",
                       json={"cache": [{"id": image}]}, expect=None)
    assert fault(r, "itemNotFound", 404) == "Aggregate 999 could not be found."
    r = await env.call(admin, "POST", f"/os-aggregates/{agg_id}/images", version="2.81",
                       json={"cache": [{"id": image}]}, expect=None)
    assert "not supported" in fault(r, "badRequest", 400)


async def test_hosts_and_zone_rules(env: ComputeEnv) -> None:
    admin = await env.admin()
    az1 = (await create(env, "rack-a", "az1"))["aggregate"]["id"]
    az2 = (await create(env, "rack-b", "az2"))["aggregate"]["id"]
    plain = (await create(env, "ssd-hosts"))["aggregate"]["id"]

    r = await action(env, az1, {"add_host": {"host": "nowhere"}}, expect=None)
    assert fault(r, "itemNotFound", 404) == "Compute host nowhere could not be found."
    r = await action(env, 999, {"add_host": {"host": HOST}}, expect=None)
    assert fault(r, "itemNotFound", 404) == "Aggregate 999 could not be found."

    added = (await action(env, az1, {"add_host": {"host": HOST}})).json()["aggregate"]
    assert added["hosts"] == [HOST] and added["availability_zone"] == "az1"
    r = await action(env, az1, {"add_host": {"host": HOST}}, expect=None)
    assert fault(r, "conflictingRequest", 409) == f"Aggregate {az1} already has host {HOST}."
    r = await action(env, az2, {"add_host": {"host": HOST}}, expect=None)
    assert fault(r, "conflictingRequest", 409) == \
        f"Cannot add host to aggregate {az2}. Reason: One or more hosts already in availability zone(s) ['az1']."
    assert (await action(env, plain, {"add_host": {"host": HOST}})).json()["aggregate"]["hosts"] == [HOST]

    # giving the zone-less aggregate a zone other than its host's is refused; the same zone is fine
    r = await env.call(admin, "PUT", f"/os-aggregates/{plain}", json={"aggregate": {"availability_zone": "az2"}},
                       expect=None)
    assert fault(r, "badRequest", 400) == \
        f"Cannot update aggregate {plain}. Reason: One or more hosts already in availability zone(s) ['az1']."
    r = await action(env, plain, {"set_metadata": {"metadata": {"availability_zone": "az2"}}}, expect=None)
    assert fault(r, "badRequest", 400).startswith(f"Cannot update metadata of aggregate {plain}. Reason: One or")
    await action(env, plain, {"set_metadata": {"metadata": {"availability_zone": "az1"}}})

    r = await env.call(admin, "DELETE", f"/os-aggregates/{az1}", expect=None)
    assert fault(r, "badRequest", 400) == \
        f"Cannot remove host from aggregate {az1}. Reason: Host aggregate is not empty."
    r = await action(env, az2, {"remove_host": {"host": HOST}}, expect=None)
    assert fault(r, "itemNotFound", 404) == f"Cannot remove host {HOST} in aggregate {az2}"
    r = await action(env, az2, {"remove_host": {"host": "nowhere"}}, expect=None)
    assert fault(r, "itemNotFound", 404) == f"Cannot remove host nowhere in aggregate {az2}"

    # a host with instances cannot change zone by membership
    await add_instance(env.cloud, HOST)
    await action(env, plain, {"remove_host": {"host": HOST}})  # still in az1 through rack-a
    r = await action(env, az1, {"remove_host": {"host": HOST}}, expect=None)
    assert fault(r, "conflictingRequest", 409).startswith(
        f"Cannot remove host from aggregate {az1}. Reason: The host cannot be removed from the aggregate as the "
        "availability zone of the host would change from 'az1' to 'None' but the host already has 1 instance(s).")
    r = await env.call(admin, "PUT", f"/os-aggregates/{az1}", json={"aggregate": {"availability_zone": "az9"}},
                       expect=None)
    assert fault(r, "badRequest", 400) == \
        f"Cannot update aggregate {az1}. Reason: One or more hosts contain instances in this zone."
    await env.call(admin, "PUT", f"/os-aggregates/{az1}", json={"aggregate": {"name": "rack-a2"}})

    # a deleted compute service leaves its aggregates
    await add_compute(env.cloud, "spare")
    await action(env, az2, {"add_host": {"host": "spare"}})
    services = (await env.call(admin, "GET", "/os-services", params={"host": "spare"}, version="2.53")).json()
    await env.call(admin, "DELETE", f"/os-services/{services['services'][0]['id']}", version="2.53", expect=204)
    assert (await env.call(admin, "GET", f"/os-aggregates/{az2}")).json()["aggregate"]["hosts"] == []
    await env.call(admin, "DELETE", f"/os-aggregates/{az2}")


async def test_admin_only(env: ComputeEnv) -> None:
    agg_id = (await create(env, "rack"))["aggregate"]["id"]
    alice = await env.user("alice")
    for method, path, body in [("GET", "/os-aggregates", None), ("GET", f"/os-aggregates/{agg_id}", None),
                               ("POST", "/os-aggregates", {"aggregate": {"name": "mine"}}),
                               ("PUT", f"/os-aggregates/{agg_id}", {"aggregate": {"name": "mine"}}),
                               ("DELETE", f"/os-aggregates/{agg_id}", None),
                               ("POST", f"/os-aggregates/{agg_id}/action", {"add_host": {"host": HOST}}),
                               ("POST", f"/os-aggregates/{agg_id}/action", {"remove_host": {"host": HOST}}),
                               ("POST", f"/os-aggregates/{agg_id}/action", {"set_metadata": {"metadata": {}}})]:
        r = await env.call(alice, method, path, json=body, expect=None)
        assert fault(r, "forbidden", 403), (method, path)


async def test_zones_in_availability_zones_and_services(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    await add_compute(env.cloud, "off-host", disabled=True)
    agg_id = (await create(env, "rack", "az1"))["aggregate"]["id"]
    await action(env, agg_id, {"add_host": {"host": HOST}})

    zones = (await env.call(alice, "GET", "/os-availability-zone")).json()["availabilityZoneInfo"]
    assert {z["zoneName"]: z["zoneState"]["available"] for z in zones} == {"az1": True, "nova": False}
    detail = {z["zoneName"]: z for z in
              (await env.call(admin, "GET", "/os-availability-zone/detail")).json()["availabilityZoneInfo"]}
    assert list(detail["az1"]["hosts"]) == [HOST] and detail["nova"]["hosts"] is None
    services = (await env.call(admin, "GET", "/os-services", params={"binary": "nova-compute"})).json()["services"]
    assert {s["host"]: s["zone"] for s in services} == {HOST: "az1", "off-host": "nova"}

    # a boot into a zone needs an enabled service there
    image = await make_image(env, alice)
    r = await env.call(alice, "POST", "/servers", expect=None, json={"server": {
        "name": "vm", "imageRef": image, "flavorRef": "1", "availability_zone": "nova"}})
    assert fault(r, "badRequest", 400) == "The requested availability zone is not available"

    await action(env, agg_id, {"remove_host": {"host": HOST}})
    zones = (await env.call(alice, "GET", "/os-availability-zone")).json()["availabilityZoneInfo"]
    assert [z["zoneName"] for z in zones] == ["nova"]


# ----------------------------------------------------------------------------- scheduling into a zone

@pytest.fixture
async def fleet_env(tmp_path: Path) -> AsyncIterator[ComputeEnv]:
    async for cloud in cloud_on("sqlite", tmp_path, compute__fake_hosts=3, compute__sync_power_state_interval=-1):
        yield ComputeEnv(cloud)


async def wait_active(env: ComputeEnv, server_id: str, timeout: float = 10.0) -> dict[str, Any]:
    admin = await env.admin()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        server = (await env.call(admin, "GET", f"/servers/{server_id}")).json()["server"]
        if server["status"] in ("ACTIVE", "ERROR") or asyncio.get_running_loop().time() > deadline:
            assert server["status"] == "ACTIVE", server
            return server  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)


async def test_servers_booted_into_a_zone_land_on_its_hosts(fleet_env: ComputeEnv) -> None:
    env = fleet_env
    admin = await env.admin()
    alice = await env.user("alice")
    assert env.cloud.node.fleet is not None
    hosts = [a.host for a in env.cloud.node.fleet.agents]
    zoned = hosts[1]
    agg_id = (await create(env, "rack", "az1"))["aggregate"]["id"]
    await action(env, agg_id, {"add_host": {"host": zoned}})
    hypervisors = (await env.call(admin, "GET", "/os-hypervisors/detail", version="2.53")).json()["hypervisors"]
    assert zoned in {h["service"]["host"] for h in hypervisors}  # what `openstack hypervisor show` matches on

    image = await make_image(env, alice)
    r = await env.call(alice, "POST", "/servers", expect=202, json={"server": {
        "name": "vm", "imageRef": image, "flavorRef": "1", "availability_zone": "az1", "min_count": 3}})
    reservation = r.json()["server"]["id"]
    servers = (await env.call(alice, "GET", "/servers")).json()["servers"]
    assert reservation in {s["id"] for s in servers} and len(servers) == 3
    for s in servers:
        server = await wait_active(env, s["id"])
        assert server["OS-EXT-SRV-ATTR:host"] == zoned
        assert server["OS-EXT-AZ:availability_zone"] == "az1"

    r = await env.call(alice, "POST", "/servers", expect=202, json={"server": {
        "name": "other", "imageRef": image, "flavorRef": "1", "availability_zone": "nova"}})
    server = await wait_active(env, r.json()["server"]["id"])
    assert server["OS-EXT-SRV-ATTR:host"] in set(hosts) - {zoned}
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    r = await env.call(alice, "POST", "/servers", expect=None, json={"server": {
        "name": "x", "imageRef": image, "flavorRef": "1", "availability_zone": "az-nowhere"}})
    assert fault(r, "badRequest", 400) == "The requested availability zone is not available"
