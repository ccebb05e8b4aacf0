"""Fixtures of the compute API suite (helpers are in computetest.py).

Like the identity suite, it runs on SQLite and again on the MariaDB server
(``-m mariadb``; unique constraints, collation and sorting differ there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from computetest import ComputeEnv
from kumotest import (
    MARIADB_SERVER,
    Cloud,
    create_mariadb_database,
    drop_mariadb_database,
    make_settings,
    require_service,
    start_cloud,
)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cloud]:
    if request.param == "sqlite":
        async for c in start_cloud(make_settings(tmp_path)):
            yield c
        return
    require_service("MariaDB", "127.0.0.1", 3306)
    name = await create_mariadb_database()
    try:
        async for c in start_cloud(make_settings(tmp_path, database__url=f"{MARIADB_SERVER}/{name}")):
            yield c
    finally:
        await drop_mariadb_database(name)


@pytest.fixture
async def env(cloud: Cloud) -> ComputeEnv:
    return ComputeEnv(cloud)
