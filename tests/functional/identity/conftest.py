"""The identity suite runs on SQLite and, again, on the MariaDB server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kumotest import Cloud, cloud_on


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cloud]:
    async for c in cloud_on(request.param, tmp_path):
        yield c
