"""The tiny image's pure-Python pieces: newc cpio writer, ELF readers, metadata parsing in /init."""

from __future__ import annotations

import gzip
import io
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kumo.image.tiny import CpioWriter, elf_needed
from kumo.image.tiny_init import INIT, SHELL_LIB, UDHCPC_SCRIPT


def parse_newc(blob: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """(name, mode, data, (rdevmajor, rdevminor)) of every entry, read back independently."""
    entries, off = [], 0
    while True:
        assert blob[off:off + 6] == b"070701", f"bad magic at {off}"
        f = [int(blob[off + 6 + 8 * i:off + 14 + 8 * i], 16) for i in range(13)]
        filesize, namesize = f[6], f[11]
        name = blob[off + 110:off + 110 + namesize]
        assert name.endswith(b"\0")
        off = (off + 110 + namesize + 3) & ~3
        data = blob[off:off + filesize]
        off = (off + filesize + 3) & ~3
        if name == b"TRAILER!!!\0":
            assert blob[off:].strip(b"\0") == b""
            return entries
        entries.append((name[:-1].decode(), f[1], data, (f[9], f[10])))


def test_cpio_newc_round_trip() -> None:
    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    cpio.add_dir("tmp", 0o1777)
    cpio.add_file("init", "#!/bin/sh\necho hi\n", 0o755)
    cpio.add_file("usr/share/x/odd.bin", b"\x00\x01\x02", 0o644)  # parents made implicitly
    cpio.add_symlink("bin/sh", "busybox")
    cpio.add_node("dev/console", stat.S_IFCHR, 5, 1)
    cpio.close()
    entries = parse_newc(buf.getvalue())
    names = [e[0] for e in entries]
    assert names == ["tmp", "init", "usr", "usr/share", "usr/share/x", "usr/share/x/odd.bin",
                     "bin", "bin/sh", "dev", "dev/console"]
    by = {e[0]: e for e in entries}
    assert by["tmp"][1] == stat.S_IFDIR | 0o1777
    assert by["init"][1] == stat.S_IFREG | 0o755 and by["init"][2] == b"#!/bin/sh\necho hi\n"
    assert by["usr/share/x/odd.bin"][2] == b"\x00\x01\x02"
    assert by["bin/sh"][1] == stat.S_IFLNK | 0o777 and by["bin/sh"][2] == b"busybox"
    assert stat.S_ISCHR(by["dev/console"][1]) and by["dev/console"][3] == (5, 1)
    assert len(buf.getvalue()) % 4 == 0


@pytest.mark.skipif(not shutil.which("cpio"), reason="no cpio binary to cross-check with")
def test_cpio_readable_by_gnu_cpio(tmp_path: Path) -> None:
    archive = tmp_path / "a.cpio.gz"
    with gzip.open(archive, "wb") as gz:
        cpio = CpioWriter(gz)
        cpio.add_file("etc/hello", "world\n")
        cpio.close()
    listing = subprocess.run(f"zcat {archive} | cpio -t", shell=True, capture_output=True, text=True, check=True)
    assert listing.stdout.split() == ["etc", "etc/hello"]


def test_elf_needed_reads_a_host_binary() -> None:
    binary = Path(shutil.which("ls") or "/bin/ls").resolve()
    needed, interp = elf_needed(binary.read_bytes())
    assert "libc.so.6" in needed
    assert interp and interp.startswith("/") and "ld-linux" in interp
    if shutil.which("readelf"):
        out = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
        assert needed == [ln.split("[")[1].rstrip("]") for ln in out.splitlines() if "(NEEDED)" in ln]


def test_init_scripts_parse_as_posix_sh() -> None:
    for text in (INIT, UDHCPC_SCRIPT):
        subprocess.run(["sh", "-n"], input=text, text=True, check=True)


META = """{"uuid": "0c0ffee0", "admin_pass": "x",
  "public_keys": {"alice": "ssh-ed25519 AAAAC3Nz alice@host\\n", "bob": "ssh-rsa AAAAB3Nz bob"},
  "keys": [{"name": "alice", "type": "ssh", "data": "ssh-ed25519 AAAAC3Nz alice@host\\n"}],
  "hostname": "tiny-test.novalocal", "name": "tiny", "launch_index": 0}
"""


@pytest.mark.skipif(sys.platform != "linux", reason="needs a POSIX sh with sed/grep/awk")
@pytest.mark.parametrize("meta, hostname, keys", [
    (META, "tiny-test.novalocal", ["ssh-ed25519 AAAAC3Nz alice@host", "ssh-rsa AAAAB3Nz bob"]),
    ('{"hostname":"h1","uuid":"u"}', "h1", []),
    ('{"public_keys": {}, "hostname": "h2"}', "h2", []),
])
def test_metadata_parsing_in_init(tmp_path: Path, meta: str, hostname: str, keys: list[str]) -> None:
    (tmp_path / "meta.json").write_text(meta)
    script = f'{SHELL_LIB}\nmeta_hostname "$1"; echo ---; meta_keys "$1"; true\n'
    out = subprocess.run(["sh", "-c", script, "sh", str(tmp_path / "meta.json")],
                         capture_output=True, text=True, check=True).stdout
    got_host, _, got_keys = out.partition("---\n")
    assert got_host.strip() == hostname
    assert got_keys.splitlines() == keys
