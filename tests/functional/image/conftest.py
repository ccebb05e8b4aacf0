"""Fixtures of the image API suite (helpers are in imagetest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from imagetest import ImageEnv
from kumotest import Cloud, make_settings, start_cloud


@pytest.fixture
async def env(cloud: Cloud) -> ImageEnv:
    return ImageEnv(cloud)


@pytest.fixture
def cloud_with(tmp_path: Path) -> Callable[..., Any]:
    """``async with cloud_with(image__image_size_total=1) as env:`` a cloud with other settings."""

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[ImageEnv]:
        gen = start_cloud(make_settings(tmp_path / "custom", **overrides))
        cloud = await gen.__anext__()
        try:
            yield ImageEnv(cloud)
        finally:
            await gen.aclose()

    return factory
