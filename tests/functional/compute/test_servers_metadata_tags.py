"""Server metadata (``/servers/{id}/metadata``) and tags (``/servers/{id}/tags``, 2.26+)."""

from __future__ import annotations

from computetest import ComputeEnv, fault
from test_servers_support import Casts, boot_id, casts, make_image, set_state

__all__ = ["casts"]


async def active_server(env: ComputeEnv, name: str = "alice") -> tuple[object, str]:
    who = await env.user(name)
    uuid = await boot_id(env, who, await make_image(env, who), metadata={"a": "1"})
    await set_state(env, uuid)
    return who, uuid


async def test_metadata_crud(env: ComputeEnv, casts: Casts) -> None:
    alice, uuid = await active_server(env)
    base = f"/servers/{uuid}/metadata"
    assert (await env.call(alice, "GET", base)).json() == {"metadata": {"a": "1"}}
    r = await env.call(alice, "POST", base, json={"metadata": {"b": "2"}})
    assert r.json() == {"metadata": {"a": "1", "b": "2"}}
    r = await env.call(alice, "PUT", f"{base}/c", json={"meta": {"c": "3"}})
    assert r.json() == {"meta": {"c": "3"}}
    assert (await env.call(alice, "GET", f"{base}/c")).json() == {"meta": {"c": "3"}}
    r = await env.call(alice, "PUT", base, json={"metadata": {"only": "x"}})
    assert r.json() == {"metadata": {"only": "x"}}
    await env.call(alice, "DELETE", f"{base}/only", expect=204)
    assert (await env.call(alice, "GET", base)).json() == {"metadata": {}}
    r = await env.call(alice, "GET", f"{base}/only", expect=404)
    assert fault(r, "itemNotFound", 404) == "Metadata item was not found"
    await env.call(alice, "DELETE", f"{base}/only", expect=404)
    shown = (await env.call(alice, "GET", f"/servers/{uuid}")).json()["server"]
    assert shown["metadata"] == {}


async def test_metadata_bad_input_quota_lock_and_state(env: ComputeEnv, casts: Casts) -> None:
    alice, uuid = await active_server(env)
    base = f"/servers/{uuid}/metadata"
    r = await env.call(alice, "PUT", f"{base}/x", json={"meta": {"y": "1"}}, expect=400)
    assert fault(r, "badRequest", 400) == "Request body and URI mismatch"
    r = await env.call(alice, "PUT", f"{base}/x", json={"meta": {"x": "1", "y": "2"}}, expect=400)
    assert "has too many properties" in fault(r, "badRequest", 400)
    r = await env.call(alice, "POST", base, json={"metadata": {"bad/key": "1"}}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('bad/key' was unexpected)"
    r = await env.call(alice, "POST", base, json={"metadata": {"k": 1}}, expect=400)
    assert fault(r, "badRequest", 400) == "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"
    r = await env.call(alice, "POST", base, json={"metadata": {"k": "v" * 256}}, expect=400)
    assert "is too long" in fault(r, "badRequest", 400)
    r = await env.call(alice, "POST", base, json={"metadata": {f"k{i}": "v" for i in range(128)}}, expect=403)
    assert fault(r, "forbidden", 403) == "Maximum number of metadata items exceeds 128"
    await set_state(env, uuid, locked=True, locked_by="admin")
    r = await env.call(alice, "POST", base, json={"metadata": {"k": "v"}}, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Instance {uuid} is locked"
    await set_state(env, uuid, vm_state="building", task_state="scheduling", host=None, launched=False,
                    locked=False)
    r = await env.call(alice, "POST", base, json={"metadata": {"k": "v"}}, expect=409)
    assert fault(r, "conflictingRequest", 409) == \
        f"Cannot 'update metadata' instance {uuid} while it is in vm_state building"


async def test_tags(env: ComputeEnv, casts: Casts) -> None:
    alice, uuid = await active_server(env)
    base = f"/servers/{uuid}/tags"
    await env.call(alice, "GET", base, version="2.25", expect=404)
    r = await env.call(alice, "PUT", f"{base}/red", version="2.26", expect=201)
    assert r.headers["location"].endswith(f"/compute/v2.1/servers/{uuid}/tags/red")
    await env.call(alice, "PUT", f"{base}/red", version="2.26", expect=204)
    await env.call(alice, "GET", f"{base}/red", version="2.26", expect=204)
    r = await env.call(alice, "GET", f"{base}/blue", version="2.26", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Server {uuid} has no tag 'blue'"
    r = await env.call(alice, "PUT", base, version="2.26", json={"tags": ["x", "y", "x"]})
    assert r.json() == {"tags": ["x", "y"]}
    assert (await env.call(alice, "GET", base, version="2.26")).json() == {"tags": ["x", "y"]}
    await env.call(alice, "DELETE", f"{base}/x", version="2.26", expect=204)
    r = await env.call(alice, "DELETE", f"{base}/x", version="2.26", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance {uuid} has no tag 'x'"
    await env.call(alice, "DELETE", base, version="2.26", expect=204)
    assert (await env.call(alice, "GET", f"/servers/{uuid}", version="2.26")).json()["server"]["tags"] == []


async def test_tag_limits_and_states(env: ComputeEnv, casts: Casts) -> None:
    alice, uuid = await active_server(env)
    base = f"/servers/{uuid}/tags"
    r = await env.call(alice, "PUT", f"{base}/a,b", version="2.26", expect=400)
    assert fault(r, "badRequest", 400).startswith("Tag 'a,b' is invalid. It must be a non empty string without "
                                                  "characters '/' and ','.")
    r = await env.call(alice, "PUT", base, version="2.26", json={"tags": [f"t{i}" for i in range(51)]}, expect=400)
    assert "is too long" in fault(r, "badRequest", 400)
    await env.call(alice, "PUT", base, version="2.26", json={"tags": [f"t{i}" for i in range(50)]})
    r = await env.call(alice, "PUT", f"{base}/one-more", version="2.26", expect=400)
    assert fault(r, "badRequest", 400) == "The number of tags exceeded the per-server limit 50"
    await set_state(env, uuid, vm_state="building", task_state="scheduling", host=None, launched=False)
    r = await env.call(alice, "DELETE", base, version="2.26", expect=409)
    assert fault(r, "conflictingRequest", 409) == \
        f"Cannot 'delete tags' instance {uuid} while it is in vm_state building"


async def test_tags_at_create_need_252(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    r = await env.call(alice, "POST", "/servers", version="2.51", expect=400, json={
        "server": {"name": "vm", "imageRef": image, "flavorRef": "1", "networks": "none", "tags": ["a"]}})
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('tags' was unexpected)"
    uuid = await boot_id(env, alice, image, version="2.52", networks="auto", tags=["a", "b"])
    assert (await env.call(alice, "GET", f"/servers/{uuid}/tags", version="2.26")).json() == {"tags": ["a", "b"]}
