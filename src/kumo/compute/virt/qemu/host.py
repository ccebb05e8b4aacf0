"""Facts about the host the QEMU driver reports: memory, CPU model and features, QEMU's version."""

from __future__ import annotations

import asyncio
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any


def host_memory_mb(meminfo: Path = Path("/proc/meminfo")) -> int:
    """MemTotal in MiB (what Nova's libvirt driver reports as ``memory_mb``)."""
    found = re.search(r"^MemTotal:\s+(\d+) kB", meminfo.read_text(), re.MULTILINE)
    return int(found.group(1)) // 1024 if found else 0


@lru_cache(maxsize=1)
def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """Nova's ``cpu_info`` object: arch, model, vendor, topology, features (from the first CPU)."""
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""
    first = text.split("\n\n", 1)[0]
    fields = dict(re.findall(r"^([^\t:]+)\s*:\s*(.*)$", first, re.MULTILINE))
    count = os.cpu_count() or 1
    siblings = int(fields.get("siblings", count) or count)
    cores = int(fields.get("cpu cores", siblings) or siblings)
    return {
        "arch": os.uname().machine,
        "model": fields.get("model name", "unknown"),
        "vendor": {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(fields.get("vendor_id", ""),
                                                                         fields.get("vendor_id", "unknown")),
        "topology": {"sockets": max(1, count // max(1, siblings)), "cores": cores,
                     "threads": max(1, siblings // max(1, cores))},
        "features": sorted(fields.get("flags", "").split()),
    }


async def qemu_version(qemu: str) -> tuple[int, int, int]:
    """``qemu-system-x86_64 --version`` as (major, minor, micro)."""
    proc = await asyncio.create_subprocess_exec(qemu, "--version", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL,
                                                stdin=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    found = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?", out.decode(errors="replace"))
    if not found:
        return (0, 0, 0)
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)
