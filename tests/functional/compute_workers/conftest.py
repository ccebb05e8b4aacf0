"""Fixtures of the build-path suite: a cloud with several fake compute hosts, on SQLite and MariaDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kumotest import Cloud, cloud_on


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def fleet_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cloud]:
    async for c in cloud_on(request.param, tmp_path, compute__fake_hosts=3, compute__fake_vcpus=4,
                            compute__fake_memory_mb=4096, compute__fake_local_gb=100,
                            compute__sync_power_state_interval=-1):
        yield c
