"""Registers the ``tiny`` test image at first start (CirrOS's role in OpenStack).

The image is built from Debian packages by :mod:`kumo.image.tiny` and
uploaded through the same service code path as any user upload (streamed,
hashed, inspected): ``tiny-kernel`` (aki), ``tiny-ramdisk`` (ari) and
``tiny`` — a small raw disk whose ``kernel_id``/``ramdisk_id`` properties
tell the compute driver to boot the kernel directly. All three are public
and owned by the admin project. An existing ``tiny`` is left alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from kumo.core.auth import AuthContext
from kumo.image.data import ImageData
from kumo.image.service import ImageService
from kumo.image.tiny import TinyBuildError, build_tiny

DISK_BYTES = 1024 * 1024


def admin_context(user_id: str, project_id: str) -> AuthContext:
    """The identity the bootstrap acts as: the admin user on the admin project."""
    return AuthContext(token="", user_id=user_id, user_name="admin", user_domain_id="default",
                       user_domain_name="Default", methods=("bootstrap",), roles=("admin", "member", "reader"),
                       project_id=project_id, project_name="admin", project_domain_id="default",
                       project_domain_name="Default",
                       expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while block := await asyncio.to_thread(fh.read, 1024 * 1024):
            yield block


async def _zeros(size: int) -> AsyncIterator[bytes]:
    yield bytes(size)


async def register_tiny(images: ImageService, data: ImageData, ctx: AuthContext, work_dir: Path, cache_dir: Path,
                        say: Callable[[str], None]) -> str | None:
    """Build and upload ``tiny`` unless it exists; returns its id, or None with the reason said."""
    existing = await images.list(ctx, {"name": ["tiny"], "owner": [ctx.project_id or ""]}, [("created_at", "desc")],
                                 None, None)
    if existing:
        return str(existing[0]["id"])
    say("building the tiny test image from Debian packages (cached after the first time) ...")
    try:
        built = await asyncio.to_thread(build_tiny, work_dir, cache_dir, say)
    except TinyBuildError as exc:
        say(f"the tiny test image cannot be built here, so no image `tiny` is registered: {exc}")
        return None
    props = {"os_distro": "kumo-tiny", "os_version": built.version, "hw_qemu_guest_agent": "no"}
    kernel = await images.create(ctx, {"name": "tiny-kernel", "disk_format": "aki", "container_format": "aki",
                                       "visibility": "public", **props})
    await data.upload(ctx, kernel["id"], _file_chunks(built.kernel))
    ramdisk = await images.create(ctx, {"name": "tiny-ramdisk", "disk_format": "ari", "container_format": "ari",
                                        "visibility": "public", **props})
    await data.upload(ctx, ramdisk["id"], _file_chunks(built.ramdisk))
    disk = await images.create(ctx, {"name": "tiny", "disk_format": "raw", "container_format": "bare",
                                     "visibility": "public", "min_ram": 128, "kernel_id": kernel["id"],
                                     "ramdisk_id": ramdisk["id"], **props})
    if built.disk is not None:
        await data.upload(ctx, disk["id"], _file_chunks(built.disk))
    else:
        await data.upload(ctx, disk["id"], _zeros(DISK_BYTES))
    say(f"registered image tiny ({disk['id']}): kernel {built.version}, boots with kernel_id/ramdisk_id")
    return str(disk["id"])
