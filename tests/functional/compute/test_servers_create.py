"""``POST /servers`` and ``GET /servers/{id}``: the rows written, the build cast, the views per microversion."""

from __future__ import annotations

import base64
import hashlib
import re

from computetest import ComputeEnv, fault
from test_servers_support import HOST, Casts, action_names, boot, boot_id, casts, make_image, row, set_state

__all__ = ["casts"]

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def test_create_answers_202_with_password_and_location(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    r = await env.call(alice, "POST", "/servers", expect=202,
                       json={"server": {"name": "web 1", "imageRef": image, "flavorRef": "1"}})
    server = r.json()["server"]
    assert set(server) == {"id", "links", "OS-DCF:diskConfig", "security_groups", "adminPass"}
    assert UUID.match(server["id"])
    assert server["security_groups"] == [{"name": "default"}]
    assert server["OS-DCF:diskConfig"] == "MANUAL"
    assert len(server["adminPass"]) == 12
    assert r.headers["location"] == server["links"][0]["href"]
    assert server["links"][0]["href"].endswith(f"/compute/v2.1/servers/{server['id']}")
    assert server["links"][1] == {"rel": "bookmark",
                                  "href": f"http://kumo.test/compute/servers/{server['id']}"}

    instance = await row(env, server["id"])
    assert (instance.vm_state, instance.task_state, instance.power_state) == ("building", "scheduling", 0)
    assert instance.hostname == "web-1"
    assert instance.reservation_id.startswith("r-") and len(instance.reservation_id) == 10
    assert instance.flavor["flavorid"] == "1" and instance.flavor["memory_mb"] == 512
    assert instance.system_metadata["image_disk_format"] == "raw"
    assert instance.system_metadata["image_base_image_ref"] == image
    assert await action_names(env, server["id"]) == ["create"]

    [build] = casts.named("build_instances")
    uuids, request = build["args"]
    assert uuids == [server["id"]]
    assert request["image"]["id"] == image and request["image"]["size"] == 1024
    assert request["flavor"] == {"vcpus": 1, "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 0, "swap": 0,
                                 "extra_specs": {}}
    assert request["project_id"] == alice.project_id and request["group"] is None
    assert build["ctx"].user_id == alice.user_id


async def test_show_building_server_at_21(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    uuid = await boot_id(env, alice, image, name="vm", metadata={"k": "v"}, key_name=None)
    server = (await env.call(alice, "GET", f"/servers/{uuid}")).json()["server"]
    assert server["status"] == "BUILD" and server["progress"] == 0
    assert server["tenant_id"] == alice.project_id and server["user_id"] == alice.user_id
    assert server["flavor"] == {"id": "1", "links": [{"rel": "bookmark",
                                                      "href": "http://kumo.test/compute/flavors/1"}]}
    assert server["image"] == {"id": image, "links": [{"rel": "bookmark",
                                                       "href": f"http://kumo.test/compute/images/{image}"}]}
    assert server["metadata"] == {"k": "v"} and server["addresses"] == {}
    assert server["hostId"] == "" and server["OS-EXT-AZ:availability_zone"] == ""
    assert server["OS-EXT-STS:vm_state"] == "building" and server["OS-EXT-STS:task_state"] == "scheduling"
    assert server["OS-EXT-STS:power_state"] == 0
    assert server["os-extended-volumes:volumes_attached"] == []
    assert server["security_groups"] == [{"name": "default"}]
    assert server["accessIPv4"] == "" and server["config_drive"] == ""
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", server["created"])
    for absent in ("locked", "description", "tags", "OS-EXT-SRV-ATTR:host", "host_status", "fault"):
        assert absent not in server


async def test_show_fields_by_microversion(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    uuid = await boot_id(env, alice, image, version="2.96", description="d", tags=["a"],
                         networks="none", hostname="my-host")
    await set_state(env, uuid)
    server = (await env.call(alice, "GET", f"/servers/{uuid}", version="2.96")).json()["server"]
    assert server["flavor"] == {"vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0,
                                "original_name": "m1.tiny", "extra_specs": {}}  # readers see extra specs
    assert server["locked"] is False and server["locked_reason"] is None
    assert server["description"] == "d" and server["tags"] == ["a"]
    assert server["trusted_image_certificates"] is None and server["server_groups"] == []
    assert server["OS-EXT-SRV-ATTR:hostname"] == "my-host"
    assert server["pinned_availability_zone"] is None
    assert server["status"] == "ACTIVE"
    assert server["hostId"] == hashlib.sha224((alice.project_id + HOST).encode()).hexdigest()
    assert "OS-EXT-SRV-ATTR:host" not in server and "host_status" not in server

    admin = await env.admin()
    shown = (await env.call(admin, "GET", f"/servers/{uuid}", version="2.96")).json()["server"]
    assert shown["OS-EXT-SRV-ATTR:host"] == HOST
    assert shown["OS-EXT-SRV-ATTR:reservation_id"].startswith("r-")
    assert shown["OS-EXT-SRV-ATTR:launch_index"] == 0 and shown["OS-EXT-SRV-ATTR:user_data"] is None
    assert shown["host_status"] == ""  # no nova-compute heartbeat for HOST: Nova's HostStatus.NONE
    older = (await env.call(alice, "GET", f"/servers/{uuid}", version="2.72")).json()["server"]
    assert "locked_reason" not in older and "server_groups" in older and "OS-EXT-SRV-ATTR:hostname" not in older


async def test_multiple_create_names_and_reservation(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    r = await env.call(alice, "POST", "/servers", expect=202, json={"server": {
        "name": "node", "imageRef": image, "flavorRef": "1", "min_count": 2, "max_count": "3",
        "return_reservation_id": True}})
    reservation = r.json()["reservation_id"]
    assert list(r.json()) == ["reservation_id"]
    listed = (await env.call(alice, "GET", "/servers/detail", params={"reservation_id": reservation})).json()
    names = sorted(s["name"] for s in listed["servers"])
    assert names == ["node-1", "node-2", "node-3"]
    [build] = casts.named("build_instances")
    assert len(build["args"][0]) == 3
    hostnames = sorted([(await row(env, s["id"])).hostname for s in listed["servers"]])
    assert hostnames == ["node-1", "node-2", "node-3"]


async def test_create_stores_user_data_keys_groups_and_zone(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJxS4YTu6sVSBxTzN5gaeGRIeVRGPXm28wc5uSybLA2w test"
    await env.call(alice, "POST", "/os-keypairs", json={"keypair": {"name": "k", "public_key": public}})
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    body = await boot(env, alice, image, key_name="k", user_data=user_data, availability_zone="nova",
                      security_groups=[{"name": "web"}, {"name": "web"}], config_drive=True,
                      accessIPv4="10.0.0.1", adminPass="secret")
    assert body["server"]["adminPass"] == "secret"
    assert body["server"]["security_groups"] == [{"name": "web"}, {"name": "web"}]
    instance = await row(env, body["server"]["id"])
    assert instance.key_data == public and instance.user_data == user_data and instance.config_drive
    assert instance.system_metadata["security_groups"] == ["web"]
    assert casts.named("build_instances")[0]["args"][1]["availability_zone"] == "nova"
    admin = await env.admin()
    shown = (await env.call(admin, "GET", f"/servers/{instance.uuid}", version="2.3")).json()["server"]
    assert shown["key_name"] == "k" and shown["OS-EXT-SRV-ATTR:user_data"] == user_data
    assert shown["accessIPv4"] == "10.0.0.1" and shown["config_drive"] == "True"
    assert shown["security_groups"] == [{"name": "web"}]


async def test_server_group_hint(env: ComputeEnv, casts: Casts) -> None:
    from kumo.compute.models import ServerGroup, ServerGroupMember

    alice = await env.user("alice")
    image = await make_image(env, alice)
    group = "0b1a6a4e-8bb7-4d0a-9a55-0f8f6bd0c0f1"
    async with env.cloud.node.db.session() as s:
        s.add(ServerGroup(uuid=group, name="g", project_id=alice.project_id, user_id=alice.user_id,
                          policy="anti-affinity"))
    r = await env.call(alice, "POST", "/servers", expect=202, json={
        "server": {"name": "vm", "imageRef": image, "flavorRef": "1"},
        "OS-SCH-HNT:scheduler_hints": {"group": group}})
    uuid = r.json()["server"]["id"]
    assert casts.named("build_instances")[0]["args"][1]["group"] == group
    shown = (await env.call(alice, "GET", f"/servers/{uuid}", version="2.71")).json()["server"]
    assert shown["server_groups"] == [group]
    await env.call(alice, "DELETE", f"/servers/{uuid}", expect=204)
    async with env.cloud.node.db.session() as s:
        from sqlalchemy import select
        assert list(await s.scalars(select(ServerGroupMember))) == []
    missing = "5c3f6b8a-2a4b-4f7e-9e0e-7d7b1f7a3c11"
    r = await env.call(alice, "POST", "/servers", expect=400, json={
        "server": {"name": "vm", "imageRef": image, "flavorRef": "1"},
        "OS-SCH-HNT:scheduler_hints": {"group": missing}})
    assert fault(r, "badRequest", 400) == f"Instance group {missing} could not be found."


async def test_forced_host_is_admin_only(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    r = await boot(env, alice, image, availability_zone="nova:fakehost", expect=403)
    assert "create:forced_host" in r["forbidden"]["message"]
    admin = await env.admin()
    admin_image = await make_image(env, admin)
    await boot(env, admin, admin_image, availability_zone="nova:fakehost")
    assert casts.named("build_instances")[0]["args"][1]["force_hosts"] == ["fakehost"]
