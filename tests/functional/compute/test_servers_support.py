"""Helpers of the servers suites (no tests here): images, boots, and instances put in a given state.

Whether a fake compute host runs in the ``cloud`` fixture or not, the
servers these helpers create through the API start in BUILD; tests that
need another state write it with :func:`set_state` (the API's own rules
are what is under test, not the build).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from computetest import Caller, ComputeEnv
from sqlalchemy import select, update

from kumo.compute.models import Instance, InstanceAction
from kumo.core.db import utcnow
from kumo.core.models import ServiceRecord

HOST = "servers-test-host"  # no agent runs under this name: nothing but the test touches it


async def make_image(env: ComputeEnv, who: Caller, **fields: Any) -> str:
    """An active raw/bare image of 1 KiB owned by ``who``'s project."""
    body = {"name": "img", "disk_format": "raw", "container_format": "bare", **fields}
    r = await env.client.post("/image/v2/images", headers=who.headers, json=body)
    assert r.status_code == 201, r.text
    image_id = str(r.json()["id"])
    r = await env.client.put(f"/image/v2/images/{image_id}/file", content=os.urandom(1024),
                             headers={**who.headers, "Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    return image_id


def server_body(image: str, name: str = "vm", flavor: str = "1", **fields: Any) -> dict[str, Any]:
    return {"server": {"name": name, "imageRef": image, "flavorRef": flavor, **fields}}


async def boot(env: ComputeEnv, who: Caller, image: str, *, version: str | None = None, expect: int = 202,
               **fields: Any) -> Any:
    """``POST /servers``; returns the response body (``server`` or the fault)."""
    r = await env.call(who, "POST", "/servers", version=version, json=server_body(image, **fields), expect=expect)
    return r.json()


async def boot_id(env: ComputeEnv, who: Caller, image: str, **fields: Any) -> str:
    return str((await boot(env, who, image, **fields))["server"]["id"])


async def set_state(env: ComputeEnv, uuid: str, *, vm_state: str = "active", task_state: str | None = None,
                    host: str | None = HOST, launched: bool = True, **values: Any) -> None:
    """Put an instance where a test needs it (as if the build had run on ``host``)."""
    async with env.cloud.node.db.session() as s:
        await s.execute(update(Instance).where(Instance.uuid == uuid).values(
            vm_state=vm_state, task_state=task_state, host=host, node=host, power_state=1,
            launched_at=utcnow() if launched else None, **values))


async def row(env: ComputeEnv, uuid: str) -> Instance:
    async with env.cloud.node.db.session() as s:
        found = await s.scalar(select(Instance).where(Instance.uuid == uuid))
        assert found is not None
        return found


async def action_names(env: ComputeEnv, uuid: str) -> list[str]:
    async with env.cloud.node.db.session() as s:
        return list(await s.scalars(select(InstanceAction.action).where(InstanceAction.instance_uuid == uuid)
                                    .order_by(InstanceAction.id)))


async def heartbeat(env: ComputeEnv, host: str = HOST) -> None:
    """Make ``host``'s compute agent look alive."""
    async with env.cloud.node.db.session() as s:
        s.add(ServiceRecord(host=host, binary="nova-compute", topic=f"compute.{host}", role="compute",
                            updated_at=utcnow()))


class Casts:
    """What the API sent to the conductor and the agents (their stubs are replaced, so nothing builds)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def named(self, method: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == method]


@pytest.fixture
def casts(env: ComputeEnv, monkeypatch: pytest.MonkeyPatch) -> Casts:
    """Record ``build_instances`` / ``terminate_instance`` / ``rebuild_instance`` instead of sending them."""
    recorded = Casts()
    deps = env.cloud.node.compute_deps
    assert deps is not None

    def recorder(method: str) -> Any:
        async def record(ctx: Any, *args: Any) -> None:
            recorded.calls.append((method, {"ctx": ctx, "args": args}))
        return record

    monkeypatch.setattr(deps.conductor, "build_instances", recorder("build_instances"))
    monkeypatch.setattr(deps.agents, "terminate_instance", recorder("terminate_instance"))
    monkeypatch.setattr(deps.agents, "rebuild_instance", recorder("rebuild_instance"))
    return recorded
