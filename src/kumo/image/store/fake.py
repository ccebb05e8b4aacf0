"""An in-memory store for tests: the same contract, bytes kept in a dict."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from kumo.image.store.base import CHUNK, DataMissing, ImageStore, StoreWriter

PREFIX = "fake://"


class _MemoryWriter(StoreWriter):
    def __init__(self, store: FakeStore, key: str) -> None:
        self.store = store
        self.key = key
        self.parts: list[bytes] = []
        self.closed = False

    async def write(self, data: bytes) -> None:
        assert not self.closed, "writer already closed"
        self.parts.append(bytes(data))

    async def commit(self) -> str:
        self.closed = True
        location = PREFIX + self.key
        self.store.blobs[location] = b"".join(self.parts)
        self.parts = []
        return location

    async def abort(self) -> None:
        self.closed = True
        self.parts = []


class FakeStore(ImageStore):
    name = "fake"
    description = "In-memory store (tests only)"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.blobs: dict[str, bytes] = {}

    async def open_writer(self, key: str) -> StoreWriter:
        return _MemoryWriter(self, key)

    async def read(self, location: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        if location not in self.blobs:
            raise DataMissing(f"Image data missing from the store: {location}")
        data = self.blobs[location]
        end = len(data) if length is None else min(len(data), start + length)
        for offset in range(start, end, CHUNK):
            yield data[offset:min(offset + CHUNK, end)]

    async def delete(self, location: str) -> None:
        self.blobs.pop(location, None)

    async def size(self, location: str) -> int:
        if location not in self.blobs:
            raise DataMissing(f"Image data missing from the store: {location}")
        return len(self.blobs[location])
