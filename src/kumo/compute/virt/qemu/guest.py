"""One guest on disk: where its files live and the definition it is (re)started from.

A guest is a directory ``<instances_path>/<uuid>/`` (Nova's
``/var/lib/nova/instances/<uuid>``) that outlives its QEMU process:

==================  ===========================================================
``guest.json``      the definition (spec, image, boot files); written last on
                    spawn, so a directory without it is an unfinished spawn
``disk``            root disk, a qcow2 overlay on the cached image
``disk.eph0``       ephemeral disk (when the flavor has one)
``disk.swap``       swap disk (when the flavor has one)
``disk.config``     config drive (vfat, label ``config-2``)
``kernel``          kernel and ramdisk for direct boot (hard links into the cache)
``ramdisk``
``console.log``     everything the guest wrote to its serial port
``qemu.log``        QEMU's own stdout/stderr, one header line per start
``memory.state``    saved memory of a suspended guest
``resize/``         the disks and definition kept for a resize revert
==================  ===========================================================

Sockets and the pid file live in ``<run_dir>/<uuid>/`` instead (``/run``
is cleared at boot, when no guest survives anyway, and its short paths fit
the 108-byte limit of Unix socket names).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kumo.compute.virt.base import InstanceSpec, NicSpec

DEFINITION = "guest.json"


@dataclass(frozen=True)
class GuestPaths:
    """Every file of one guest."""

    uuid: str
    dir: Path
    run: Path

    @classmethod
    def of(cls, instances_path: Path, run_dir: Path, uuid: str) -> GuestPaths:
        return cls(uuid, instances_path / uuid, run_dir / uuid)

    @property
    def definition(self) -> Path:
        return self.dir / DEFINITION

    @property
    def disk(self) -> Path:
        return self.dir / "disk"

    @property
    def ephemeral(self) -> Path:
        return self.dir / "disk.eph0"

    @property
    def swap(self) -> Path:
        return self.dir / "disk.swap"

    @property
    def config_drive(self) -> Path:
        return self.dir / "disk.config"

    @property
    def kernel(self) -> Path:
        return self.dir / "kernel"

    @property
    def ramdisk(self) -> Path:
        return self.dir / "ramdisk"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def qemu_log(self) -> Path:
        return self.dir / "qemu.log"

    @property
    def memory_state(self) -> Path:
        return self.dir / "memory.state"

    @property
    def resize_backup(self) -> Path:
        return self.dir / "resize"

    @property
    def qmp(self) -> Path:
        return self.run / "qmp.sock"

    @property
    def serial(self) -> Path:
        return self.run / "serial.sock"

    @property
    def vnc(self) -> Path:
        return self.run / "vnc.sock"

    @property
    def pidfile(self) -> Path:
        return self.run / "qemu.pid"


@dataclass
class GuestDefinition:
    """What a guest is started from; ``guest.json`` on disk."""

    spec: InstanceSpec
    image_id: str | None
    disk_format: str  # of the image the root disk is backed by ("raw", "qcow2", "iso" ...)
    base: str | None  # the cached image the root disk is backed by
    direct_kernel: bool
    boot_cdrom: bool = False  # an iso image: the image is a cdrom, the root disk is blank

    def to_json(self) -> str:
        spec = dataclasses.asdict(self.spec)
        spec["user_data"] = base64.b64encode(self.spec.user_data).decode() if self.spec.user_data else None
        spec.pop("config_drive_files")  # written to disk.config already; may be large
        return json.dumps({"spec": spec, "image_id": self.image_id, "disk_format": self.disk_format,
                           "base": self.base, "direct_kernel": self.direct_kernel, "boot_cdrom": self.boot_cdrom},
                          indent=1)

    @classmethod
    def from_json(cls, text: str) -> GuestDefinition:
        data: dict[str, Any] = json.loads(text)
        spec = dict(data["spec"])
        spec["user_data"] = base64.b64decode(spec["user_data"]) if spec.get("user_data") else None
        spec["nics"] = tuple(NicSpec(**n) for n in spec.get("nics") or ())
        return cls(spec=InstanceSpec(**spec), image_id=data.get("image_id"), disk_format=data["disk_format"],
                   base=data.get("base"), direct_kernel=bool(data.get("direct_kernel")),
                   boot_cdrom=bool(data.get("boot_cdrom")))

    def save(self, paths: GuestPaths) -> None:
        """Write ``guest.json`` atomically (a crash leaves the old one or the new one)."""
        partial = paths.dir / f".{DEFINITION}.part"
        partial.write_text(self.to_json())
        os.replace(partial, paths.definition)

    @classmethod
    def load(cls, paths: GuestPaths) -> GuestDefinition:
        return cls.from_json(paths.definition.read_text())
