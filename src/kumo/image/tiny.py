"""``kumo image build-tiny``: a small bootable Linux test image made from Debian packages.

It plays CirrOS's part: Debian's kernel plus a busybox initramfs that loads the virtio drivers, takes a
DHCP lease, reads a config drive or the metadata service (hostname, SSH keys, user-data script) and runs
dropbear. Packages come from ``apt-get download`` (kept in ``cache_dir``: later builds download nothing)
and ``dpkg-deb -x``; the initramfs (newc cpio, gzip) is written in Python. amd64 only. tiny_init.py is
the guest side (/init, layout)."""

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
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kumo.image import tiny_init
from kumo.image.tiny_kernel import install_kernel

KERNEL_META = "linux-image-amd64"
BASE_PACKAGES = ("busybox-static", "dropbear-bin")
SSH_BINARIES = ("usr/sbin/dropbear", "usr/bin/dropbearkey")
MULTIARCH = "x86_64-linux-gnu"
LIB_DIRS = (f"lib/{MULTIARCH}", f"usr/lib/{MULTIARCH}", "lib64", "lib", "usr/lib")
# virtio (pc/q35 and microvm), NIC, disks, what reads a config drive (iso9660 or vfat, as a virtio
# disk, an IDE/SATA cdrom or a virtio-scsi cdrom), and the ACPI power button (button + evdev, read by
# busybox acpid) so that a clean shutdown request powers the guest off.
MODULES = ("virtio_pci", "virtio_mmio", "virtio_net", "virtio_blk", "isofs", "vfat",
           "nls_cp437", "nls_iso8859_1", "nls_ascii", "nls_utf8")
OPTIONAL_MODULES = ("virtio_scsi", "sr_mod", "ata_piix", "ahci", "button", "evdev")


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
    size: int  # bytes of the .deb, -1 if apt did not say
    depends: list[str]

    @property
    def filename(self) -> str:  # what `apt-get download` names the file
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


class CpioWriter:
    """Writes a newc ("070701") cpio archive, the format the kernel unpacks as initramfs."""

    def __init__(self, out: BinaryIO) -> None:
        self._out, self._ino, self._dirs = out, 0, {""}

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name = name.strip("/")
        parent = name.rpartition("/")[0]
        if parent not in self._dirs:
            self.add_dir(parent)
        self._ino += 1
        raw = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0)
        head = b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        self._out.write(head + b"\0" * (-len(head) % 4))
        self._out.write(data + b"\0" * (-len(data) % 4))

    def add_dir(self, name: str, mode: int = 0o755) -> None:
        name = name.strip("/")
        if name not in self._dirs:
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
    if path.suffix == ".zst":
        raise TinyBuildError(f"{path.name}: zstd-compressed kernel modules are not supported")
    return {".xz": lzma.decompress, ".gz": gzip.decompress}.get(path.suffix, bytes)(path.read_bytes())


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, check=False, cwd=cwd, capture_output=True, text=True, timeout=1800)
    except FileNotFoundError as exc:
        raise TinyBuildError(f"{argv[0]} not found (a Debian system with apt and dpkg is needed)") from exc


def _why(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.startswith(("E:", "W:"))]
    return " / ".join(lines[-3:]) or (proc.stderr or proc.stdout).strip()[-300:] or f"exit {proc.returncode}"


class _Apt:
    def __init__(self, cache_dir: Path, progress: Callable[[str], None]) -> None:
        self.cache_dir, self.progress, self.updated = cache_dir, progress, False
        # Own package cache: ~0.5 s an apt call where the system's is off (Docker), not 1-3 s.
        self.opts = ["-o", f"Dir::Cache::pkgcache={cache_dir / 'apt-pkgcache.bin'}"]
        self.opts += ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []

    def update(self, reason: str) -> None:
        if not self.updated:
            self.progress(f"tiny: {reason}; running apt-get update")
            proc = _run(["apt-get", "-q", *self.opts, "update"])
            if proc.returncode:
                raise TinyBuildError(f"apt-get update failed (needs root and a reachable mirror): {_why(proc)}")
            self.updated = True

    def show(self, names: list[str]) -> dict[str, _Pkg]:
        """Candidate version, architecture and first-choice Depends of each package."""
        for attempt in (1, 2):
            proc = _run(["apt-cache", *self.opts, "show", "--no-all-versions", *names])
            found: dict[str, _Pkg] = {}
            for record in proc.stdout.split("\n\n"):
                f = dict(re.findall(r"^([\w-]+): ?(.*)$", record, re.MULTILINE))
                if "Package" in f and f["Package"] not in found:
                    deps = ", ".join(x for x in (f.get("Pre-Depends"), f.get("Depends")) if x)
                    found[f["Package"]] = _Pkg(f["Package"], f["Version"], f["Architecture"], int(f.get("Size", -1)), [
                        re.split(r"[\s(:]", d.split("|")[0].strip())[0] for d in deps.split(",") if d.strip()])
            if not (missing := [n for n in names if n not in found]):
                return found
            if attempt == 1:
                self.update(f"apt does not know {', '.join(missing)}")
        raise TinyBuildError(f"apt-cache: no installable candidate for {', '.join(missing)} "
                             f"(is a Debian package source configured?): {_why(proc)}")

    def fetch(self, pkgs: list[_Pkg]) -> dict[str, Path]:
        """The .deb of each package, downloaded into the cache unless already there."""
        todo = [p for p in pkgs if not (self.cache_dir / p.filename).is_file()  # or cut short:
                or p.size not in (-1, (self.cache_dir / p.filename).stat().st_size)]
        for p in pkgs:
            self.progress(f"tiny: downloading {p.name} {p.version}" + ("" if p in todo else " (cached)"))
            stem = "linux-image-" if p.name.startswith("linux-image-") else f"{p.name}_"
            for old in self.cache_dir.glob(f"{stem}*.deb"):  # keep one version: the cache stays ~80 MB
                if old.name != p.filename:
                    old.unlink()
        if todo:
            argv = ["apt-get", "-q", *self.opts, "download", *(f"{p.name}={p.version}" for p in todo)]
            proc = _run(argv, cwd=self.cache_dir)
            if proc.returncode and not self.updated:  # stale or missing lists: refresh once
                self.update("apt-get download failed")
                proc = _run(argv, cwd=self.cache_dir)
            if proc.returncode:
                raise TinyBuildError(f"apt-get download failed: {_why(proc)}")
        paths = {p.name: self.cache_dir / p.filename for p in pkgs}
        if absent := [p.name for p in pkgs if not paths[p.name].is_file()]:
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
        if path.is_symlink():
            target = os.readlink(path)
            path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
    return path


def build_tiny(output_dir: Path, cache_dir: Path, progress: Callable[[str], None] = print) -> TinyImage:
    """Build ``tiny-vmlinux`` (or ``tiny-vmlinuz``) and ``tiny-initrd.img`` in output_dir (see the module doc)."""
    try:
        return _build(Path(output_dir), Path(cache_dir), progress)
    except OSError as exc:  # unwritable or full directories and the like
        raise TinyBuildError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc


def _build(output_dir: Path, cache_dir: Path, progress: Callable[[str], None]) -> TinyImage:
    output_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    apt = _Apt(cache_dir, progress)
    initrd_out = output_dir / "tiny-initrd.img"

    progress("tiny: resolving packages")
    top = apt.show([KERNEL_META, *BASE_PACKAGES])
    kernel_name = next((d for d in top[KERNEL_META].depends if d.startswith("linux-image-")), None)
    if not kernel_name:
        raise TinyBuildError(f"{KERNEL_META} does not depend on a versioned linux-image package")
    libs = apt.show([kernel_name, *top["dropbear-bin"].depends])
    kernel = libs.pop(kernel_name)
    pkgs = {p.name: p for p in (kernel, top["busybox-static"], top["dropbear-bin"], *libs.values())}

    with tempfile.TemporaryDirectory(prefix=".tiny-work-", dir=output_dir) as tmp:
        work = Path(tmp)
        debs = apt.fetch(list(pkgs.values()))
        vmlinuz, kdir = _kernel_tree(debs.pop(kernel.name), work, cache_dir, progress)
        modules = _resolve_modules(kdir, progress)
        trees: dict[str, Path] = {}
        for name, deb in debs.items():
            progress(f"tiny: unpacking {deb.name}")
            trees[name] = _extract(deb, work / name)
        for rounds in range(4):  # pull in more library packages until every soname is found
            needed, missing = _resolve_libs(trees)
            more = {d for n in trees if n != "busybox-static" for d in pkgs[n].depends if d not in pkgs}
            if not missing or not more or rounds == 3:
                break
            for p in apt.show(sorted(more)).values():
                pkgs[p.name] = p
                trees[p.name] = _extract(apt.fetch([p])[p.name], work / p.name)
        if missing:
            raise TinyBuildError(f"shared libraries for dropbear not found in Debian packages: {', '.join(missing)}")

        progress(f"tiny: writing {initrd_out.name} ({len(modules)} modules, {len(needed)} libraries)")
        tmp_initrd = work / initrd_out.name
        with open(tmp_initrd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
            binaries = {"bin/busybox": (trees["busybox-static"] / "bin/busybox").read_bytes(), **needed,
                        **{rel: (trees["dropbear-bin"] / rel).read_bytes() for rel in SSH_BINARIES}}
            tiny_init.populate(CpioWriter(gz), binaries, [(name, _read_module(path)) for name, path in modules],
                               f"kernel={kernel.name} {kernel.version}\n")
        kernel_out = install_kernel(vmlinuz, work, output_dir)  # PVH ELF when possible (tiny_kernel.py)
        os.replace(tmp_initrd, initrd_out)
    progress(f"tiny: built {kernel_out} ({kernel_out.stat().st_size // 1024} KiB) and "
             f"{initrd_out} ({initrd_out.stat().st_size // 1024} KiB), kernel {kernel.version}")
    return TinyImage(kernel_out, initrd_out, None, kernel.version)


def _kernel_files(root: Path) -> tuple[Path, Path]:
    vmlinuz = sorted((root / "boot").glob("vmlinuz-*"))
    moddirs = sorted((root / "lib" / "modules").glob("*/kernel"))
    if not vmlinuz or not moddirs:
        raise TinyBuildError(f"no /boot/vmlinuz-* or /lib/modules/*/kernel in {root.name}")
    return vmlinuz[-1], moddirs[-1].parent


def _kernel_tree(deb: Path, work: Path, cache_dir: Path, progress: Callable[[str], None]) -> tuple[Path, Path]:
    """vmlinuz and lib/modules/<kver> of the kernel. Unpacking it (~400 MB) is the slow step, so
    the first build keeps a trimmed copy (vmlinuz, the modules used) in the cache for the next."""
    key = hashlib.sha256(" ".join(MODULES + OPTIONAL_MODULES).encode()).hexdigest()[:8]
    keep = cache_dir / "unpacked" / f"{deb.stem}-{key}"
    if (keep / ".complete").is_file():
        progress(f"tiny: unpacking {deb.name} (cached)")
        return _kernel_files(keep)
    progress(f"tiny: unpacking {deb.name}")
    root = _extract(deb, work / "kernel")
    vmlinuz, kdir = _kernel_files(root)
    keep.parent.mkdir(parents=True, exist_ok=True)
    trimmed = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=keep.parent))
    trimmed.chmod(0o755)
    kept = [p for p in (vmlinuz, kdir / "modules.builtin") if p.is_file()]
    for rel in kept + [path for _name, path in _resolve_modules(kdir, lambda _m: None)]:
        dest = trimmed / rel.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rel, dest)
    (trimmed / ".complete").write_text(f"{deb.name}\n")
    for old in keep.parent.iterdir():  # older kernels and unfinished copies
        if old != trimmed and (old == keep or not old.name.startswith(".")):
            shutil.rmtree(old, ignore_errors=True)
    try:
        trimmed.rename(keep)
    except OSError:  # a concurrent build got there first
        shutil.rmtree(trimmed, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    return _kernel_files(keep)


def _resolve_libs(trees: dict[str, Path]) -> tuple[dict[str, bytes], list[str]]:
    """Every shared object the SSH binaries need: {path in image: contents}, plus missing sonames."""
    index: dict[str, Path] = {}
    for name, root in trees.items():
        if name == "busybox-static":
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
        wants = [(so, f"lib/{MULTIARCH}/{so}") for so in sonames]
        if interp:  # the dynamic loader goes exactly where PT_INTERP says
            wants.append((interp.rpartition("/")[2], interp.lstrip("/")))
        for so, where in wants:
            if where in out or so in missing:
                continue
            if so not in index or not index[so].is_file():
                missing.append(so)
            else:
                out[where] = index[so].read_bytes()
                todo.append(index[so])
    return out, missing


def _resolve_modules(kdir: Path, progress: Callable[[str], None]) -> list[tuple[str, Path]]:
    """The wanted modules and their dependencies, in load order (dependencies first)."""
    files = {_modname(p.name): p for p in (kdir / "kernel").rglob("*.ko*")}
    listed = (kdir / "modules.builtin").read_text().split() if (kdir / "modules.builtin").is_file() else []
    builtin = {_modname(Path(ln).name) for ln in listed}
    order: list[tuple[str, Path]] = []
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
        for dep in module_depends(_read_module(files[name])):
            visit(dep, True, (name, *chain))
        order.append((name, files[name]))

    for m in MODULES:
        visit(m, True, ())
    for m in OPTIONAL_MODULES:
        visit(m, False, ())
    return order
