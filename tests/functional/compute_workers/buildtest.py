"""Helpers for the build-path suite: instances written as the API writes them, and waiting on their state."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from kumotest import Cloud
from sqlalchemy import select

from kumo.compute.context import RequestContext
from kumo.compute.instances import CREATE, start_action
from kumo.compute.models import ComputeNode, Instance, InstanceAction, InstanceActionEvent, InstanceFault

SMALL = {"flavorid": "s", "name": "small", "vcpus": 1, "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 0, "swap": 0,
         "extra_specs": {}}


def context(project: str = "p1") -> RequestContext:
    return RequestContext(user_id="u1", project_id=project, roles=("member",), request_id=f"req-{uuid.uuid4()}")


async def new_instances(cloud: Cloud, count: int = 1, flavor: dict[str, Any] | None = None,
                        ctx: RequestContext | None = None) -> tuple[RequestContext, list[str], dict[str, Any]]:
    """Rows in BUILD/scheduling with a ``create`` action, and the build request the API would send."""
    ctx = ctx or context()
    flavor = flavor or SMALL
    uuids = [str(uuid.uuid4()) for _ in range(count)]
    async with cloud.node.db.session() as s:
        for i, u in enumerate(uuids):
            s.add(Instance(uuid=u, project_id=ctx.project_id, user_id=ctx.user_id, display_name=f"vm-{i}",
                           hostname=f"vm-{i}", vm_state="building", task_state="scheduling", power_state=0,
                           flavor=flavor, image_ref="img", reservation_id="r-test", launch_index=i))
        await s.flush()
        start_action(s, ctx, uuids, CREATE)
    request = {"flavor": flavor, "image": {"id": "img", "properties": {}}, "project_id": ctx.project_id,
               "scheduler_hints": {}, "availability_zone": None}
    return ctx, uuids, request


async def build(cloud: Cloud, count: int = 1, **kwargs: Any) -> tuple[RequestContext, list[str]]:
    ctx, uuids, request = await new_instances(cloud, count, **kwargs)
    assert cloud.node.compute_deps is not None
    await cloud.node.compute_deps.conductor.build_instances(ctx, uuids, request)
    return ctx, uuids


async def row(cloud: Cloud, uuid_: str) -> Instance:
    async with cloud.node.db.session() as s:
        found = await s.get(Instance, uuid_)
        assert found is not None
        return found


async def wait_for(cloud: Cloud, uuid_: str, *, vm_state: str | None = None, task_state: Any = "any",
                   deleted: bool = False, timeout: float = 10.0) -> Instance:
    """Poll until the instance reaches the state (the bus is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await row(cloud, uuid_)
        ok = (current.deleted_at is not None) if deleted else (
            (vm_state is None or current.vm_state == vm_state)
            and (task_state == "any" or current.task_state == task_state))
        if ok:
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"instance {uuid_} is {current.vm_state}/{current.task_state} "
                                 f"(deleted {current.deleted_at}), wanted {vm_state}/{task_state}")
        await asyncio.sleep(0.02)


async def faults(cloud: Cloud, uuid_: str) -> list[str]:
    async with cloud.node.db.session() as s:
        return list(await s.scalars(select(InstanceFault.message).where(InstanceFault.instance_uuid == uuid_)
                                    .order_by(InstanceFault.id)))


async def events(cloud: Cloud, uuid_: str) -> list[tuple[str, str | None]]:
    async with cloud.node.db.session() as s:
        rows = await s.execute(select(InstanceActionEvent.event, InstanceActionEvent.result)
                               .join(InstanceAction, InstanceAction.id == InstanceActionEvent.action_id)
                               .where(InstanceAction.instance_uuid == uuid_).order_by(InstanceActionEvent.id))
        return [(e, r) for e, r in rows]


async def nodes(cloud: Cloud) -> dict[str, ComputeNode]:
    async with cloud.node.db.session() as s:
        return {n.host: n for n in await s.scalars(select(ComputeNode))}


def fake_driver(cloud: Cloud, host: str):  # type: ignore[no-untyped-def]
    assert cloud.node.fleet is not None
    return cloud.node.fleet.agent(host).driver
