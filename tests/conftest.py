"""Fixtures shared by every test: a real in-process cloud (see kumotest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kumotest import Cloud, make_settings, start_cloud


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    """A fresh all-in-one controller on SQLite in a temp dir."""
    async for c in start_cloud(make_settings(tmp_path)):
        yield c
