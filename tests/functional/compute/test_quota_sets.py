"""Quota sets (``os-quota-sets``): defaults, show, detail with usage, update (validation, force), revert."""

from __future__ import annotations

import uuid

from computetest import ComputeEnv, fault
from kumotest import Cloud

from kumo.compute.models import Instance, ServerGroup

V21_DEFAULTS = {"instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128, "injected_files": 5,
                "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255, "key_pairs": 100,
                "server_groups": 10, "server_group_members": 10, "fixed_ips": -1, "floating_ips": -1,
                "security_groups": -1, "security_group_rules": -1}
NETWORK = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
FILES = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")


async def add_instances(cloud: Cloud, project_id: str, user_id: str, count: int, vcpus: int = 2,
                        memory_mb: int = 512) -> None:
    async with cloud.node.db.session() as s:
        for _ in range(count):
            s.add(Instance(uuid=str(uuid.uuid4()), project_id=project_id, user_id=user_id, vm_state="active",
                           reservation_id="r-1", flavor={"vcpus": vcpus, "memory_mb": memory_mb}))
        s.add(ServerGroup(uuid=str(uuid.uuid4()), name="g", project_id=project_id, user_id=user_id,
                          policy="affinity"))


async def test_defaults_per_microversion(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    pid = alice.project_id
    r = await env.call(alice, "GET", f"/os-quota-sets/{pid}/defaults")
    assert r.json() == {"quota_set": {"id": pid, **V21_DEFAULTS}}
    r = await env.call(alice, "GET", f"/os-quota-sets/{pid}/defaults", version="2.36")
    assert set(r.json()["quota_set"]) == {"id", *V21_DEFAULTS} - set(NETWORK)
    r = await env.call(alice, "GET", f"/os-quota-sets/{pid}/defaults", version="2.57")
    assert set(r.json()["quota_set"]) == {"id", *V21_DEFAULTS} - set(NETWORK) - set(FILES)


async def test_show_is_for_readers_of_the_project(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    bob = await env.user("bob", "beta")
    r = await env.call(alice, "GET", f"/os-quota-sets/{alice.project_id}")
    assert r.json() == {"quota_set": {"id": alice.project_id, **V21_DEFAULTS}}
    await env.call(bob, "GET", f"/os-quota-sets/{alice.project_id}", expect=403)
    await env.call(bob, "GET", f"/os-quota-sets/{alice.project_id}/detail", expect=403)
    await env.call(alice, "PUT", f"/os-quota-sets/{alice.project_id}", json={"quota_set": {"instances": 5}},
                   expect=403)
    await env.call(alice, "DELETE", f"/os-quota-sets/{alice.project_id}", expect=403)
    r = await env.call(alice, "GET", f"/os-quota-sets/{alice.project_id}", version="2.75", params={"x": "1"},
                       expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('x' was unexpected)"


async def test_update_show_detail_and_revert(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    pid = alice.project_id
    await add_instances(env.cloud, pid, alice.user_id, 2)
    r = await env.call(admin, "PUT", f"/os-quota-sets/{pid}", version="2.57",
                       json={"quota_set": {"instances": 15, "cores": "-1", "key_pairs": 3}})
    expected = {k: v for k, v in V21_DEFAULTS.items() if k not in NETWORK + FILES}
    expected.update(instances=15, cores=-1, key_pairs=3)
    assert r.json() == {"quota_set": expected}
    shown = (await env.call(alice, "GET", f"/os-quota-sets/{pid}", version="2.57")).json()["quota_set"]
    assert shown == {"id": pid, **expected}

    detail = (await env.call(alice, "GET", f"/os-quota-sets/{pid}/detail", version="2.57")).json()["quota_set"]
    assert detail["id"] == pid
    assert detail["instances"] == {"limit": 15, "in_use": 2, "reserved": 0}
    assert detail["cores"] == {"limit": -1, "in_use": 4, "reserved": 0}
    assert detail["ram"] == {"limit": 51200, "in_use": 1024, "reserved": 0}
    assert detail["server_groups"] == {"limit": 10, "in_use": 1, "reserved": 0}
    assert detail["key_pairs"] == {"limit": 3, "in_use": 0, "reserved": 0}
    by_user = (await env.call(admin, "GET", f"/os-quota-sets/{pid}/detail",
                              params={"user_id": "someone-else"})).json()["quota_set"]
    assert by_user["instances"] == {"limit": 15, "in_use": 0, "reserved": 0}
    assert by_user["floating_ips"] == {"limit": -1, "in_use": 0, "reserved": 0}

    await env.call(admin, "DELETE", f"/os-quota-sets/{pid}", expect=202)
    shown = (await env.call(alice, "GET", f"/os-quota-sets/{pid}")).json()["quota_set"]
    assert shown == {"id": pid, **V21_DEFAULTS}


async def test_update_below_usage_needs_force(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    pid = alice.project_id
    await add_instances(env.cloud, pid, alice.user_id, 3)
    r = await env.call(admin, "PUT", f"/os-quota-sets/{pid}", json={"quota_set": {"instances": 2}}, expect=400)
    assert fault(r, "badRequest", 400) == ("Quota limit 2 for instances must be greater than or equal to already "
                                           "used and reserved 3.")
    r = await env.call(admin, "PUT", f"/os-quota-sets/{pid}", json={"quota_set": {"instances": 2, "force": True}})
    assert r.json()["quota_set"]["instances"] == 2
    r = await env.call(admin, "PUT", f"/os-quota-sets/{pid}", json={"quota_set": {"instances": -1}})
    assert r.json()["quota_set"]["instances"] == -1


async def test_update_validation(env: ComputeEnv) -> None:
    admin = await env.admin()
    pid = (await env.user("alice")).project_id
    cases = [
        ({"instances": -2}, "Invalid input for field/attribute instances. Value: -2. -2 is less than the minimum "
                            "of -1"),
        ({"cores": "many"}, "Invalid input for field/attribute cores. Value: many. 'many' does not match "
                            "'^-?[0-9]+$'"),
        ({"ram": 1.5}, "Invalid input for field/attribute ram. Value: 1.5. 1.5 is not of type 'integer', 'string'"),
        ({"ram": None}, "Invalid input for field/attribute ram. Value: None. None is not of type 'integer', "
                        "'string'"),
        ({"ram": 2147483648}, "Invalid input for field/attribute ram. Value: 2147483648. 2147483648 is greater "
                              "than the maximum of 2147483647"),
        ({"networks": 1}, "Additional properties are not allowed ('networks' was unexpected)"),
    ]
    for quota_set, message in cases:
        r = await env.call(admin, "PUT", f"/os-quota-sets/{pid}", json={"quota_set": quota_set}, expect=400)
        assert fault(r, "badRequest", 400) == message
    r = await env.call(admin, "PUT", f"/os-quota-sets/{pid}", json={"quota": {}}, expect=400)
    await env.call(admin, "PUT", f"/os-quota-sets/{pid}", json={"quota_set": {"floating_ips": 5}})
    r = await env.call(admin, "PUT", f"/os-quota-sets/{pid}", version="2.36",
                       json={"quota_set": {"floating_ips": 5}}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('floating_ips' was unexpected)"
    await env.call(admin, "PUT", f"/os-quota-sets/{pid}", version="2.56", json={"quota_set": {"injected_files": 1}})
    r = await env.call(admin, "PUT", f"/os-quota-sets/{pid}", version="2.57",
                       json={"quota_set": {"injected_files": 1}}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('injected_files' was unexpected)"
    shown = (await env.call(admin, "GET", f"/os-quota-sets/{pid}")).json()["quota_set"]
    assert (shown["floating_ips"], shown["injected_files"]) == (5, 1)


async def test_unknown_project(env: ComputeEnv) -> None:
    admin = await env.admin()
    missing = uuid.uuid4().hex
    for method, path, body in (("GET", f"/os-quota-sets/{missing}", None),
                               ("GET", f"/os-quota-sets/{missing}/detail", None),
                               ("GET", f"/os-quota-sets/{missing}/defaults", None),
                               ("PUT", f"/os-quota-sets/{missing}", {"quota_set": {"instances": 1}})):
        r = await env.call(admin, method, path, json=body, expect=400)
        assert fault(r, "badRequest", 400) == f"Project ID {missing} is not a valid project."
