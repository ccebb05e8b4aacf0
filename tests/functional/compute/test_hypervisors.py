"""Hypervisors (``os-hypervisors``): views per microversion, ids, search, servers, paging, statistics."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from computetest import ComputeEnv, fault
from kumotest import Cloud

from kumo.compute.models import ComputeNode, Instance
from kumo.core.db import utcnow
from kumo.core.models import ServiceRecord

CPU = {"arch": "x86_64", "model": "Nehalem", "vendor": "Intel", "topology": {"cores": 1, "threads": 1, "sockets": 4}}
MINE = ("h1.example", "h2.example", "h3.example")


async def setup_hosts(cloud: Cloud) -> dict[str, Any]:
    """h1: up, enabled, two servers (one deleted); h2: down and disabled; h3: a node without a service."""
    ids: dict[str, Any] = {}
    now = utcnow()
    async with cloud.node.db.session() as s:
        for host, age, disabled in (("h1", 0, False), ("h2", 3600, True)):
            sid = uuid.uuid4().hex
            ids[f"{host}-service"] = sid
            s.add(ServiceRecord(id=sid, host=host, binary="nova-compute", disabled=disabled,
                                disabled_reason="gone" if disabled else None,
                                created_at=now, updated_at=now - dt.timedelta(seconds=age)))
        for host in ("h1", "h2", "h3"):
            node = ComputeNode(uuid=str(uuid.uuid4()), host=host, hypervisor_hostname=f"{host}.example",
                               hypervisor_type="QEMU", hypervisor_version=8002000, host_ip="192.0.2.1", vcpus=8,
                               memory_mb=16384, local_gb=100, vcpus_used=2, memory_mb_used=1024, local_gb_used=10,
                               running_vms=1, cpu_info=CPU, disk_available_least=80)
            s.add(node)
            await s.flush()
            ids[host] = (node.id, node.uuid)
        for name, deleted, task in (("web", None, "spawning"), ("old", now, None)):
            server = str(uuid.uuid4())
            ids[name] = server
            s.add(Instance(uuid=server, project_id="p1", user_id="u1", display_name=name, vm_state="active",
                           task_state=task, host="h1", reservation_id="r-1", flavor={}, deleted_at=deleted))
    return ids


def mine(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["hypervisor_hostname"]: h for h in body["hypervisors"] if h["hypervisor_hostname"] in MINE}


async def test_list_and_detail_per_microversion(env: ComputeEnv) -> None:
    admin = await env.admin()
    ids = await setup_hosts(env.cloud)
    listed = mine((await env.call(admin, "GET", "/os-hypervisors")).json())
    assert listed == {"h1.example": {"id": ids["h1"][0], "hypervisor_hostname": "h1.example", "state": "up",
                                     "status": "enabled"},
                      "h2.example": {"id": ids["h2"][0], "hypervisor_hostname": "h2.example", "state": "down",
                                     "status": "disabled"}}
    detail = mine((await env.call(admin, "GET", "/os-hypervisors/detail")).json())["h1.example"]
    assert detail["cpu_info"] == json.dumps(CPU)
    assert {k: detail[k] for k in ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
                                   "local_gb_used", "free_ram_mb", "free_disk_gb", "current_workload",
                                   "running_vms", "disk_available_least", "hypervisor_type",
                                   "hypervisor_version", "host_ip")} == {
        "vcpus": 8, "memory_mb": 16384, "local_gb": 100, "vcpus_used": 2, "memory_mb_used": 1024,
        "local_gb_used": 10, "free_ram_mb": 15360, "free_disk_gb": 90, "current_workload": 1, "running_vms": 1,
        "disk_available_least": 80, "hypervisor_type": "QEMU", "hypervisor_version": 8002000,
        "host_ip": "192.0.2.1"}
    assert isinstance(detail["service"]["id"], int)
    assert detail["service"]["host"] == "h1" and detail["service"]["disabled_reason"] is None
    assert "uptime" not in detail

    v228 = mine((await env.call(admin, "GET", "/os-hypervisors/detail", version="2.28")).json())
    assert v228["h1.example"]["cpu_info"] == CPU
    v253 = mine((await env.call(admin, "GET", "/os-hypervisors/detail", version="2.53")).json())
    assert v253["h1.example"]["id"] == ids["h1"][1]
    assert v253["h2.example"]["service"] == {"id": str(uuid.UUID(ids["h2-service"])), "host": "h2",
                                             "disabled_reason": "gone"}
    v288 = mine((await env.call(admin, "GET", "/os-hypervisors/detail", version="2.88")).json())["h1.example"]
    assert set(v288) == {"id", "hypervisor_hostname", "state", "status", "hypervisor_type", "hypervisor_version",
                         "host_ip", "service", "uptime"}
    assert v288["uptime"] is None


async def test_show(env: ComputeEnv) -> None:
    admin = await env.admin()
    ids = await setup_hosts(env.cloud)
    shown = (await env.call(admin, "GET", f"/os-hypervisors/{ids['h1'][0]}")).json()["hypervisor"]
    assert shown["hypervisor_hostname"] == "h1.example" and shown["vcpus"] == 8 and "servers" not in shown
    r = await env.call(admin, "GET", f"/os-hypervisors/{ids['h3'][0]}", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Hypervisor with ID '{ids['h3'][0]}' could not be found."
    r = await env.call(admin, "GET", "/os-hypervisors/abc", expect=404)
    assert fault(r, "itemNotFound", 404) == "Hypervisor with ID 'abc' could not be found."

    shown = (await env.call(admin, "GET", f"/os-hypervisors/{ids['h1'][1]}", version="2.53",
                            params={"with_servers": "true"})).json()["hypervisor"]
    assert shown["servers"] == [{"name": "web", "uuid": ids["web"]}]
    shown = (await env.call(admin, "GET", f"/os-hypervisors/{ids['h2'][1]}", version="2.75",
                            params={"with_servers": "1"})).json()["hypervisor"]
    assert shown["servers"] == []
    shown = (await env.call(admin, "GET", f"/os-hypervisors/{ids['h2'][1]}", version="2.74",
                            params={"with_servers": "1"})).json()["hypervisor"]
    assert "servers" not in shown
    r = await env.call(admin, "GET", f"/os-hypervisors/{ids['h1'][0]}", version="2.53", expect=400)
    assert fault(r, "badRequest", 400) == f"Invalid uuid {ids['h1'][0]}"
    r = await env.call(admin, "GET", f"/os-hypervisors/{ids['h1'][1]}", version="2.53",
                       params={"with_servers": "maybe"}, expect=400)
    assert "with_servers" in fault(r, "badRequest", 400)
    r = await env.call(admin, "GET", f"/os-hypervisors/{uuid.uuid4()}", version="2.53", expect=404)
    shown = (await env.call(admin, "GET", f"/os-hypervisors/{ids['h1'][1]}", version="2.88")).json()["hypervisor"]
    assert shown["uptime"] is None and "vcpus" not in shown


async def test_search_and_servers(env: ComputeEnv) -> None:
    admin = await env.admin()
    ids = await setup_hosts(env.cloud)
    found = (await env.call(admin, "GET", "/os-hypervisors/h1.exam/search")).json()["hypervisors"]
    assert found == [{"id": ids["h1"][0], "hypervisor_hostname": "h1.example", "state": "up", "status": "enabled"}]
    found = (await env.call(admin, "GET", "/os-hypervisors/example/servers")).json()["hypervisors"]
    assert {h["hypervisor_hostname"]: h.get("servers") for h in found} == {
        "h1.example": [{"name": "web", "uuid": ids["web"]}], "h2.example": None}
    r = await env.call(admin, "GET", "/os-hypervisors/nomatch/search", expect=404)
    assert fault(r, "itemNotFound", 404) == "No hypervisor matching 'nomatch' could be found."
    await env.call(admin, "GET", "/os-hypervisors/h1/search", version="2.53", expect=404)
    await env.call(admin, "GET", "/os-hypervisors/h1/servers", version="2.53", expect=404)

    found = (await env.call(admin, "GET", "/os-hypervisors", version="2.53",
                            params={"hypervisor_hostname_pattern": "h1", "with_servers": "yes"})).json()
    assert found == {"hypervisors": [{"id": ids["h1"][1], "hypervisor_hostname": "h1.example", "state": "up",
                                      "status": "enabled", "servers": [{"name": "web", "uuid": ids["web"]}]}]}
    r = await env.call(admin, "GET", "/os-hypervisors", version="2.53",
                       params={"hypervisor_hostname_pattern": "h1", "limit": "1"}, expect=400)
    assert fault(r, "badRequest", 400) == ("Paging over hypervisors with the hypervisor_hostname_pattern query "
                                           "parameter is not supported.")
    r = await env.call(admin, "GET", "/os-hypervisors", version="2.53",
                       params={"hypervisor_hostname_pattern": "zzz"}, expect=404)
    r = await env.call(admin, "GET", "/os-hypervisors", version="2.53", params={"foo": "1"}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('foo' was unexpected)"
    await env.call(admin, "GET", "/os-hypervisors", version="2.52", params={"foo": "1"})


async def test_paging(env: ComputeEnv) -> None:
    admin = await env.admin()
    await setup_hosts(env.cloud)
    everything = (await env.call(admin, "GET", "/os-hypervisors", version="2.53")).json()["hypervisors"]
    assert len(everything) >= 2
    first = (await env.call(admin, "GET", "/os-hypervisors", version="2.53", params={"limit": "1"})).json()
    assert first["hypervisors"] == everything[:1]
    link = first["hypervisors_links"][0]
    assert link["rel"] == "next" and f"marker={everything[0]['id']}" in link["href"]
    rest = (await env.call(admin, "GET", "/os-hypervisors", version="2.53",
                           params={"marker": everything[0]["id"]})).json()
    assert rest["hypervisors"] == everything[1:] and "hypervisors_links" not in rest
    legacy = (await env.call(admin, "GET", "/os-hypervisors/detail", version="2.33", params={"limit": "1"})).json()
    assert "marker=" in legacy["hypervisors_links"][0]["href"]
    assert "/os-hypervisors/detail?" in legacy["hypervisors_links"][0]["href"]
    r = await env.call(admin, "GET", "/os-hypervisors", version="2.53", params={"marker": str(uuid.uuid4())},
                       expect=400)
    assert fault(r, "badRequest", 400).startswith("marker [")
    unpaged = (await env.call(admin, "GET", "/os-hypervisors", version="2.32", params={"limit": "1"})).json()
    assert len(unpaged["hypervisors"]) == len(everything) and "hypervisors_links" not in unpaged


async def test_statistics_and_uptime(env: ComputeEnv) -> None:
    admin = await env.admin()
    ids = await setup_hosts(env.cloud)
    stats = (await env.call(admin, "GET", "/os-hypervisors/statistics")).json()["hypervisor_statistics"]
    enabled = [h for h in (await env.call(admin, "GET", "/os-hypervisors/detail")).json()["hypervisors"]
               if h["status"] == "enabled"]
    assert stats["count"] == len(enabled)
    for field in ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "free_ram_mb",
                  "free_disk_gb", "running_vms", "current_workload"):
        assert stats[field] == sum(h[field] for h in enabled), field
    await env.call(admin, "GET", "/os-hypervisors/statistics", version="2.88", expect=404)
    r = await env.call(admin, "GET", f"/os-hypervisors/{ids['h1'][0]}/uptime", expect=501)
    assert fault(r, "notImplemented", 501) == "The requested functionality is not supported."
    await env.call(admin, "GET", f"/os-hypervisors/{ids['h3'][0]}/uptime", expect=404)
    await env.call(admin, "GET", f"/os-hypervisors/{ids['h1'][1]}/uptime", version="2.88", expect=404)


async def test_admin_only(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    ids = await setup_hosts(env.cloud)
    for path in ("/os-hypervisors", "/os-hypervisors/detail", "/os-hypervisors/statistics",
                 f"/os-hypervisors/{ids['h1'][0]}", "/os-hypervisors/h1/search", "/os-hypervisors/h1/servers"):
        await env.call(alice, "GET", path, expect=403)
