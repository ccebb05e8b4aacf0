"""Images as files under ``<state_dir>/images``: written to a temp name, fsynced, renamed.

The temporary file lives in the same directory as the final one, so the
rename is atomic; a crash leaves only a ``.part`` file that ``sweep()``
removes at start. Reads and writes run in worker threads in 1 MiB blocks,
so a multi-GiB image costs constant memory and never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from kumo.image.store.base import CHUNK, DataMissing, ImageStore, StoreWriter

PREFIX = "file://"


class _FileWriter(StoreWriter):
    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
        self._fh: BinaryIO | None = open(self.tmp, "wb")  # noqa: SIM115 - closed in commit/abort

    async def write(self, data: bytes) -> None:
        assert self._fh is not None, "writer already closed"
        await asyncio.to_thread(self._fh.write, data)

    def _finish(self) -> None:
        assert self._fh is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        os.replace(self.tmp, self.final)

    async def commit(self) -> str:
        await asyncio.to_thread(self._finish)
        return PREFIX + str(self.final)

    async def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.tmp.unlink(missing_ok=True)


class FilesystemStore(ImageStore):
    name = "file"
    description = "Local filesystem store"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.sweep()

    def sweep(self, older_than: float = 3600.0) -> int:
        """Remove ``.part`` files left by a crash; returns how many.

        Only files untouched for ``older_than`` seconds go: another API
        process sharing this directory may be writing a younger one.
        """
        import time

        removed = 0
        cutoff = time.time() - older_than
        for part in self.root.glob(".*.part"):
            if part.stat().st_mtime <= cutoff:
                part.unlink(missing_ok=True)
                removed += 1
        return removed

    def _path(self, location: str) -> Path:
        if not location.startswith(PREFIX):
            raise ValueError(f"not a file store location: {location}")
        path = Path(location[len(PREFIX):]).resolve()
        if path.parent != self.root.resolve():
            raise ValueError("location outside the store")
        return path

    async def open_writer(self, key: str) -> StoreWriter:
        if "/" in key or key.startswith("."):
            raise ValueError(f"bad store key {key!r}")
        return await asyncio.to_thread(_FileWriter, self.root / key)

    async def read(self, location: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(location)
        try:
            fh = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            raise DataMissing(f"Image data missing from the store: {location}") from exc
        try:
            if start:
                await asyncio.to_thread(fh.seek, start)
            remaining = length
            while remaining is None or remaining > 0:
                block = await asyncio.to_thread(fh.read, CHUNK if remaining is None else min(CHUNK, remaining))
                if not block:
                    break
                if remaining is not None:
                    remaining -= len(block)
                yield block
        finally:
            fh.close()

    async def delete(self, location: str) -> None:
        self._path(location).unlink(missing_ok=True)

    async def size(self, location: str) -> int:
        try:
            return self._path(location).stat().st_size
        except FileNotFoundError as exc:
            raise DataMissing(f"Image data missing from the store: {location}") from exc
