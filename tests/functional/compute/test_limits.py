"""``/limits``: absolute limits per microversion, usage, another project's limits for admins."""

from __future__ import annotations

import uuid

from computetest import ComputeEnv, fault

from kumo.compute.models import Instance, ServerGroup
from kumo.core.db import utcnow

V21 = {"maxImageMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240, "maxSecurityGroupRules": -1,
       "maxSecurityGroups": -1, "maxServerMeta": 128, "maxTotalCores": 20, "maxTotalFloatingIps": -1,
       "maxTotalInstances": 10, "maxTotalKeypairs": 100, "maxTotalRAMSize": 51200, "maxServerGroups": 10,
       "maxServerGroupMembers": 10, "totalCoresUsed": 0, "totalInstancesUsed": 0, "totalRAMUsed": 0,
       "totalSecurityGroupsUsed": 0, "totalFloatingIpsUsed": 0, "totalServerGroupsUsed": 0}
V257 = {"maxServerMeta": 128, "maxTotalCores": 20, "maxTotalInstances": 10, "maxTotalKeypairs": 100,
        "maxTotalRAMSize": 51200, "maxServerGroups": 10, "maxServerGroupMembers": 10, "totalCoresUsed": 0,
        "totalInstancesUsed": 0, "totalRAMUsed": 0, "totalServerGroupsUsed": 0}


async def test_limits_per_microversion(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    r = await env.call(alice, "GET", "/limits")
    assert r.json() == {"limits": {"rate": [], "absolute": V21}}
    v236 = (await env.call(alice, "GET", "/limits", version="2.36")).json()["limits"]["absolute"]
    assert set(V21) - set(v236) == {"maxSecurityGroupRules", "maxSecurityGroups", "maxTotalFloatingIps",
                                    "totalSecurityGroupsUsed", "totalFloatingIpsUsed"}
    v239 = (await env.call(alice, "GET", "/limits", version="2.39")).json()["limits"]["absolute"]
    assert set(v236) - set(v239) == {"maxImageMeta"}
    r = await env.call(alice, "GET", "/limits", version="2.57")
    assert r.json() == {"limits": {"rate": [], "absolute": V257}}
    r = await env.call(alice, "GET", "/limits", version="2.75", params={"x": "1"}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('x' was unexpected)"


async def test_usage_and_quota_changes_show(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    async with env.cloud.node.db.session() as s:
        for deleted in (False, False, True):
            s.add(Instance(uuid=str(uuid.uuid4()), project_id=alice.project_id, user_id=alice.user_id,
                           vm_state="active", reservation_id="r-1", flavor={"vcpus": 2, "memory_mb": 256},
                           deleted_at=utcnow() if deleted else None))
        s.add(ServerGroup(uuid=str(uuid.uuid4()), name="g", project_id=alice.project_id, user_id=alice.user_id,
                          policy="anti-affinity"))
    await env.call(admin, "PUT", f"/os-quota-sets/{alice.project_id}", json={"quota_set": {"instances": 4}})
    absolute = (await env.call(alice, "GET", "/limits", version="2.57")).json()["limits"]["absolute"]
    assert {k: absolute[k] for k in ("maxTotalInstances", "totalInstancesUsed", "totalCoresUsed", "totalRAMUsed",
                                     "totalServerGroupsUsed")} == {
        "maxTotalInstances": 4, "totalInstancesUsed": 2, "totalCoresUsed": 4, "totalRAMUsed": 512,
        "totalServerGroupsUsed": 1}

    other = (await env.call(admin, "GET", "/limits", version="2.57",
                            params={"tenant_id": alice.project_id})).json()["limits"]["absolute"]
    assert other == absolute
    own = (await env.call(admin, "GET", "/limits", version="2.57")).json()["limits"]["absolute"]
    assert own["totalInstancesUsed"] == 0 and own["maxTotalInstances"] == 10
    r = await env.call(alice, "GET", "/limits", params={"tenant_id": alice.project_id}, expect=403)
    assert "limits:other_project" in fault(r, "forbidden", 403)
