"""Choosing the accelerator: KVM only where it really runs guest code, TCG otherwise.

A ``/dev/kvm`` that opens is not enough: on nested hosts without the CPU's
``vmx``/``svm`` flag ``KVM_CREATE_VM`` succeeds and QEMU then hangs burning
system time (seen on the machines Kumo is developed on). So KVM is used only
when the flag is present *and* a bounded probe shows KVM executing guest
code: QEMU boots its own firmware (SeaBIOS) under KVM with the firmware's
debug port (0x402) on a file, and SeaBIOS must print its banner there within
a few seconds. No kernel or disk is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("kumo.compute.qemu")

PROBE_SECONDS = 8.0
ACCELS = ("auto", "kvm", "tcg")


@dataclass(frozen=True)
class Accel:
    """The accelerator chosen and, for the log and ``hypervisor show``, why."""

    name: str  # "kvm" or "tcg"
    reason: str


def cpu_virt_flag(cpuinfo: str) -> str | None:
    """``vmx`` (Intel) or ``svm`` (AMD) when the CPU offers hardware virtualisation to this kernel."""
    found = re.search(r"^flags\s*:.*\b(vmx|svm)\b", cpuinfo, re.MULTILINE)
    return found.group(1) if found else None


async def probe_kvm(qemu: str, timeout: float = PROBE_SECONDS) -> tuple[bool, str]:
    """Boot SeaBIOS under KVM and wait for its banner on the debug port; (works, what was seen)."""
    with tempfile.TemporaryDirectory(prefix="kumo-kvm-probe-") as tmp:
        out = Path(tmp) / "debugcon"
        proc = await asyncio.create_subprocess_exec(
            qemu, "-accel", "kvm", "-machine", "pc", "-m", "32", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-chardev", f"file,id=dbg,path={out}",
            "-device", "isa-debugcon,iobase=0x402,chardev=dbg",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        deadline = time.monotonic() + timeout
        seen = False
        try:
            while time.monotonic() < deadline and proc.returncode is None:
                if out.is_file() and b"SeaBIOS" in out.read_bytes():
                    seen = True
                    break
                await asyncio.sleep(0.1)
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            stderr = (await proc.communicate())[1].decode(errors="replace").strip()
        if seen:
            return True, "SeaBIOS ran under KVM"
        if stderr:
            return False, f"QEMU refused KVM: {stderr.splitlines()[-1]}"
        return False, f"no guest output under KVM within {timeout:.0f}s (KVM hangs here)"


async def choose_accel(qemu: str, wanted: str = "auto", cpuinfo_path: Path = Path("/proc/cpuinfo"),
                       kvm_device: Path = Path("/dev/kvm")) -> Accel:
    """The accelerator to use for ``wanted`` (``auto``, ``kvm`` or ``tcg``).

    ``kvm`` asked for explicitly is still probed: a hypervisor that hangs
    every guest is worse than a slow one, so it falls back with a warning.
    """
    if wanted not in ACCELS:
        raise ValueError(f"unknown accelerator {wanted!r}; choose from {', '.join(ACCELS)}")
    if wanted == "tcg":
        return Accel("tcg", "configured (compute.qemu_accel = tcg)")
    cpuinfo = cpuinfo_path.read_text() if cpuinfo_path.is_file() else ""
    flag = cpu_virt_flag(cpuinfo)
    if flag is None:
        return Accel("tcg", "the CPU shows no vmx/svm flag")
    if not os.access(kvm_device, os.R_OK | os.W_OK):
        return Accel("tcg", f"{kvm_device} is missing or not accessible")
    works, seen = await probe_kvm(qemu)
    if works:
        return Accel("kvm", f"CPU flag {flag} and {seen}")
    return Accel("tcg", f"CPU flag {flag} but {seen}")
