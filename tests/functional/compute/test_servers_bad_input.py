"""``POST /servers`` refusals: each with Nova's status and message, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from computetest import ComputeEnv, fault
from sqlalchemy import func, select
from test_servers_support import Casts, casts, make_image

from kumo.compute.models import Instance

__all__ = ["casts"]

MISSING = "0b9a3c39-55a0-4d6b-bb6f-2a2d2a0f3a11"


async def count_instances(env: ComputeEnv) -> int:
    async with env.cloud.node.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Instance)) or 0)


@pytest.mark.parametrize(("fields", "version", "message"), [
    ({"flavorRef": "nope"}, None, "Flavor nope could not be found."),
    ({"flavorRef": "http://x/compute/flavors/nope"}, None, "Flavor nope could not be found."),
    ({"imageRef": MISSING}, None, "Can not find requested image"),
    ({"imageRef": "not-a-uuid"}, None, "Invalid input for field/attribute imageRef. Value: not-a-uuid. "
                                       "'not-a-uuid' is not valid under any of the given schemas"),
    ({"imageRef": ""}, None, "Missing imageRef attribute"),
    ({"min_count": 3, "max_count": 2}, None, "min_count must be <= max_count"),
    ({"min_count": 0}, None, "Invalid input for field/attribute min_count. Value: 0. 0 is less than the minimum of 1"),
    ({"user_data": "!!!not base64"}, None, "Invalid input for field/attribute user_data. Value: !!!not base64. "
                                           "'!!!not base64' is not a 'base64'"),
    ({"user_data": "QUFB" * 16384}, None, None),
    ({"key_name": "nokey"}, None, "Invalid key_name provided."),
    ({"name": ""}, None, "Invalid input for field/attribute name. Value: . '' is too short"),
    ({"accessIPv4": "1.2.3"}, None, "Invalid input for field/attribute accessIPv4. Value: 1.2.3. "
                                    "'1.2.3' is not a 'ipv4'"),
    ({"metadata": {"k": "v" * 256}}, None, None),
    ({"description": "d"}, "2.18", "Additional properties are not allowed ('description' was unexpected)"),
    ({"bogus": 1}, None, "Additional properties are not allowed ('bogus' was unexpected)"),
    ({}, "2.37", "'networks' is a required property"),
    ({"networks": "everything"}, "2.37", "Invalid input for field/attribute networks. Value: everything. "
                                         "'everything' is not valid under any of the given schemas"),
    ({"networks": [{"uuid": "x"}]}, None, "Bad networks format: network uuid is not in proper format (x)"),
    ({"networks": [{"fixed_ip": "10.0.0.2"}]}, None, "Bad network format: missing 'uuid'"),
    ({"availability_zone": "elsewhere"}, None, "The requested availability zone is not available"),
    ({"availability_zone": "a:b:c:d"}, None, "Invalid input received: Unable to parse availability_zone"),
    ({"hostname": "hh", "max_count": 2}, "2.90", "Unable to allocate a single hostname to multiple instances"),
    ({"hostname": "bad host"}, "2.94", "Invalid input for field/attribute hostname. Value: bad host. "
                                       "'bad host' does not match '^[a-zA-Z0-9-._]*$'"),
])
async def test_bad_create(env: ComputeEnv, casts: Casts, fields: dict[str, Any], version: str | None,
                          message: str | None) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    body = {"name": "vm", "imageRef": image, "flavorRef": "1", **fields}
    if version and version >= "2.37" and "networks" not in fields and fields:
        body["networks"] = "none"
    r = await env.call(alice, "POST", "/servers", version=version, json={"server": body}, expect=400)
    text = fault(r, "badRequest", 400)
    if message is not None:
        assert text == message
    else:
        assert "is too long" in text
    assert await count_instances(env) == 0
    assert casts.calls == []


async def test_malformed_json_and_missing_server(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    r = await env.call(alice, "POST", "/servers", content=b"{nope", headers={"Content-Type": "application/json"},
                       expect=400)
    assert fault(r, "badRequest", 400)
    r = await env.call(alice, "POST", "/servers", json={"srv": {}}, expect=400)
    assert fault(r, "badRequest", 400) == "'server' is a required property"
    r = await env.call(alice, "POST", "/servers", json={"server": {"imageRef": MISSING}}, expect=400)
    assert fault(r, "badRequest", 400) == "'name' is a required property"


async def test_image_and_flavor_fit(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    big = await make_image(env, alice, min_ram=1024)
    r = await env.call(alice, "POST", "/servers", expect=400,
                       json={"server": {"name": "vm", "imageRef": big, "flavorRef": "1"}})
    assert fault(r, "badRequest", 400) == "Flavor's memory is too small for requested image."
    disk = await make_image(env, alice, min_disk=5)
    r = await env.call(alice, "POST", "/servers", expect=400,
                       json={"server": {"name": "vm", "imageRef": disk, "flavorRef": "1"}})
    assert fault(r, "badRequest", 400) == ("Flavor's disk is smaller than the minimum size specified in image "
                                           "metadata. Flavor disk is 1073741824 bytes, minimum size is "
                                           "5368709120 bytes.")
    queued = (await env.client.post("/image/v2/images", headers=alice.headers,
                                    json={"disk_format": "raw", "container_format": "bare"})).json()["id"]
    r = await env.call(alice, "POST", "/servers", expect=400,
                       json={"server": {"name": "vm", "imageRef": queued, "flavorRef": "1"}})
    assert fault(r, "badRequest", 400) == f"Image {queued} is not active."
    assert await count_instances(env) == 0


async def test_over_quota(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    r = await env.call(alice, "POST", "/servers", expect=403, json={
        "server": {"name": "vm", "imageRef": image, "flavorRef": "5", "min_count": 3}})
    assert fault(r, "forbidden", 403).startswith("Quota exceeded for cores")
    r = await env.call(alice, "POST", "/servers", expect=403, json={"server": {
        "name": "vm", "imageRef": image, "flavorRef": "1", "metadata": {f"k{i}": "v" for i in range(129)}}})
    assert fault(r, "forbidden", 403) == "Maximum number of metadata items exceeds 128"
    assert await count_instances(env) == 0
    # max_count above what fits is lowered to what fits, as Nova does
    r = await env.call(alice, "POST", "/servers", expect=202, json={
        "server": {"name": "vm", "imageRef": image, "flavorRef": "1", "max_count": 50,
                   "return_reservation_id": "true"}})
    assert await count_instances(env) == 10



async def test_quota_recheck_takes_back_servers_of_a_lost_race(env) -> None:  # type: ignore[no-untyped-def]
    """Two creates counted before either committed: the loser's recheck removes its server and answers 403."""
    import datetime as dt

    import pytest
    from sqlalchemy import select

    from kumo.compute.context import RequestContext
    from kumo.compute.flavors import FlavorRecord
    from kumo.compute.models import Instance, Quota
    from kumo.compute.servers import ServerService
    from kumo.core import errors

    admin = await env.admin()
    deps = env.cloud.node.compute_deps
    winner, loser = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"
    async with deps.db.session() as s:
        s.add(Quota(project_id=admin.project_id, resource="instances", hard_limit=1))
        for uuid in (winner, loser):  # both committed: the state right after the race
            s.add(Instance(uuid=uuid, project_id=admin.project_id, user_id=admin.user_id, vm_state="building",
                           task_state="scheduling", power_state=0, flavor={"vcpus": 1, "memory_mb": 64},
                           reservation_id="r-1"))
    flavor = FlavorRecord(flavorid="x", name="x", memory_mb=64, vcpus=1, root_gb=0, ephemeral_gb=0, swap=0,
                          rxtx_factor=1.0, is_public=True, disabled=False, description=None, vcpu_weight=None,
                          created_at=dt.datetime.now(dt.UTC), updated_at=None, extra_specs={})
    ctx = RequestContext(user_id=admin.user_id, project_id=admin.project_id, roles=("admin",), request_id="req-x")
    with pytest.raises(errors.OverQuota, match="Quota exceeded for instances: Requested 1, but already used 1 of 1"):
        await ServerService(deps)._recheck_quota(ctx, [loser], flavor)
    async with deps.db.session() as s:
        rows = {r.uuid: r for r in await s.scalars(select(Instance))}
    assert rows[loser].deleted_at is not None and rows[winner].deleted_at is None
