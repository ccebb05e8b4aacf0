"""Availability zones (``os-availability-zone``): the summary list and the admin detail with hosts."""

from __future__ import annotations

import datetime as dt
import uuid

from computetest import ComputeEnv
from kumotest import Cloud
from sqlalchemy import update

from kumo.core.db import utcnow
from kumo.core.models import ServiceRecord


async def add_service(cloud: Cloud, host: str, binary: str, *, age: float = 0, disabled: bool = False) -> None:
    seen = utcnow() - dt.timedelta(seconds=age)
    async with cloud.node.db.session() as s:
        s.add(ServiceRecord(id=uuid.uuid4().hex, host=host, binary=binary, disabled=disabled, created_at=seen,
                            updated_at=seen))


async def disable_all_computes(cloud: Cloud) -> None:
    """Turn the fixture's own compute hosts off, so that a test decides what the zone looks like."""
    async with cloud.node.db.session() as s:
        await s.execute(update(ServiceRecord).where(ServiceRecord.binary == "nova-compute").values(disabled=True))


async def test_list_hides_internal_and_reports_unavailable(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    await disable_all_computes(env.cloud)
    await add_service(env.cloud, "ctl", "nova-conductor")
    r = await env.call(alice, "GET", "/os-availability-zone")
    assert r.json() == {"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": False},
                                                  "hosts": None}]}
    await add_service(env.cloud, "c1", "nova-compute", age=3600)  # down but enabled: Nova still lists it available
    r = await env.call(admin, "GET", "/os-availability-zone")
    assert r.json() == {"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True},
                                                  "hosts": None}]}


async def test_detail_lists_hosts_and_services(env: ComputeEnv) -> None:
    admin = await env.admin()
    await add_service(env.cloud, "ctl", "nova-conductor")
    await add_service(env.cloud, "ctl", "nova-scheduler", age=3600)
    await add_service(env.cloud, "c1", "nova-compute")
    await add_service(env.cloud, "c2", "nova-compute", disabled=True)
    await add_service(env.cloud, "ctl", "kumo-api")
    zones = {z["zoneName"]: z for z in (await env.call(admin, "GET", "/os-availability-zone/detail"))
             .json()["availabilityZoneInfo"]}
    assert set(zones) == {"internal", "nova"}
    internal = zones["internal"]
    assert internal["zoneState"] == {"available": True}
    ctl = internal["hosts"]["ctl"]
    assert set(ctl) == {"nova-conductor", "nova-scheduler"}
    assert (ctl["nova-conductor"]["available"], ctl["nova-conductor"]["active"]) == (True, True)
    assert ctl["nova-scheduler"]["available"] is False
    assert dt.datetime.strptime(ctl["nova-conductor"]["updated_at"], "%Y-%m-%dT%H:%M:%S.%f")
    hosts = zones["nova"]["hosts"]
    assert hosts["c1"] == {"nova-compute": {"available": True, "active": True,
                                            "updated_at": hosts["c1"]["nova-compute"]["updated_at"]}}
    assert "c2" not in hosts


async def test_detail_is_admin_only(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    await env.call(alice, "GET", "/os-availability-zone/detail", expect=403)
