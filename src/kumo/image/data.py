"""Image bytes: upload, stage + import, download — streamed, hashed, inspected.

An upload claims the image with a conditional UPDATE (``queued`` ->
``saving``), so of two concurrent uploads exactly one proceeds and the other
gets 409, on any number of API processes. Bytes flow through in 1 MiB blocks:
md5 (Glance's ``checksum``) and sha512 (``os_hash_value``) are computed and
the format inspector looks at the headers in a worker thread, while the store
writes them to a temporary name. Only when the stream ended, the data matched
its claimed ``disk_format`` and the quota held does the store commit and the
image become ``active``; any failure aborts the store writer (nothing
partial remains) and returns the image to ``queued``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.db import utcnow
from kumo.image import access
from kumo.image.inspect import FormatInspector, InspectionError
from kumo.image.models import Image
from kumo.image.service import ImageService, image_dict
from kumo.image.states import ImageStatus, check_transition
from kumo.image.store import StoreWriter

log = logging.getLogger("kumo.image")

BLOCK = 1024 * 1024
QUOTA_CHECK_EVERY = 64 * BLOCK


@dataclass
class Ingested:
    location: str
    size: int
    checksum: str
    sha512: str
    virtual_size: int | None


class _Digest:
    """What an upload computes on the way: md5 (``checksum``), sha512 (``os_hash_value``), the format."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha512 = hashlib.sha512()
        self.inspector = FormatInspector()
        self.size = 0



class _Pipeline:
    """Hashes, inspects and stores one block while the next one is received.

    md5 and sha512 run in two worker threads at once (hashlib releases the
    GIL) beside the store write, so an upload uses both cores; one block in
    flight keeps memory constant.
    """

    def __init__(self, digest: _Digest, writer: StoreWriter) -> None:
        self.digest = digest
        self.writer = writer
        self.pending: asyncio.Future[None] | None = None

    async def push(self, block: bytes) -> None:
        await self.drain()
        self.pending = asyncio.ensure_future(self._process(block))

    async def _process(self, block: bytes) -> None:
        d = self.digest
        await asyncio.gather(asyncio.to_thread(d.md5.update, block), asyncio.to_thread(self._sha_and_inspect, block),
                             self.writer.write(block))
        d.size += len(block)

    def _sha_and_inspect(self, block: bytes) -> None:
        self.digest.sha512.update(block)
        self.digest.inspector.feed(block)

    async def drain(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await pending

    async def cancel(self) -> None:
        """Wait for the block in flight to finish (a thread cannot be interrupted), ignoring its errors."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await asyncio.gather(pending, return_exceptions=True)


class ImageData:
    def __init__(self, images: ImageService) -> None:
        self.images = images
        self.db = images.db
        self.store = images.store
        self._tasks: dict[asyncio.Task[None], Image] = {}

    async def stop(self) -> None:
        """Cancel imports still running; their images go back to ``queued`` (the client stages again)."""
        running = dict(self._tasks)
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        for image in running.values():  # a task cancelled before it ran never reverted its image
            await self._abandon_import(image, None)

    async def _claim(self, ctx: AuthContext, image_id: str, source: ImageStatus, target: ImageStatus) -> Image:
        """Move the image from ``source`` to ``target`` atomically, or 409."""
        async with self.db.session() as s:
            row = await self.images.load(s, ctx, image_id)
            access.require_owner(ctx, row, "upload data to")
            if row.status != source:
                if row.status in (ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING):
                    raise errors.Conflict(f"Image {image_id} is already being uploaded or imported "
                                          f"(status {row.status}).")
                check_transition(row.status, target)
            if target == ImageStatus.SAVING:  # Glance: data is only saved once both formats are known
                missing = [k for k in ("disk_format", "container_format") if not getattr(row, k)]
                if missing:
                    raise errors.BadRequest(f"Propert{'ies' if len(missing) > 1 else 'y'} {', '.join(missing)} "
                                            f"must be set prior to saving data.")
            result = await s.execute(update(Image).where(Image.id == image_id, Image.status == source)
                                     .values(status=target, updated_at=utcnow(), uploading_bytes=0))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise errors.Conflict(f"Image {image_id} is already being uploaded or imported.")
            return row

    async def _set_status(self, image_id: str, expected: ImageStatus, **values: Any) -> bool:
        async with self.db.session() as s:
            result = await s.execute(update(Image).where(Image.id == image_id, Image.status == expected)
                                     .values(updated_at=utcnow(), **values))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def _quota_bytes(self) -> int | None:
        mib = self.images.settings.image.image_size_total
        return None if mib < 0 else mib * 1024 * 1024

    async def _ingest(self, image: Image, chunks: AsyncIterator[bytes], key: str, *, inspect: bool) -> Ingested:
        """Stream ``chunks`` into the store under ``key``, checking size limits as they come."""
        quota = self._quota_bytes()
        cap = self.images.settings.image.image_size_cap
        base_usage = await self.images.usage(image.owner) if quota is not None and image.owner else 0
        digest = _Digest()
        writer = await self._open_writer(key)
        pipeline = _Pipeline(digest, writer)
        parts: list[bytes] = []
        pending = received = 0
        next_quota_check = QUOTA_CHECK_EVERY
        try:
            async for chunk in chunks:
                parts.append(chunk)
                pending += len(chunk)
                received += len(chunk)
                if received > cap:
                    raise errors.PayloadTooLarge(f"Image exceeds the maximum image size of {cap} bytes.")
                if quota is not None and base_usage + received > quota:
                    raise self._over_quota(image, quota)
                if pending >= BLOCK:
                    await pipeline.push(b"".join(parts))
                    parts, pending = [], 0
                    if received >= next_quota_check:
                        next_quota_check += QUOTA_CHECK_EVERY
                        await self._set_status(image.id, ImageStatus(image.status), uploading_bytes=received)
            if parts:
                await pipeline.push(b"".join(parts))
            await pipeline.drain()
            virtual_size = None
            if inspect:
                try:
                    info = digest.inspector.result(image.disk_format or "raw")
                except InspectionError as exc:
                    raise errors.BadRequest(f"Image rejected: {exc}") from exc
                virtual_size = info.virtual_size
            location = await writer.commit()
        except BaseException:
            await pipeline.cancel()
            await writer.abort()
            raise
        return Ingested(location, digest.size, digest.md5.hexdigest(), digest.sha512.hexdigest(), virtual_size)

    async def _open_writer(self, key: str) -> StoreWriter:
        """The store's writer; cancelled meanwhile, the writer (and its temporary file) is still thrown away."""
        opening = asyncio.ensure_future(self.store.open_writer(key))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            try:
                writer = await opening
            except Exception:  # noqa: BLE001 - nothing was opened
                raise asyncio.CancelledError from None
            await writer.abort()
            raise

    def _over_quota(self, image: Image, quota: int) -> errors.OverQuota:
        return errors.OverQuota(f"Image storage quota exceeded for project {image.owner}: the limit is "
                                f"{quota // (1024 * 1024)} MiB (image_size_total).")

    async def _finish(self, image: Image, got: Ingested, expected: ImageStatus) -> dict[str, Any]:
        """Record the data and make the image active — unless it was deleted meanwhile."""
        done = await self._set_status(
            image.id, expected, status=ImageStatus.ACTIVE, location=got.location, size=got.size,
            checksum=got.checksum, os_hash_algo="sha512", os_hash_value=got.sha512,
            virtual_size=got.virtual_size, uploading_bytes=0, staged=None)
        if not done:
            await self.store.delete(got.location)
            async with self.db.session() as s:
                gone = await s.get(Image, image.id) is None
            if gone:  # Glance: 410, the data uploaded so far is thrown away
                raise errors.Gone(f"Image {image.id} could not be found after upload. The image may have been "
                                  f"deleted during the upload, cleaning up the chunks uploaded.")
            raise errors.Conflict(f"Image {image.id} was changed during the upload.")
        async with self.db.session() as s:
            row = await s.get(Image, image.id)
            assert row is not None
            return image_dict(row)

    async def upload(self, ctx: AuthContext, image_id: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        """``PUT /v2/images/{id}/file``."""
        image = await self._claim(ctx, image_id, ImageStatus.QUEUED, ImageStatus.SAVING)
        image.status = ImageStatus.SAVING
        try:
            got = await self._ingest(image, chunks, image_id, inspect=True)
        except BaseException:
            await self._set_status(image_id, ImageStatus.SAVING, status=ImageStatus.QUEUED, uploading_bytes=0)
            raise
        return await self._finish(image, got, ImageStatus.SAVING)

    async def stage(self, ctx: AuthContext, image_id: str, chunks: AsyncIterator[bytes]) -> None:
        """``PUT /v2/images/{id}/stage``: keep the bytes aside until ``import``."""
        image = await self._claim(ctx, image_id, ImageStatus.QUEUED, ImageStatus.UPLOADING)
        image.status = ImageStatus.UPLOADING
        try:
            got = await self._ingest(image, chunks, f"staging-{image_id}", inspect=False)
        except BaseException:
            await self._set_status(image_id, ImageStatus.UPLOADING, status=ImageStatus.QUEUED, uploading_bytes=0)
            raise
        if not await self._set_status(image_id, ImageStatus.UPLOADING, staged=got.location, uploading_bytes=got.size,
                                      size=got.size):
            await self.store.delete(got.location)
            raise errors.Conflict(f"Image {image_id} was deleted or changed while staging.")

    async def start_import(self, ctx: AuthContext, image_id: str, method: str) -> asyncio.Task[None]:
        """``POST /v2/images/{id}/import`` with ``glance-direct``: 202, then the work runs in the background."""
        if method != "glance-direct":
            raise errors.BadRequest(f"Import method {method} is not supported; use glance-direct.")
        async with self.db.session() as s:
            row = await self.images.load(s, ctx, image_id)
            access.require_owner(ctx, row, "import")
            if row.status == ImageStatus.ACTIVE:
                raise errors.Conflict("Image with status active cannot be target for import")
            if row.status != ImageStatus.UPLOADING or row.staged is None:
                raise errors.Conflict(f"Image needs to be staged before 'glance-direct' method can be used "
                                      f"(image {image_id} is {row.status}).")
            for key in ("container_format", "disk_format"):
                if not getattr(row, key):
                    raise errors.Conflict(f"'{key}' needs to be set before import")
        image = await self._claim(ctx, image_id, ImageStatus.UPLOADING, ImageStatus.IMPORTING)
        task = asyncio.create_task(self._run_import(image), name=f"image-import-{image_id}")
        self._tasks[task] = image
        task.add_done_callback(lambda done: self._tasks.pop(done, None))
        return task

    async def _run_import(self, image: Image) -> None:
        staged = image.staged
        assert staged is not None
        image.status = ImageStatus.IMPORTING
        got: Ingested | None = None
        try:
            got = await self._ingest(image, self.store.read(staged), image.id, inspect=True)
            await self._finish(image, got, ImageStatus.IMPORTING)
        except BaseException as exc:  # the import is async: record the failure on the image
            if isinstance(exc, Exception):
                log.warning("import of image %s failed: %s", image.id, getattr(exc, "message", exc))
            else:  # cancelled (the process stops): never leave the image stuck in "importing"
                log.warning("import of image %s interrupted; the image goes back to queued", image.id)
            await self._abandon_import(image, got)
            if not isinstance(exc, Exception):
                raise
        finally:
            await self.store.delete(staged)

    async def _abandon_import(self, image: Image, got: Ingested | None) -> None:
        """An import that did not finish: back to ``queued``, staged (and half-recorded) data removed."""
        reverted = await self._set_status(image.id, ImageStatus.IMPORTING, status=ImageStatus.QUEUED, staged=None,
                                          uploading_bytes=0, size=None, virtual_size=None)
        if reverted:
            if got is not None:  # committed, but never recorded as the image's data
                await self.store.delete(got.location)
            if image.staged:
                await self.store.delete(image.staged)

    async def open_download(self, ctx: AuthContext, image_id: str) -> dict[str, Any] | None:
        """The image to download, or None when it has no data yet (Glance: 204)."""
        async with self.db.session() as s:
            row = await self.images.load(s, ctx, image_id)
            if row.status == ImageStatus.DEACTIVATED and not ctx.is_admin:
                raise errors.Forbidden("The requested image has been deactivated. Image data download is "
                                       "forbidden.")
            if row.location is None or row.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
                return None
            return {**image_dict(row), "location": row.location}

    def read(self, location: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.store.read(location, start, length)
