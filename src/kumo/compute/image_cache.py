"""The compute host's image cache (Nova's ``instances/_base``): each Glance image downloaded once per host.

* **Fetch**: an image is streamed from the image service into
  ``<cache>/<image id>`` under a temporary name while its MD5 (Glance's
  ``checksum``) and its ``os_hash_algo`` digest are computed; only an image
  whose size and digests match what the image service recorded is renamed
  into place. Concurrent boots of one image wait for one download.
* **Refusal**: an image that is missing, not ``active`` or corrupt (digest
  mismatch) raises :class:`ImageUnacceptable`; the build is then aborted
  with that message as the fault, not retried elsewhere (Nova's
  ``ImageUnacceptable`` -> ``BuildAbortException``). Transport failures are
  ordinary errors, so the build is rescheduled.
* **Eviction**: files no guest uses (the driver says which are in use) and
  untouched for ``max_unused_age`` seconds are removed (Nova's
  ``remove_unused_original_minimum_age_seconds``); every fetch touches the
  file's mtime.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kumo.core import errors
from kumo.core.clients import ImageClient

log = logging.getLogger("kumo.compute.image_cache")


class ImageUnacceptable(Exception):
    """The image cannot be booted (missing, not active, corrupt); the message says why."""


@dataclass(frozen=True)
class CachedImage:
    path: Path
    disk_format: str
    size: int


class ImageCache:
    def __init__(self, root: Path, client: ImageClient, *, max_unused_age: float = 86400.0) -> None:
        self.root = root
        self.client = client
        self.max_unused_age = max_unused_age
        self._locks: dict[str, asyncio.Lock] = {}
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path_of(self, image_id: str) -> Path:
        if not image_id or "/" in image_id or image_id.startswith("."):
            raise ImageUnacceptable(f"Image id {image_id!r} is not valid.")
        return self.root / image_id

    async def fetch(self, token: str | None, image_id: str) -> CachedImage:
        """The image on local disk, downloaded and verified unless already cached."""
        path = self.path_of(image_id)
        lock = self._locks.setdefault(image_id, asyncio.Lock())
        async with lock:
            try:
                meta = await self.client.get_image(token, image_id)
            except errors.NotFound as exc:
                raise ImageUnacceptable(f"Image {image_id} could not be found.") from exc
            if meta.get("status") != "active":
                raise ImageUnacceptable(f"Image {image_id} is not active (status {meta.get('status')}).")
            size = int(meta.get("size") or 0)
            if path.is_file() and path.stat().st_size == size:
                os.utime(path)
                return CachedImage(path, str(meta.get("disk_format") or "raw"), size)
            await self._download(token, image_id, meta, path)
        return CachedImage(path, str(meta.get("disk_format") or "raw"), size)

    async def _download(self, token: str | None, image_id: str, meta: dict[str, Any], path: Path) -> None:
        started = time.monotonic()
        md5 = hashlib.md5(usedforsecurity=False)
        algo = str(meta.get("os_hash_algo") or "")
        multihash = hashlib.new(algo) if algo in hashlib.algorithms_available else None
        partial = path.with_name(f".{path.name}.part")
        received = 0

        def write(fh: Any, chunk: bytes) -> None:
            fh.write(chunk)
            md5.update(chunk)
            if multihash is not None:
                multihash.update(chunk)

        try:
            with partial.open("wb") as fh:
                async for chunk in self.client.stream_file(token, image_id):
                    await asyncio.to_thread(write, fh, chunk)
                    received += len(chunk)
                await asyncio.to_thread(os.fsync, fh.fileno())
            problem = _verify(meta, received, md5.hexdigest(), multihash)
            if problem:
                raise ImageUnacceptable(f"Image {image_id} is corrupt: {problem}.")
            partial.chmod(0o400)  # guests only ever read a cached image (their overlays take the writes)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        elapsed = time.monotonic() - started
        log.info("cached image %s: %d bytes in %.2fs (%.0f MB/s)", image_id, received, elapsed,
                 received / max(elapsed, 1e-6) / 1e6)

    async def evict(self, in_use: set[Path], max_unused_age: float | None = None) -> list[str]:
        """Remove cached images no guest uses and nobody fetched for ``max_unused_age`` seconds."""
        age = self.max_unused_age if max_unused_age is None else max_unused_age
        now = time.time()
        used = {p.resolve() for p in in_use}
        removed = []
        for entry in self.root.iterdir():
            if entry.name.startswith(".") or not entry.is_file() or entry.resolve() in used:
                continue
            busy = self._locks.get(entry.name)
            if (busy is not None and busy.locked()) or now - entry.stat().st_mtime < age:
                continue
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
        if removed:
            log.info("image cache: removed %d unused image(s): %s", len(removed), ", ".join(removed))
        return removed


def _verify(meta: dict[str, Any], size: int, md5: str, multihash: Any) -> str | None:
    """Why the downloaded bytes are not the image the service recorded, or None."""
    expected = meta.get("size")
    if expected is not None and int(expected) != size:
        return f"received {size} bytes, the image service recorded {expected}"
    if meta.get("checksum") and meta["checksum"] != md5:
        return "its MD5 checksum does not match the one the image service recorded"
    if multihash is not None and meta.get("os_hash_value") and meta["os_hash_value"] != multihash.hexdigest():
        return f"its {meta.get('os_hash_algo')} hash does not match the one the image service recorded"
    return None
