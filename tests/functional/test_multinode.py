"""Two controller nodes sharing one database and RabbitMQ, as behind HAProxy.

A token revoked through one API node must stop validating on the other at
once (bus fanout), not after a cache timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kumo.node import Node
from kumotest import MARIADB_SERVER, create_mariadb_database, drop_mariadb_database, make_settings, require_service

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


@pytest.fixture
async def two_nodes(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("MariaDB", "127.0.0.1", 3306)
    name = await create_mariadb_database()
    nodes = []
    try:
        for i in range(2):
            settings = make_settings(tmp_path / f"node{i}", database__url=f"{MARIADB_SERVER}/{name}",
                                     bus__url="amqp://guest:guest@127.0.0.1:5672/")
            settings.node.host = f"controller-{i}"
            if i == 1:  # both API nodes share the Fernet keys, as an operator distributes them
                (tmp_path / "node1").mkdir(parents=True)
                (tmp_path / "node1" / "fernet-keys").symlink_to(tmp_path / "node0" / "fernet-keys")
            node = Node(settings, ["controller"])
            await node.start()
            nodes.append(node)
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=n.asgi_app()), base_url="http://kumo.test")
                   for n in nodes]
        yield clients[0], clients[1]
        for c in clients:
            await c.aclose()
    finally:
        for node in nodes:
            await node.stop()
        await drop_mariadb_database(name)


async def test_revocation_reaches_the_other_node_immediately(two_nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = two_nodes
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "secret-admin-pw"}}}}}
    r = await a.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201
    token = r.headers["X-Subject-Token"]
    r = await b.post("/identity/v3/auth/tokens", json=body)
    admin_b = r.headers["X-Subject-Token"]
    # node B validates (and caches) the token issued by node A
    assert (await b.get("/identity/v3/projects", headers={"X-Auth-Token": token})).status_code == 200
    # revoke through node A
    r = await a.delete("/identity/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert r.status_code == 204
    import asyncio

    for _ in range(20):  # the fanout arrives in milliseconds; the 2 s DB poll is the backstop
        if (await b.get("/identity/v3/projects", headers={"X-Auth-Token": token})).status_code == 401:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("node B still accepts a token revoked on node A")
    assert (await b.get("/identity/v3/projects", headers={"X-Auth-Token": admin_b})).status_code == 200
