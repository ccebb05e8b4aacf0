"""Helpers for tests: a real in-process cloud, not mocks.

``cloud`` builds a Node (temp state dir, SQLite or MariaDB, in-process bus),
runs the real migrations and bootstrap, and talks to the real ASGI app
through httpx's ASGI transport, so every request goes through the same
middleware, policy and service code as in production.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo.core.config import Settings, load_settings
from kumo.node import Node

MARIADB_SERVER = "mysql+asyncmy://root@127.0.0.1:3306"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a backing service is absent, except in CI where it must be there."""
    if not reachable(host, port):
        if os.environ.get("CI"):
            pytest.fail(f"{name} on {host}:{port} is required in CI but is not reachable")
        pytest.skip(f"{name} on {host}:{port} is not reachable")


def make_settings(state_dir: Path, **overrides: Any) -> Settings:
    os.environ.pop("KUMO_CONFIG", None)
    settings = load_settings(None)
    settings.state_dir = state_dir
    settings.identity.password_hash_time_cost = 1
    settings.identity.password_hash_memory_kib = 1024
    settings.identity.admin_password = "secret-admin-pw"
    settings.node.host = "test-host"
    settings.image.bootstrap_tiny = False  # built and booted by tests/integration; slow to repeat per test
    settings.compute.driver = "fake"  # control-plane tests; real guests are tests/integration's
    settings.network.dataplane = "fake"  # the kernel side is tests/integration/network's
    settings.network.bootstrap_networks = False  # the API suites count networks and ports themselves
    for dotted, value in overrides.items():
        target: Any = settings
        *parents, leaf = dotted.split("__")
        for name in parents:
            target = getattr(target, name)
        setattr(target, leaf, value)
    return settings


@dataclass
class Cloud:
    """A running in-process cloud and an HTTP client pointed at it."""

    node: Node
    client: httpx.AsyncClient
    admin_password: str = "secret-admin-pw"

    @property
    def identity(self):  # type: ignore[no-untyped-def]
        return self.node.identity

    async def token(self, user: str = "admin", password: str | None = None, *, project: str | None = "admin",
                    domain: str | None = None, system: bool = False, expect: int = 201) -> str:
        scope: dict[str, Any] | None = None
        if project:
            scope = {"project": {"name": project, "domain": {"id": "default"}}}
        elif domain:
            scope = {"domain": {"name": domain}}
        elif system:
            scope = {"system": {"all": True}}
        body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"id": "default"}, "password": password or self.admin_password}}}}}
        if scope:
            body["auth"]["scope"] = scope
        r = await self.client.post("/identity/v3/auth/tokens", json=body)
        assert r.status_code == expect, r.text
        return r.headers.get("X-Subject-Token", "")

    async def admin(self) -> dict[str, str]:
        return {"X-Auth-Token": await self.token()}

    async def make_user(self, name: str, password: str, project: str | None = None, role: str = "member",
                        headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Create a user (and a project role for it) through the API."""
        headers = headers or await self.admin()
        r = await self.client.post("/identity/v3/users", headers=headers,
                                   json={"user": {"name": name, "password": password}})
        assert r.status_code == 201, r.text
        user = r.json()["user"]
        if project:
            r = await self.client.get(f"/identity/v3/projects?name={project}", headers=headers)
            projects = r.json()["projects"]
            if projects:
                project_id = projects[0]["id"]
            else:
                r = await self.client.post("/identity/v3/projects", headers=headers, json={"project": {"name": project}})
                assert r.status_code == 201, r.text
                project_id = r.json()["project"]["id"]
            r = await self.client.get(f"/identity/v3/roles?name={role}", headers=headers)
            role_id = r.json()["roles"][0]["id"]
            r = await self.client.put(f"/identity/v3/projects/{project_id}/users/{user['id']}/roles/{role_id}",
                                      headers=headers)
            assert r.status_code == 204, r.text
        return user


_TEMPLATE_DB: Path | None = None


def migrated_sqlite_template() -> Path:
    """A migrated SQLite file made once per test process; each cloud starts from a copy.

    Node.start still runs the migrations (and finds nothing to do), so the
    migration path stays covered while tests skip its fixed cost.
    """
    global _TEMPLATE_DB
    if _TEMPLATE_DB is None:
        import tempfile

        from kumo.core.db import upgrade_sync

        from concurrent.futures import ThreadPoolExecutor

        path = Path(tempfile.mkdtemp(prefix="kumo-template-")) / "kumo.db"
        with ThreadPoolExecutor(1) as pool:  # Alembic runs its own event loop
            pool.submit(upgrade_sync, f"sqlite+aiosqlite:///{path}").result()
        _TEMPLATE_DB = path
    return _TEMPLATE_DB


async def start_cloud(settings: Settings, roles: tuple[str, ...] = ("controller", "compute", "network")
                      ) -> AsyncIterator[Cloud]:
    """The cloud of ``settings``; by default a controller with one fake compute host (``compute.fake_hosts``)."""
    if not settings.database.url:
        import shutil

        settings.state_dir.mkdir(parents=True, exist_ok=True)
        target = settings.state_dir / "kumo.db"
        if not target.exists():
            shutil.copyfile(migrated_sqlite_template(), target)
    node = Node(settings, list(roles))
    await node.start()
    transport = httpx.ASGITransport(app=node.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://kumo.test") as client:
        try:
            yield Cloud(node=node, client=client)
        finally:
            await node.stop()


_MARIADB_SCHEMA: list[str] | None = None


def _mariadb_schema() -> list[str]:
    """The migrated schema as DDL, made once per test process in a scratch database (then dropped).

    Every MariaDB test database is built from these statements instead of
    running the migrations again (0.2 s instead of 0.8 s a test); Node.start
    still runs the migrations and finds nothing to do, so that path stays covered.
    ``SHOW CREATE TABLE`` keeps foreign keys and their ON DELETE rules, which
    ``CREATE TABLE ... LIKE`` would drop.
    """
    global _MARIADB_SCHEMA
    if _MARIADB_SCHEMA is None:
        from concurrent.futures import ThreadPoolExecutor

        from kumo.core.db import upgrade_sync

        async def dump(name: str) -> list[str]:
            from sqlalchemy import text
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(f"{MARIADB_SERVER}/{name}")
            try:
                async with engine.connect() as conn:
                    tables = [r[0] for r in await conn.execute(text("SHOW TABLES"))]
                    ddl = [(await conn.execute(text(f"SHOW CREATE TABLE `{t}`"))).one()[1] for t in tables]
                    versions = [r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))]
            finally:
                await engine.dispose()
            return ddl + [f"INSERT INTO alembic_version (version_num) VALUES ('{v}')" for v in versions]

        def build() -> list[str]:
            import asyncio

            name = asyncio.run(_create_empty_database())
            try:
                upgrade_sync(f"{MARIADB_SERVER}/{name}")
                return asyncio.run(dump(name))
            finally:
                asyncio.run(drop_mariadb_database(name))

        with ThreadPoolExecutor(1) as pool:  # Alembic and this dump run their own event loops
            _MARIADB_SCHEMA = pool.submit(build).result()
    return _MARIADB_SCHEMA


async def _create_empty_database() -> str:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"kumo_test_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(f"{MARIADB_SERVER}/")
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    await engine.dispose()
    return name


async def create_mariadb_database() -> str:
    """A fresh database with the migrated schema (built from the process' schema dump)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    schema = _mariadb_schema()
    name = await _create_empty_database()
    engine = create_async_engine(f"{MARIADB_SERVER}/{name}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for statement in schema:
                await conn.execute(text(statement.replace(":", "\\:")))
    finally:
        await engine.dispose()
    return name


async def drop_mariadb_database(name: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"{MARIADB_SERVER}/")
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    await engine.dispose()


async def cloud_on(backend: str, tmp_path: Path, roles: tuple[str, ...] = ("controller", "compute", "network"),
                   **overrides: Any) -> AsyncIterator[Cloud]:
    """A cloud on ``sqlite`` or on a fresh database of the ``mariadb`` server (dropped afterwards)."""
    if backend == "sqlite":
        async for c in start_cloud(make_settings(tmp_path, **overrides), roles):
            yield c
        return
    require_service("MariaDB", "127.0.0.1", 3306)
    name = await create_mariadb_database()
    try:
        async for c in start_cloud(make_settings(tmp_path, database__url=f"{MARIADB_SERVER}/{name}", **overrides),
                                   roles):
            yield c
    finally:
        await drop_mariadb_database(name)
