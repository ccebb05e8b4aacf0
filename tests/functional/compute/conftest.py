"""Fixtures of the compute API suite (helpers are in computetest.py).

Like the identity suite, it runs on SQLite and again on the MariaDB server
(``-m mariadb``; unique constraints, collation and sorting differ there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from computetest import ComputeEnv
from kumotest import Cloud, cloud_on


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cloud]:
    async for c in cloud_on(request.param, tmp_path):
        yield c


@pytest.fixture
async def env(cloud: Cloud) -> ComputeEnv:
    return ComputeEnv(cloud)
