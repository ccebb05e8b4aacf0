"""``kumo image build-tiny``: a small bootable Linux test image made from Debian packages.

It plays the part CirrOS plays for OpenStack: Debian's kernel plus a busybox
initramfs that loads the virtio drivers, takes a DHCP lease, reads a config
drive or the metadata service (hostname, SSH keys, user-data script) and runs
dropbear. Everything comes from ``apt-get download`` (kept in ``cache_dir``, so
later builds download nothing) and ``dpkg-deb -x``; the initramfs (newc cpio,
gzip) is written here in Python. amd64 only. The guest's /init is in tiny_init.py.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kumo.image import tiny_init

KERNEL_META = "linux-image-amd64"
BASE_PACKAGES = ("busybox-static", "dropbear-bin")
SSH_BINARIES = ("usr/sbin/dropbear", "usr/bin/dropbearkey")
MULTIARCH = "x86_64-linux-gnu"
LIB_DIRS = (f"lib/{MULTIARCH}", f"usr/lib/{MULTIARCH}", "lib64", "lib", "usr/lib")
# virtio (pc/q35 and microvm), NIC, disks, and what reads a config drive
# (iso9660 or vfat, as a virtio disk, an IDE/SATA cdrom or a virtio-scsi cdrom).
MODULES = ("virtio_pci", "virtio_mmio", "virtio_net", "virtio_blk", "isofs", "vfat",
           "nls_cp437", "nls_iso8859_1", "nls_ascii", "nls_utf8")
OPTIONAL_MODULES = ("virtio_scsi", "sr_mod", "ata_piix", "ahci")
STAMP_NAME = "tiny.stamp"


class TinyBuildError(Exception):
    """The tiny image cannot be built; the message says why."""


@dataclass(frozen=True)
class TinyImage:
    kernel: Path
    ramdisk: Path
    disk: Path | None
    version: str


@dataclass
class _Pkg:
    name: str
    version: str
    arch: str
    depends: list[str] = field(default_factory=list)

    @property
    def filename(self) -> str:  # what `apt-get download` names the file
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


# --- cpio (newc) -------------------------------------------------------------

class CpioWriter:
    """Writes a newc ("070701") cpio archive, the format the kernel unpacks as initramfs."""

    def __init__(self, out: BinaryIO) -> None:
        self._out, self._ino, self._dirs = out, 0, {""}

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name = name.strip("/")
        self._parents(name)
        self._ino += 1
        nlink = 2 if stat.S_ISDIR(mode) else 1
        raw = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0)
        head = b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        self._out.write(head + b"\0" * (-len(head) % 4))
        self._out.write(data + b"\0" * (-len(data) % 4))

    def _parents(self, name: str) -> None:
        parent = name.rpartition("/")[0]
        if parent not in self._dirs:
            self.add_dir(parent)

    def add_dir(self, name: str, mode: int = 0o755) -> None:
        name = name.strip("/")
        if name not in self._dirs:
            self._parents(name)
            self._dirs.add(name)
            self._entry(name, stat.S_IFDIR | mode)

    def add_file(self, name: str, data: bytes | str, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data.encode() if isinstance(data, str) else data)

    def add_symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_node(self, name: str, kind: int, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, kind | mode, rdev=(major, minor))

    def close(self) -> None:
        self._entry("TRAILER!!!", 0)


# --- ELF: section lookup, DT_NEEDED, .modinfo ----------------------------------

def _elf_sections(data: bytes) -> list[tuple[str, int, int, int, int]]:
    """(name, type, offset, size, link) of each section of a 64-bit little-endian ELF."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise TinyBuildError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    raw = [struct.unpack_from("<IIQQQQI", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = raw[shstrndx][4]
    return [(_cstr(data, names_at + s[0]), s[1], s[4], s[5], s[6]) for s in raw]


def _cstr(data: bytes, at: int) -> str:
    return data[at:data.index(b"\0", at)].decode()


def elf_needed(data: bytes) -> tuple[list[str], str | None]:
    """The DT_NEEDED sonames and the program interpreter (PT_INTERP) of an ELF binary."""
    sections = _elf_sections(data)
    needed, interp = [], None
    for name, kind, off, size, link in sections:
        if name == ".interp":
            interp = data[off:off + size].rstrip(b"\0").decode()
        if kind == 6:  # SHT_DYNAMIC
            strtab = sections[link][2]
            for i in range(0, size, 16):
                tag, val = struct.unpack_from("<qQ", data, off + i)
                if tag == 1:  # DT_NEEDED
                    needed.append(_cstr(data, strtab + val))
    return needed, interp


def module_depends(data: bytes) -> list[str]:
    """The ``depends=`` of a kernel module's .modinfo section (names normalised to ``_``)."""
    for name, _kind, off, size, _link in _elf_sections(data):
        if name == ".modinfo":
            for item in data[off:off + size].split(b"\0"):
                if item.startswith(b"depends="):
                    return [_modname(d) for d in item[8:].decode().split(",") if d]
    return []


def _modname(name: str) -> str:
    return re.sub(r"\.ko(\.(xz|gz|zst))?$", "", name).replace("-", "_")


def _read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        if not shutil.which("zstd"):
            raise TinyBuildError(f"{path.name} is zstd-compressed and the zstd command is not installed")
        return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    return data


# --- apt / dpkg ---------------------------------------------------------------

def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=1800)
    except FileNotFoundError as exc:
        raise TinyBuildError(f"{argv[0]} not found (a Debian system with apt and dpkg is needed)") from exc


def _why(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.startswith(("E:", "W:"))]
    return " / ".join(lines[-3:]) or (proc.stderr or proc.stdout).strip()[-300:] or f"exit {proc.returncode}"


class _Apt:
    def __init__(self, cache_dir: Path, progress: Callable[[str], None]) -> None:
        self.cache_dir, self.progress, self.updated = cache_dir, progress, False
        # apt's _apt sandbox user may not be able to write into cache_dir: download as ourselves.
        self.opts = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []

    def update(self, reason: str) -> None:
        if self.updated:
            return
        self.progress(f"tiny: {reason}; running apt-get update")
        proc = _run(["apt-get", "-q", "update"])
        if proc.returncode:
            raise TinyBuildError(f"apt-get update failed (needs root and a reachable Debian mirror): {_why(proc)}")
        self.updated = True

    def show(self, names: list[str]) -> dict[str, _Pkg]:
        """Candidate version, architecture and first-choice Depends of each package."""
        for attempt in (1, 2):
            proc = _run(["apt-cache", "show", "--no-all-versions", *names])
            found: dict[str, _Pkg] = {}
            for record in proc.stdout.split("\n\n"):
                f = dict(re.findall(r"^([\w-]+): ?(.*)$", record, re.M))
                if "Package" in f and f["Package"] not in found:
                    deps = ", ".join(x for x in (f.get("Pre-Depends"), f.get("Depends")) if x)
                    found[f["Package"]] = _Pkg(f["Package"], f["Version"], f["Architecture"], [
                        re.split(r"[\s(:]", d.split("|")[0].strip())[0] for d in deps.split(",") if d.strip()])
            missing = [n for n in names if n not in found]
            if not missing:
                return found
            if attempt == 1:
                self.update(f"apt does not know {', '.join(missing)}")
        raise TinyBuildError(f"apt-cache: no installable candidate for {', '.join(missing)} "
                             f"(is a Debian package source configured?): {_why(proc)}")

    def fetch(self, pkgs: list[_Pkg]) -> dict[str, Path]:
        """The .deb of each package, downloaded into the cache unless already there."""
        todo = [p for p in pkgs if not (self.cache_dir / p.filename).is_file()]
        for p in pkgs:
            self.progress(f"tiny: downloading {p.name} {p.version}" + ("" if p in todo else " (cached)"))
        if todo:
            argv = ["apt-get", "-q", *self.opts, "download", *(f"{p.name}={p.version}" for p in todo)]
            proc = _run(argv, cwd=self.cache_dir)
            if proc.returncode and not self.updated:  # stale or missing lists: refresh once
                self.update("apt-get download failed")
                proc = _run(argv, cwd=self.cache_dir)
            if proc.returncode:
                raise TinyBuildError(f"apt-get download failed: {_why(proc)}")
        paths = {p.name: self.cache_dir / p.filename for p in pkgs}
        absent = [p.name for p in pkgs if not paths[p.name].is_file()]
        if absent:
            raise TinyBuildError(f"apt-get download did not produce a .deb for {', '.join(absent)}")
        return paths


def _extract(deb: Path, dest: Path) -> Path:
    proc = _run(["dpkg-deb", "-x", str(deb), str(dest)])
    if proc.returncode:
        raise TinyBuildError(f"dpkg-deb -x {deb.name} failed: {_why(proc)}")
    return dest


def _in_tree(root: Path, rel: str) -> Path:
    """Follow symlinks of an unpacked package inside its own root (absolute links included)."""
    path = root / rel.lstrip("/")
    for _ in range(20):
        if not path.is_symlink():
            return path
        target = os.readlink(path)
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
    return path


# --- the build ------------------------------------------------------------------

def build_tiny(output_dir: Path, cache_dir: Path, progress: Callable[[str], None] = print,
               force: bool = False) -> TinyImage:
    """Build ``tiny-vmlinuz`` and ``tiny-initrd.img`` in output_dir (see the module doc)."""
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if not shutil.which(tool):
            raise TinyBuildError(f"{tool} not found (a Debian system with apt and dpkg is needed)")
    output_dir, cache_dir = Path(output_dir), Path(cache_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    apt = _Apt(cache_dir, progress)
    kernel_out, initrd_out = output_dir / "tiny-vmlinuz", output_dir / "tiny-initrd.img"

    progress("tiny: resolving packages")
    top = apt.show([KERNEL_META, *BASE_PACKAGES])
    kernel_name = next((d for d in top[KERNEL_META].depends if d.startswith("linux-image-")), None)
    if not kernel_name:
        raise TinyBuildError(f"{KERNEL_META} does not depend on a versioned linux-image package")
    libs = apt.show([kernel_name, *top["dropbear-bin"].depends])
    kernel = libs.pop(kernel_name)
    pkgs = {p.name: p for p in (kernel, top["busybox-static"], top["dropbear-bin"], *libs.values())}

    stamp = hashlib.sha256("\n".join([*sorted(p.filename for p in pkgs.values()), tiny_init.INIT,
                                      tiny_init.UDHCPC_SCRIPT, *MODULES, *OPTIONAL_MODULES]).encode()).hexdigest()
    image = TinyImage(kernel_out, initrd_out, None, kernel.version)
    stamp_file = output_dir / STAMP_NAME
    if (not force and kernel_out.is_file() and initrd_out.is_file() and stamp_file.is_file()
            and stamp_file.read_text().strip() == stamp):
        progress(f"tiny: {output_dir} is up to date (kernel {kernel.version})")
        return image

    with tempfile.TemporaryDirectory(prefix=".tiny-work-", dir=output_dir) as tmp:
        work = Path(tmp)
        debs = apt.fetch(list(pkgs.values()))
        trees: dict[str, Path] = {}
        for name, deb in debs.items():
            progress(f"tiny: unpacking {deb.name}")
            trees[name] = _extract(deb, work / name)
        for _ in range(3):  # pull in library packages until every soname is found
            needed, missing = _resolve_libs(trees, exclude=(kernel.name, "busybox-static"))
            if not missing:
                break
            more = [d for n in trees if n not in (kernel.name, "busybox-static")
                    for d in pkgs[n].depends if d not in pkgs]
            if not more:
                break
            for p in apt.show(sorted(set(more))).values():
                pkgs[p.name] = p
                trees[p.name] = _extract(apt.fetch([p])[p.name], work / p.name)
        if missing:
            raise TinyBuildError(f"shared libraries for dropbear not found in Debian packages: {', '.join(missing)}")

        kroot = trees[kernel.name]
        vmlinuz = sorted((kroot / "boot").glob("vmlinuz-*"))
        moddirs = sorted((kroot / "lib" / "modules").glob("*/kernel"))
        if not vmlinuz or not moddirs:
            raise TinyBuildError(f"{kernel.name} has no /boot/vmlinuz-* or /lib/modules/*/kernel")
        modules = _resolve_modules(moddirs[0].parent, progress)

        progress(f"tiny: writing {initrd_out.name} ({len(modules)} modules, {len(needed)} libraries)")
        tmp_initrd = work / initrd_out.name
        with open(tmp_initrd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
            cpio = CpioWriter(gz)
            _populate(cpio, trees, modules, needed, kernel)
            cpio.close()
        shutil.copyfile(vmlinuz[-1], work / kernel_out.name)
        os.replace(work / kernel_out.name, kernel_out)
        os.replace(tmp_initrd, initrd_out)
    stamp_file.write_text(stamp + "\n")
    progress(f"tiny: built {kernel_out} ({kernel_out.stat().st_size // 1024} KiB) and "
             f"{initrd_out} ({initrd_out.stat().st_size // 1024} KiB), kernel {kernel.version}")
    return image


def _resolve_libs(trees: dict[str, Path], exclude: tuple[str, ...]) -> tuple[dict[str, bytes], list[str]]:
    """Every shared object the SSH binaries need: {path in image: contents}, plus missing sonames."""
    index: dict[str, Path] = {}
    for name, root in trees.items():
        if name in exclude:
            continue
        for d in LIB_DIRS:
            if (root / d).is_dir():
                for f in sorted((root / d).iterdir()):
                    if ".so" in f.name:
                        index.setdefault(f.name, _in_tree(root, f"{d}/{f.name}"))
    todo = [trees["dropbear-bin"] / b for b in SSH_BINARIES]
    out: dict[str, bytes] = {}
    missing: list[str] = []
    while todo:
        sonames, interp = elf_needed(todo.pop().read_bytes())
        if interp and interp.lstrip("/") not in out:
            if interp.rpartition("/")[2] in index:
                out[interp.lstrip("/")] = index[interp.rpartition("/")[2]].read_bytes()
            elif interp not in missing:
                missing.append(interp)
        for so in sonames:
            where = f"lib/{MULTIARCH}/{so}"
            if where in out or so in missing:
                continue
            if so not in index or not index[so].is_file():
                missing.append(so)
                continue
            out[where] = index[so].read_bytes()
            todo.append(index[so])
    return out, missing


def _resolve_modules(kdir: Path, progress: Callable[[str], None]) -> list[tuple[str, bytes]]:
    """The wanted modules and their dependencies, in load order (dependencies first)."""
    files = {_modname(p.name): p for p in (kdir / "kernel").rglob("*.ko*")}
    builtin_list = kdir / "modules.builtin"
    builtin = {_modname(Path(ln).name) for ln in builtin_list.read_text().split()} if builtin_list.is_file() else set()
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str, required: bool, chain: tuple[str, ...]) -> None:
        if name in seen or name in builtin:
            return
        if name not in files:
            if required:
                raise TinyBuildError(f"kernel module {name} not found (needed by {' <- '.join(chain) or 'the image'})")
            progress(f"tiny: module {name} not in this kernel; skipped")
            return
        seen.add(name)
        data = _read_module(files[name])
        for dep in module_depends(data):
            visit(dep, True, (name, *chain))
        order.append((name, data))

    for m in MODULES:
        visit(m, True, ())
    for m in OPTIONAL_MODULES:
        visit(m, False, ())
    return order


def _populate(cpio: CpioWriter, trees: dict[str, Path], modules: list[tuple[str, bytes]],
              libs: dict[str, bytes], kernel: _Pkg) -> None:
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/share/udhcpc", "etc/dropbear", "proc", "sys",
              "dev", "run", "mnt/config", "var/log", f"lib/{MULTIARCH}", "lib64"):
        cpio.add_dir(d)
    cpio.add_dir("tmp", 0o1777)
    cpio.add_dir("root", 0o700)
    cpio.add_node("dev/console", stat.S_IFCHR, 5, 1)
    cpio.add_node("dev/null", stat.S_IFCHR, 1, 3, 0o666)
    cpio.add_file("init", tiny_init.INIT, 0o755)
    cpio.add_file("bin/busybox", (trees["busybox-static"] / "bin/busybox").read_bytes(), 0o755)
    cpio.add_symlink("bin/sh", "busybox")
    cpio.add_file("usr/share/udhcpc/default.script", tiny_init.UDHCPC_SCRIPT, 0o755)
    for name, text in tiny_init.ETC_FILES.items():
        cpio.add_file(name, text)
    cpio.add_file("etc/kumo-tiny-release", f"kernel={kernel.name} {kernel.version}\n")
    for rel in SSH_BINARIES:
        cpio.add_file(rel, (trees["dropbear-bin"] / rel).read_bytes(), 0o755)
    for rel, data in sorted(libs.items()):
        cpio.add_file(rel, data, 0o755)
    for name, data in modules:
        cpio.add_file(f"lib/modules/{name}.ko", data)
    cpio.add_file("lib/modules/load-order", "".join(f"{name}\n" for name, _ in modules))


def detect_accel() -> str:
    """"kvm" when the CPU has vmx/svm and /dev/kvm is usable, else "tcg" (KVM without the flag hangs)."""
    try:
        flags = set(re.findall(r"\b(vmx|svm)\b", Path("/proc/cpuinfo").read_text()))
    except OSError:
        flags = set()
    return "kvm" if flags and os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"
