"""Fixtures of the network API suite: a real in-process cloud, on SQLite and again on MariaDB (-m mariadb).

The cloud has no ``network`` role: the API is under test here, and a DHCP
agent would take addresses (its ports) the tests count on, as Neutron's own
API tests run without agents. tests/functional/network/test_agent.py runs one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kumotest import Cloud, cloud_on
from neutrontest import NetEnv


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cloud]:
    async for c in cloud_on(request.param, tmp_path, roles=("controller", "compute")):
        yield c


@pytest.fixture
async def net(cloud: Cloud) -> NetEnv:
    return NetEnv(cloud)
