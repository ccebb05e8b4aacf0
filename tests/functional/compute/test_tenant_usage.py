"""Simple tenant usage (``os-simple-tenant-usage``): hours over a window, totals, detail, paging, access."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from computetest import ComputeEnv, fault
from kumotest import Cloud

from kumo.compute.models import Instance
from kumo.core.db import utcnow

SMALL = {"name": "m1.small", "vcpus": 2, "memory_mb": 512, "root_gb": 10, "ephemeral_gb": 5}
TINY = {"name": "m1.tiny", "vcpus": 1, "memory_mb": 256, "root_gb": 1, "ephemeral_gb": 0}
FMT = "%Y-%m-%dT%H:%M:%S.%f"


async def setup_usage(cloud: Cloud, project_a: str) -> tuple[dt.datetime, dict[str, str]]:
    """A 10-hour window two days ago, and instances in and around it."""
    t0 = (utcnow() - dt.timedelta(days=2)).replace(microsecond=0)
    h = dt.timedelta(hours=1)
    specs: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
        "all-window": (project_a, SMALL, {"launched_at": t0 - h}),
        "three-hours": (project_a, SMALL, {"launched_at": t0 + 2 * h, "terminated_at": t0 + 5 * h,
                                           "deleted_at": t0 + 5 * h, "vm_state": "deleted"}),
        "deleted-no-stamp": (project_a, SMALL, {"launched_at": t0 - 5 * h, "deleted_at": t0 + h}),
        "late": (project_a, SMALL, {"launched_at": t0 + 11 * h}),
        "never": (project_a, SMALL, {}),
        "b-two-hours": ("proj-b", TINY, {"launched_at": t0 + 8 * h}),
        "b-gone-before": ("proj-b", TINY, {"launched_at": t0 - 5 * h, "terminated_at": t0 - h,
                                           "deleted_at": t0 - h}),
    }
    ids: dict[str, str] = {}
    async with cloud.node.db.session() as s:
        for name, (project, flavor, fields) in specs.items():
            ids[name] = str(uuid.uuid4())
            fields = {"vm_state": "active", **fields}
            s.add(Instance(uuid=ids[name], project_id=project, user_id="u1", display_name=name, reservation_id="r",
                           flavor=flavor, created_at=t0 - 6 * h, **fields))
    return t0, ids


def window(t0: dt.datetime) -> dict[str, str]:
    return {"start": t0.strftime("%Y-%m-%dT%H:%M:%S"), "end": (t0 + dt.timedelta(hours=10)).strftime(FMT)}


async def test_show_totals_and_server_usages(env: ComputeEnv) -> None:
    alice = await env.user("alice", role="reader")
    t0, ids = await setup_usage(env.cloud, alice.project_id)
    r = await env.call(alice, "GET", f"/os-simple-tenant-usage/{alice.project_id}", params=window(t0))
    usage = r.json()["tenant_usage"]
    assert usage["tenant_id"] == alice.project_id
    assert usage["start"] == t0.strftime(FMT)
    assert usage["stop"] == (t0 + dt.timedelta(hours=10)).strftime(FMT)
    assert usage["total_hours"] == pytest.approx(14.0)
    assert usage["total_vcpus_usage"] == pytest.approx(28.0)
    assert usage["total_memory_mb_usage"] == pytest.approx(7168.0)
    assert usage["total_local_gb_usage"] == pytest.approx(210.0)
    servers = {s["name"]: s for s in usage["server_usages"]}
    assert set(servers) == {"all-window", "three-hours", "deleted-no-stamp"}
    three = servers["three-hours"]
    assert three == {"instance_id": ids["three-hours"], "name": "three-hours", "tenant_id": alice.project_id,
                     "flavor": "m1.small", "hours": pytest.approx(3.0), "memory_mb": 512, "local_gb": 15,
                     "vcpus": 2, "started_at": (t0 + dt.timedelta(hours=2)).strftime(FMT),
                     "ended_at": (t0 + dt.timedelta(hours=5)).strftime(FMT), "state": "terminated",
                     "uptime": 3 * 3600}
    running = servers["all-window"]
    assert (running["state"], running["ended_at"], running["hours"]) == ("active", None, pytest.approx(10.0))
    assert running["uptime"] >= 2 * 86400
    assert servers["deleted-no-stamp"]["hours"] == pytest.approx(1.0)
    assert servers["deleted-no-stamp"]["state"] == "terminated"

    empty = await env.call(alice, "GET", f"/os-simple-tenant-usage/{alice.project_id}",
                           params={"start": "2001-01-01T00:00:00", "end": "2001-01-02T00:00:00"})
    assert empty.json() == {"tenant_usage": {}}


async def test_list_all_projects(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    t0, _ids = await setup_usage(env.cloud, alice.project_id)
    usages = {u["tenant_id"]: u for u in (await env.call(admin, "GET", "/os-simple-tenant-usage",
                                                         params=window(t0))).json()["tenant_usages"]}
    assert set(usages) == {alice.project_id, "proj-b"}
    assert "server_usages" not in usages["proj-b"]
    assert usages["proj-b"]["total_hours"] == pytest.approx(2.0)
    assert usages["proj-b"]["total_local_gb_usage"] == pytest.approx(2.0)
    detailed = (await env.call(admin, "GET", "/os-simple-tenant-usage",
                               params={**window(t0), "detailed": "1"})).json()["tenant_usages"]
    assert {u["tenant_id"]: len(u["server_usages"]) for u in detailed} == {alice.project_id: 3, "proj-b": 1}


async def test_paging_from_2_40(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    t0, _ids = await setup_usage(env.cloud, alice.project_id)
    r = await env.call(admin, "GET", "/os-simple-tenant-usage", version="2.40",
                       params={**window(t0), "detailed": "1", "limit": "2"})
    first = r.json()
    seen = [s["instance_id"] for u in first["tenant_usages"] for s in u["server_usages"]]
    assert len(seen) == 2
    link = first["tenant_usages_links"][0]
    assert link["rel"] == "next" and f"marker={seen[-1]}" in link["href"]
    rest = (await env.call(admin, "GET", "/os-simple-tenant-usage", version="2.40",
                           params={**window(t0), "detailed": "1", "marker": seen[-1]})).json()
    more = [s["instance_id"] for u in rest["tenant_usages"] for s in u["server_usages"]]
    assert len(more) == 2 and not set(more) & set(seen) and "tenant_usages_links" not in rest
    r = await env.call(admin, "GET", f"/os-simple-tenant-usage/{alice.project_id}", version="2.40",
                       params={**window(t0), "limit": "1"})
    assert f"/os-simple-tenant-usage/{alice.project_id}?" in r.json()["tenant_usage_links"][0]["href"]
    missing = str(uuid.uuid4())
    r = await env.call(admin, "GET", "/os-simple-tenant-usage", version="2.40", params={"marker": missing},
                       expect=400)
    assert fault(r, "badRequest", 400) == f"Marker {missing} could not be found."
    unpaged = await env.call(admin, "GET", "/os-simple-tenant-usage", version="2.39",
                             params={**window(t0), "limit": "1"})
    assert "tenant_usages_links" not in unpaged.json()


async def test_bad_input_and_access(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    bob = await env.user("bob", "beta")
    await env.call(alice, "GET", "/os-simple-tenant-usage", expect=403)
    await env.call(bob, "GET", f"/os-simple-tenant-usage/{alice.project_id}", expect=403)
    r = await env.call(admin, "GET", "/os-simple-tenant-usage", params={"start": "yesterday"}, expect=400)
    assert fault(r, "badRequest", 400) == "Invalid datetime string: Datetime is in invalid format"
    r = await env.call(admin, "GET", "/os-simple-tenant-usage",
                       params={"start": "2020-01-02 00:00:00.0", "end": "2020-01-01T00:00:00"}, expect=400)
    assert fault(r, "badRequest", 400) == "Invalid start time. The start time cannot occur after the end time."
    r = await env.call(admin, "GET", "/os-simple-tenant-usage", version="2.75", params={"x": "1"}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('x' was unexpected)"
    future = (utcnow() + dt.timedelta(days=3)).strftime(FMT)
    t0, _ids = await setup_usage(env.cloud, alice.project_id)
    r = await env.call(alice, "GET", f"/os-simple-tenant-usage/{alice.project_id}",
                       params={"start": t0.strftime(FMT), "end": future})
    stop = dt.datetime.strptime(r.json()["tenant_usage"]["stop"], FMT).replace(tzinfo=dt.UTC)
    assert stop <= utcnow()
