"""The compute host's image cache against the real image API: download once, verify, refuse, evict."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import httpx
import pytest
from kumotest import Cloud, cloud_on

from kumo.compute.image_cache import ImageCache, ImageUnacceptable
from kumo.core.clients import ImageClient


@pytest.fixture
async def cloud(tmp_path: Path):  # type: ignore[no-untyped-def]
    async for c in cloud_on("sqlite", tmp_path):
        yield c


async def upload(cloud: Cloud, data: bytes, headers: dict[str, str], **fields: str) -> str:
    r = await cloud.client.post("/image/v2/images", headers=headers,
                                json={"name": "img", "disk_format": "raw", "container_format": "bare", **fields})
    assert r.status_code == 201, r.text
    image_id = str(r.json()["id"])
    if data:
        r = await cloud.client.put(f"/image/v2/images/{image_id}/file", content=data,
                                   headers={**headers, "Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
    return image_id


def cache_of(cloud: Cloud, root: Path) -> ImageCache:
    client = ImageClient("http://kumo.test/image", transport=httpx.ASGITransport(app=cloud.node.asgi_app()))
    return ImageCache(root, client, max_unused_age=3600)


async def test_fetch_downloads_once_and_verifies(cloud: Cloud, tmp_path: Path) -> None:
    headers = await cloud.admin()
    data = os.urandom(3 * 1024 * 1024 + 17)
    image_id = await upload(cloud, data, headers)
    cache = cache_of(cloud, tmp_path / "cache")
    token = headers["X-Auth-Token"]
    first, second = await asyncio.gather(cache.fetch(token, image_id), cache.fetch(token, image_id))
    assert first == second and first.path.read_bytes() == data and first.disk_format == "raw"
    assert first.size == len(data) and stat.S_IMODE(first.path.stat().st_mode) == 0o400
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [image_id]  # no partial file left
    inode = first.path.stat().st_ino
    assert (await cache.fetch(token, image_id)).path.stat().st_ino == inode  # cached: not downloaded again
    await cache.client.close()


async def test_corrupt_missing_and_inactive_images_are_refused(cloud: Cloud, tmp_path: Path) -> None:
    headers = await cloud.admin()
    token = headers["X-Auth-Token"]
    cache = cache_of(cloud, tmp_path / "cache")
    image_id = await upload(cloud, b"good bytes" * 1000, headers)
    stored = cloud.node.settings.state_dir / "images" / image_id
    stored.write_bytes(b"evil bytes" * 1000)  # same size, different content: the store was tampered with
    with pytest.raises(ImageUnacceptable, match="corrupt: its MD5 checksum does not match"):
        await cache.fetch(token, image_id)
    assert list((tmp_path / "cache").iterdir()) == []
    with pytest.raises(ImageUnacceptable, match="could not be found"):
        await cache.fetch(token, "7b0b0000-0000-4000-8000-00000000dead")
    queued = await upload(cloud, b"", headers)
    with pytest.raises(ImageUnacceptable, match="is not active"):
        await cache.fetch(token, queued)
    with pytest.raises(ImageUnacceptable, match="not valid"):
        await cache.fetch(token, "../../etc")
    await cache.client.close()


async def test_eviction_spares_images_in_use_and_recently_used(cloud: Cloud, tmp_path: Path) -> None:
    headers = await cloud.admin()
    token = headers["X-Auth-Token"]
    cache = cache_of(cloud, tmp_path / "cache")
    used = (await cache.fetch(token, await upload(cloud, b"a" * 100, headers))).path
    idle = (await cache.fetch(token, await upload(cloud, b"b" * 100, headers))).path
    fresh = (await cache.fetch(token, await upload(cloud, b"c" * 100, headers))).path
    old = time.time() - 7200
    for path in (used, idle):
        os.utime(path, (old, old))
    assert await cache.evict({used}) == [idle.name]
    assert used.exists() and fresh.exists() and not idle.exists()
    assert sorted(await cache.evict(set(), max_unused_age=0)) == sorted([used.name, fresh.name])
    await cache.client.close()
