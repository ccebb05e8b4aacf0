"""Finding the PVH-bootable ELF kernel inside a bzImage (kumo/image/tiny_kernel.py)."""

from __future__ import annotations

import gzip
import lzma
import struct

from kumo.image.tiny_kernel import extract_pvh_vmlinux, has_pvh_entry


def elf_with_notes(*notes: tuple[bytes, int]) -> bytes:
    """A minimal 64-bit ELF: a header, one PT_NOTE program header, the notes."""
    body = b""
    for name, kind in notes:
        raw = name + b"\0"
        body += struct.pack("<III", len(raw), 4, kind) + raw.ljust((len(raw) + 3) & ~3, b"\0") + b"\0" * 4
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)  # e_phoff
    struct.pack_into("<HH", header, 0x36, 56, 1)  # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 120, 0, 0, len(body), len(body), 4)
    return bytes(header) + phdr + body


def test_a_pvh_kernel_is_found_in_xz_and_gzip_bzimages() -> None:
    elf = elf_with_notes((b"GNU", 3), (b"Xen", 18))
    assert has_pvh_entry(elf)
    assert extract_pvh_vmlinux(b"setup code" * 100 + lzma.compress(elf, format=lzma.FORMAT_XZ)) == elf
    assert extract_pvh_vmlinux(b"setup code" * 100 + gzip.compress(elf)) == elf


def test_anything_else_keeps_the_bzimage() -> None:
    no_pvh = elf_with_notes((b"Xen", 17), (b"Linux", 18))
    assert not has_pvh_entry(no_pvh)
    assert extract_pvh_vmlinux(lzma.compress(no_pvh, format=lzma.FORMAT_XZ)) is None
    assert extract_pvh_vmlinux(b"\xfd7zXZ\x00 but not xz at all") is None
    assert extract_pvh_vmlinux(b"no compressed payload") is None
    assert not has_pvh_entry(b"\x7fELF\x01\x01" + bytes(60))  # 32-bit
