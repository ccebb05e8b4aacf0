"""``PUT`` and ``DELETE /servers/{id}``, ``rebuild``, and who may do what to whose server."""

from __future__ import annotations

import pytest
from computetest import ComputeEnv, fault
from test_servers_support import HOST, Casts, action_names, boot_id, casts, heartbeat, make_image, row, set_state

__all__ = ["casts"]


async def test_update_name_description_hostname(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    uuid = await boot_id(env, alice, await make_image(env, alice))
    r = await env.call(alice, "PUT", f"/servers/{uuid}", version="2.19",
                       json={"server": {"name": "renamed", "description": "about", "accessIPv6": "fe80::1"}})
    server = r.json()["server"]
    assert (server["name"], server["description"], server["accessIPv6"]) == ("renamed", "about", "fe80::1")
    assert "OS-EXT-AZ:availability_zone" not in server and "key_name" not in server  # below 2.75
    r = await env.call(alice, "PUT", f"/servers/{uuid}", version="2.90",
                       json={"server": {"hostname": "new-host", "description": None}})
    server = r.json()["server"]
    assert server["OS-EXT-SRV-ATTR:hostname"] == "new-host" and server["description"] is None
    assert server["key_name"] is None and "OS-EXT-STS:vm_state" in server  # 2.75+: the full view
    r = await env.call(alice, "PUT", f"/servers/{uuid}", json={"server": {"description": "x"}}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('description' was unexpected)"
    r = await env.call(alice, "PUT", f"/servers/{uuid}", version="2.90",
                       json={"server": {"hostname": "-bad-"}}, expect=400)
    assert "does not match" in fault(r, "badRequest", 400)
    r = await env.call(alice, "PUT", f"/servers/{uuid}", json={"server": {"name": " x"}}, expect=400)
    assert "An invalid 'name' value was provided" in fault(r, "badRequest", 400)


async def test_delete_without_host_is_local(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    uuid = await boot_id(env, alice, await make_image(env, alice))
    await env.call(alice, "DELETE", f"/servers/{uuid}", expect=204)
    instance = await row(env, uuid)
    assert instance.vm_state == "deleted" and instance.deleted_at is not None and instance.terminated_at
    assert await action_names(env, uuid) == ["create", "delete"]
    assert casts.named("terminate_instance") == []
    r = await env.call(alice, "GET", f"/servers/{uuid}", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance {uuid} could not be found."
    await env.call(alice, "DELETE", f"/servers/{uuid}", expect=404)


async def test_delete_on_live_host_casts_and_repeats_quietly(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    uuid = await boot_id(env, alice, await make_image(env, alice))
    await set_state(env, uuid)
    await heartbeat(env)
    await env.call(alice, "DELETE", f"/servers/{uuid}", expect=204)
    instance = await row(env, uuid)
    assert instance.task_state == "deleting" and instance.deleted_at is None
    [cast] = casts.named("terminate_instance")
    assert cast["args"] == (HOST, uuid)
    await env.call(alice, "DELETE", f"/servers/{uuid}", expect=204)
    assert len(casts.named("terminate_instance")) == 1
    shown = (await env.call(alice, "GET", f"/servers/{uuid}")).json()["server"]
    assert shown["OS-EXT-STS:task_state"] == "deleting"


async def test_delete_with_host_down_is_local(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    uuid = await boot_id(env, alice, await make_image(env, alice))
    await set_state(env, uuid, host="gone")
    await env.call(alice, "DELETE", f"/servers/{uuid}", expect=204)
    assert (await row(env, uuid)).vm_state == "deleted"
    assert casts.named("terminate_instance") == []


async def test_locked_server_refuses_delete_but_not_for_admin(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    uuid = await boot_id(env, alice, await make_image(env, alice))
    await set_state(env, uuid, locked=True, locked_by="admin")
    r = await env.call(alice, "DELETE", f"/servers/{uuid}", expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Instance {uuid} is locked"
    await env.call(await env.admin(), "DELETE", f"/servers/{uuid}", expect=204)


async def test_other_projects_get_404_on_every_route(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice", "alpha")
    bob = await env.user("bob", "beta")
    image = await make_image(env, alice)
    uuid = await boot_id(env, alice, image)
    await set_state(env, uuid)
    message = f"Instance {uuid} could not be found."
    calls = [("GET", f"/servers/{uuid}", None), ("PUT", f"/servers/{uuid}", {"server": {"name": "x"}}),
             ("DELETE", f"/servers/{uuid}", None), ("GET", f"/servers/{uuid}/metadata", None),
             ("POST", f"/servers/{uuid}/metadata", {"metadata": {"a": "b"}}),
             ("GET", f"/servers/{uuid}/metadata/a", None), ("DELETE", f"/servers/{uuid}/metadata/a", None),
             ("GET", f"/servers/{uuid}/tags", None), ("PUT", f"/servers/{uuid}/tags/t", None),
             ("DELETE", f"/servers/{uuid}/tags", None),
             ("POST", f"/servers/{uuid}/action", {"rebuild": {"imageRef": image}})]
    for method, path, body in calls:
        r = await env.call(bob, method, path, json=body, version="2.26", expect=404)
        assert fault(r, "itemNotFound", 404) == message, (method, path)


async def test_reader_may_read_but_not_write(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice", "alpha")
    reader = await env.user("rita", "alpha", role="reader")
    image = await make_image(env, alice)
    uuid = await boot_id(env, alice, image)
    await env.call(reader, "GET", f"/servers/{uuid}")
    await env.call(reader, "GET", "/servers/detail")
    await env.call(reader, "GET", f"/servers/{uuid}/metadata")
    for method, path, body in [("POST", "/servers", {"server": {"name": "x", "imageRef": image, "flavorRef": "1"}}),
                               ("PUT", f"/servers/{uuid}", {"server": {"name": "x"}}),
                               ("DELETE", f"/servers/{uuid}", None),
                               ("POST", f"/servers/{uuid}/metadata", {"metadata": {"a": "b"}})]:
        r = await env.call(reader, method, path, json=body, expect=403)
        assert fault(r, "forbidden", 403).startswith("You are not authorized")


async def test_rebuild(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    new_image = await make_image(env, alice, name="new", hw_disk_bus="virtio")
    uuid = await boot_id(env, alice, image, metadata={"old": "1"})
    await set_state(env, uuid)
    r = await env.call(alice, "POST", f"/servers/{uuid}/action", version="2.57", expect=202, json={
        "rebuild": {"imageRef": new_image, "name": "again", "metadata": {"new": "2"}, "adminPass": "pw",
                    "user_data": "aGk=", "description": "rebuilt"}})
    server = r.json()["server"]
    assert server["status"] == "REBUILD" and server["name"] == "again" and server["metadata"] == {"new": "2"}
    assert server["adminPass"] == "pw" and server["user_data"] == "aGk=" and server["image"]["id"] == new_image
    assert server["key_name"] is None and "OS-EXT-STS:task_state" not in server
    assert r.headers["location"].endswith(f"/servers/{uuid}")
    instance = await row(env, uuid)
    assert (instance.task_state, instance.image_ref) == ("rebuilding", new_image)
    assert instance.system_metadata["image_hw_disk_bus"] == "virtio" and instance.system_metadata["kernel_id"] == ""
    assert await action_names(env, uuid) == ["create", "rebuild"]
    [cast] = casts.named("rebuild_instance")
    host, cast_uuid, image_dict = cast["args"]
    assert (host, cast_uuid, image_dict["id"], image_dict["name"]) == (HOST, uuid, new_image, "new")
    assert image_dict["properties"] == {"hw_disk_bus": "virtio"}
    r = await env.call(alice, "POST", f"/servers/{uuid}/action", expect=409,
                       json={"rebuild": {"imageRef": new_image}})
    assert fault(r, "conflictingRequest", 409) == \
        f"Cannot 'rebuild' instance {uuid} while it is in task_state rebuilding"


@pytest.mark.parametrize(("body", "version", "message"), [
    ({"rebuild": {}}, None, "'imageRef' is a required property"),
    ({"rebuild": {"imageRef": "nope"}}, None,
     "Invalid input for field/attribute imageRef. Value: nope. 'nope' is not a 'uuid'"),
    ({"rebuild": {"imageRef": "8f1b2c9e-3f7a-4b4c-9a35-0c1e1f6b2d77"}}, None, "Cannot find image for rebuild"),
    ({"rebuild": {"imageRef": "8f1b2c9e-3f7a-4b4c-9a35-0c1e1f6b2d77", "key_name": "k"}}, "2.53",
     "Additional properties are not allowed ('key_name' was unexpected)"),
])
async def test_rebuild_bad_input(env: ComputeEnv, casts: Casts, body: dict, version: str | None,
                                 message: str) -> None:
    alice = await env.user("alice")
    uuid = await boot_id(env, alice, await make_image(env, alice))
    await set_state(env, uuid)
    r = await env.call(alice, "POST", f"/servers/{uuid}/action", json=body, version=version, expect=400)
    assert fault(r, "badRequest", 400) == message
