"""The store contract, run against every backend in the registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kumo.image.store import STORES, create_store
from kumo.image.store.base import DataMissing, ImageStore


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ImageStore:
    return create_store(request.param, tmp_path / "images")


async def chunks(data: bytes, size: int):  # type: ignore[no-untyped-def]
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def read_all(store: ImageStore, location: str, start: int = 0, length: int | None = None) -> bytes:
    return b"".join([block async for block in store.read(location, start, length)])


async def test_write_commit_read_delete(store: ImageStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    writer = await store.open_writer("img-1")
    async for block in chunks(data, 65536):
        await writer.write(block)
    location = await writer.commit()
    assert await store.size(location) == len(data)
    assert await read_all(store, location) == data
    assert await read_all(store, location, 1000, 5000) == data[1000:6000]
    assert await read_all(store, location, len(data) - 10) == data[-10:]
    await store.delete(location)
    await store.delete(location)  # deleting what is gone is fine
    with pytest.raises(DataMissing):
        await store.size(location)
    with pytest.raises(DataMissing):
        await read_all(store, location)


async def test_abort_leaves_nothing(store: ImageStore, tmp_path: Path) -> None:
    writer = await store.open_writer("img-2")
    await writer.write(b"partial data")
    await writer.abort()
    await writer.abort()
    if store.name == "file":
        assert list((tmp_path / "images").iterdir()) == []
    else:
        assert store.blobs == {}  # type: ignore[attr-defined]


def test_filesystem_refuses_paths_outside_its_root(tmp_path: Path) -> None:
    store = create_store("file", tmp_path / "images")
    with pytest.raises(ValueError):
        store._path("file:///etc/passwd")  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        store._path(f"file://{tmp_path}/images/../x")  # type: ignore[attr-defined]


async def test_filesystem_sweep_removes_crash_leftovers(tmp_path: Path) -> None:
    store = create_store("file", tmp_path / "images")
    writer = await store.open_writer("img-3")
    await writer.write(b"x" * 10)  # never committed: as if the process died here
    assert store.sweep() == 0  # type: ignore[attr-defined]  # young: maybe another process's
    assert store.sweep(older_than=-1) == 1  # type: ignore[attr-defined]
    assert list((tmp_path / "images").iterdir()) == []
    with pytest.raises(ValueError):
        create_store("nope", tmp_path)
