"""Guest disks with ``qemu-img``, and the config drive with ``mkfs.vfat``/``mcopy``.

* The root disk is a qcow2 overlay on the cached image (copy-on-write, so
  any number of instances share one cached copy), sized to the flavor's
  ``root_gb`` (Nova's libvirt ``Qcow2`` image backend does the same).
* A cached image is checked before the first overlay points at it:
  ``qemu-img info`` with the format Glance claims (never probed: probing
  untrusted images is how format-confusion attacks work), no backing file,
  no external data file, and a raw image must not carry a qcow2 header.
* Snapshots are ``qemu-img convert`` of the overlay (with its backing chain
  flattened) into a new file, written under a temporary name and renamed.
* The config drive is a vfat filesystem labelled ``config-2`` (Nova's
  ``config_drive_format=vfat``), filled without mounting anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kumo.compute.virt.base import VirtError

GIB = 1 << 30
QCOW2_MAGIC = b"QFI\xfb"
#: Glance disk formats qemu-img reads as they are; aki/ari/ami are raw kernels, ramdisks and disks.
QEMU_FORMATS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx",
                "iso": "raw", "ami": "raw", "aki": "raw", "ari": "raw", "ploop": "parallels"}
CONFIG_DRIVE_LABEL = "config-2"
CONFIG_DRIVE_MB = 64  # Nova's CONFIGDRIVESIZE_BYTES


class DiskError(VirtError):
    """A disk operation failed; the message carries the tool's own error."""


async def run(argv: Sequence[str], *, timeout: float = 600, env: Mapping[str, str] | None = None) -> str:
    """Run a disk tool; its stdout, or DiskError with its stderr."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=dict(env) if env is not None else None)
    except FileNotFoundError as exc:
        raise DiskError(f"{argv[0]} is not installed") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise DiskError(f"{Path(argv[0]).name} timed out after {timeout:.0f}s") from None
    if proc.returncode:
        message = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        raise DiskError(f"{Path(argv[0]).name} failed: {message.splitlines()[-1] if message else proc.returncode}")
    return out.decode(errors="replace")


def qemu_format(disk_format: str) -> str:
    try:
        return QEMU_FORMATS[disk_format]
    except KeyError:
        raise DiskError(f"disk format {disk_format!r} cannot be booted") from None


async def info(path: Path, fmt: str, *, force_share: bool = False) -> dict[str, Any]:
    """``qemu-img info --output=json`` read as ``fmt`` (never probed)."""
    argv = ["qemu-img", "info", "--output=json", "-f", fmt]
    if force_share:
        argv.append("-U")
    return dict(json.loads(await run([*argv, str(path)], timeout=60)))


async def check_image(path: Path, disk_format: str) -> int:
    """Refuse an image that is not what it claims or points at other files; its virtual size in bytes."""
    fmt = qemu_format(disk_format)
    if fmt == "raw":
        with path.open("rb") as fh:
            if fh.read(4) == QCOW2_MAGIC:
                raise DiskError("Image claims to be raw but has a qcow2 header (format confusion).")
    try:
        details = await info(path, fmt)
    except DiskError as exc:
        raise DiskError(f"Image is not a valid {disk_format} image: {exc}") from exc
    if details.get("backing-filename") or details.get("full-backing-filename"):
        raise DiskError(f"Image has a backing file ({details.get('backing-filename')}), which is not allowed.")
    specific = (details.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise DiskError("Image has an external data file, which is not allowed.")
    return int(details.get("virtual-size") or path.stat().st_size)


async def create_overlay(path: Path, backing: Path, backing_format: str, size: int) -> None:
    """A qcow2 file of ``size`` bytes whose unwritten blocks read from ``backing``."""
    await run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", qemu_format(backing_format),
               "-b", str(backing), str(path), str(size)], timeout=60)


async def create_blank(path: Path, size: int) -> None:
    await run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(size)], timeout=60)


async def grow(path: Path, size: int) -> None:
    """Grow a qcow2 disk to ``size`` bytes (never shrinks: the caller checked)."""
    await run(["qemu-img", "resize", "-q", "-f", "qcow2", str(path), str(size)], timeout=120)


async def virtual_size(path: Path) -> int:
    return int((await info(path, "qcow2", force_share=True))["virtual-size"])


async def convert(source: Path, target: Path, out_format: str) -> None:
    """Flatten ``source`` (a qcow2 overlay) into ``target`` in ``out_format``; whole or not at all."""
    partial = target.with_name(f".{target.name}.part")
    try:
        await run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", qemu_format(out_format),
                   str(source), str(partial)], timeout=3600)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


async def make_config_drive(path: Path, files: Mapping[str, bytes]) -> None:
    """A vfat image labelled ``config-2`` holding ``files`` (relative paths), as Nova's vfat config drive."""
    partial = path.with_name(f".{path.name}.part")
    with tempfile.TemporaryDirectory(prefix="kumo-configdrive-") as tmp:
        root = Path(tmp)
        for rel, data in files.items():
            target = (root / rel).resolve()
            if root.resolve() not in target.parents:
                raise DiskError(f"config drive path {rel!r} leaves the drive")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            await run(["mkfs.vfat", "-C", "-n", CONFIG_DRIVE_LABEL, str(partial),
                       str(CONFIG_DRIVE_MB * 1024)], timeout=60)
            tops = sorted(str(p) for p in root.iterdir())
            if tops:
                await run(["mcopy", "-s", "-i", str(partial), *tops, "::"], timeout=60,
                          env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link when both live on one filesystem (no bytes copied), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
