"""Fixtures of the network API suite: a real in-process cloud, on SQLite and again on MariaDB (-m mariadb)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kumotest import Cloud, cloud_on
from nettest import NetEnv


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cloud]:
    async for c in cloud_on(request.param, tmp_path):
        yield c


@pytest.fixture
async def net(cloud: Cloud) -> NetEnv:
    return NetEnv(cloud)
