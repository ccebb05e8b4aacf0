"""The build path split over processes' worth of nodes: a controller and compute nodes on MariaDB + RabbitMQ.

The controller runs the APIs, conductor and scheduler; each compute node runs
only its agent. Everything between them goes over RabbitMQ, as in a real
multi-node deployment. A compute node that dies mid-build must not leave the
instance in BUILD: a restart reconciles it to ERROR, and without a restart the
conductor's build-timeout sweep does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from buildtest import build, faults, wait_for
from kumotest import MARIADB_SERVER, Cloud, create_mariadb_database, drop_mariadb_database, make_settings, require_service
import httpx

from kumo.node import Node

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]
BROKER = "amqp://guest:guest@127.0.0.1:5672/"


class Cluster:
    def __init__(self, tmp_path: Path, database: str) -> None:
        self.tmp_path = tmp_path
        self.database = database
        self.suffix = uuid.uuid4().hex[:8]  # host names (and so queues) unique to this test
        self.nodes: list[Node] = []

    def settings(self, name: str, **overrides: Any):  # type: ignore[no-untyped-def]
        settings = make_settings(self.tmp_path / name, database__url=f"{MARIADB_SERVER}/{self.database}",
                                 bus__url=BROKER, compute__sync_power_state_interval=-1, **overrides)
        settings.node.host = f"{name}-{self.suffix}"
        return settings

    async def start(self, name: str, roles: list[str], **overrides: Any) -> Node:
        node = Node(self.settings(name, **overrides), roles)
        await node.start()
        self.nodes.append(node)
        return node

    async def stop(self, node: Node) -> None:
        await node.stop()
        self.nodes.remove(node)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("MariaDB", "127.0.0.1", 3306)
    name = await create_mariadb_database()
    c = Cluster(tmp_path, name)
    try:
        yield c
    finally:
        for node in list(c.nodes):
            await node.stop()
        await drop_mariadb_database(name)


async def controller_cloud(cluster: Cluster, **overrides: Any) -> Cloud:
    node = await cluster.start("controller", ["controller"], **overrides)
    return Cloud(node=node, client=httpx.AsyncClient(transport=httpx.ASGITransport(app=node.asgi_app()),
                                                     base_url="http://kumo.test"))


async def test_build_runs_on_a_separate_compute_node(cluster: Cluster) -> None:
    cloud = await controller_cloud(cluster)
    compute = await cluster.start("compute1", ["compute"], compute__fake_hosts=2)
    _ctx, uuids = await build(cloud, 2)
    hosts = {(await wait_for(cloud, u, vm_state="active", task_state=None)).host for u in uuids}
    assert compute.fleet is not None
    assert hosts == {a.host for a in compute.fleet.agents}


async def test_compute_node_dying_mid_build_is_reconciled_on_restart(cluster: Cluster) -> None:
    cloud = await controller_cloud(cluster)
    compute = await cluster.start("compute1", ["compute"], compute__fake_spawn_seconds=30)
    _ctx, [instance] = await build(cloud)
    await wait_for(cloud, instance, task_state="spawning")
    await cluster.stop(compute)  # the agent dies with the build message unacknowledged
    compute = await cluster.start("compute1", ["compute"])  # same host; the guest is gone with the process
    inst = await wait_for(cloud, instance, vm_state="error", task_state=None)
    assert "restarted while the instance was building" in (await faults(cloud, instance))[-1]
    assert inst.host == compute.settings.node.host


async def test_compute_node_gone_for_good_is_swept_by_the_build_timeout(cluster: Cluster) -> None:
    cloud = await controller_cloud(cluster, compute__build_timeout=2)
    compute = await cluster.start("compute1", ["compute"], compute__fake_spawn_seconds=30)
    _ctx, [instance] = await build(cloud)
    await wait_for(cloud, instance, task_state="spawning")
    await cluster.stop(compute)
    await wait_for(cloud, instance, vm_state="error", task_state=None, timeout=10)
    assert await faults(cloud, instance) == ["Instance build timed out. Set to error state."]
