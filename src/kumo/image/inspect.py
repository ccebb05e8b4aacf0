"""Disk image format inspection: what the uploaded bytes really are, checked against the claim.

Security-critical. An image whose bytes are qcow2 but whose ``disk_format``
says raw (or the other way round) is a format-confusion attack: a hypervisor
that probes the format could follow a qcow2 backing file, an external data
file or a VMDK extent to any path on the host. So every upload is inspected
as it streams past, and :meth:`FormatInspector.result` refuses data that is
not what was claimed, or that refers to anything outside itself.

The inspector is pure Python, never runs ``qemu-img`` and keeps only bounded
state, whatever the image size: the first :data:`PREFIX_LIMIT` bytes (all the
headers, a VMDK descriptor, the ISO 9660 volume descriptors), a rolling tail
of :data:`TAIL_SIZE` bytes (VHD footer, VMDK stream footer) and, for VHDX, one
window of at most :data:`WINDOW_LIMIT` bytes over the metadata region. Layouts
follow the public specifications (qcow2.txt, VMDK 1.1, VHD 1.0, MS-VHDX, VDI
as read by QEMU, ECMA-119). Hostile input only ever raises
:class:`InspectionError`.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import uuid
from dataclasses import dataclass

log = logging.getLogger("kumo.image")

PREFIX_LIMIT = (1 << 20) + 512  # 1 MiB of VMDK descriptor behind its 512-byte header
TAIL_SIZE = 1536  # VMDK stream footer: marker + footer header + end-of-stream
WINDOW_LIMIT = 1 << 20  # at most this much of the VHDX metadata region
READ_CHUNK = 64 * 1024

RAW_ALIASES = frozenset({"raw", "ami", "aki", "ari"})
CLAIMABLE = RAW_ALIASES | {"qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso"}

_QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_CORRUPT = 1 << 1
_QCOW2_DATA_FILE = 1 << 2
_QCOW2_KNOWN_INCOMPAT = 0x1F  # dirty, corrupt, data file, compression type, extended L2
_VMDK_ALLOWED = ("monolithicSparse", "streamOptimized")
_VMDK_GD_AT_END = 0xFFFFFFFFFFFFFFFF
_VDI_SIGNATURE = struct.pack("<I", 0xBEDA107F)
_VHDX_REGION_TABLE = 0x30000
_VHDX_REGION_END = 0x40000
_VHDX_METADATA = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
_VHDX_FILE_PARAMS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
_VHDX_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
_VHDX_PARENT = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le
_ISO_SECTOR = 2048
_ISO_FIRST = 16 * _ISO_SECTOR
_ISO_IDS = (b"CD001", b"BEA01", b"NSR02", b"NSR03", b"TEA01", b"BOOT2", b"CDW02")

_EXTENT = re.compile(r'(rw|rdonly|noaccess)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)")?(?:\s+(\d+))?', re.IGNORECASE)
_FIELD = re.compile(r'([A-Za-z][\w.]*)\s*=\s*"?([^"]*)"?')


class InspectionError(Exception):
    """The image is malformed, unsafe or not in its claimed format; ``message`` is user-facing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    """What the inspector found: the actual ``format`` (``raw`` for ami/aki/ari), sizes in bytes."""

    format: str
    virtual_size: int | None
    actual_size: int


def _truncated(fmt: str) -> InspectionError:
    return InspectionError(f"The {fmt} header is truncated: the image is too short")


class FormatInspector:
    """Fed the image chunk by chunk as it streams through; judged once the stream ended."""

    def __init__(self) -> None:
        self._prefix = bytearray()
        self._tail = bytearray()
        self._windows: list[tuple[int, int, bytearray]] = []  # (offset, end, captured bytes)
        self._pos = 0
        self._planned = False

    @property
    def actual_size(self) -> int:
        """Bytes fed so far."""
        return self._pos

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the stream (any size, including 0 or 1 byte)."""
        data = chunk if isinstance(chunk, bytes) else bytes(memoryview(chunk))
        n = len(data)
        if not n:
            return
        start, self._pos = self._pos, self._pos + n
        room = PREFIX_LIMIT - len(self._prefix)
        if room > 0:
            self._prefix += data[:room]
            if not self._planned and len(self._prefix) >= _VHDX_REGION_END:
                self._planned = True
                self._plan_vhdx_window()
        for offset, end, buf in self._windows:
            need = offset + len(buf)
            if need < end and start <= need < start + n:
                buf += data[need - start:end - start]
        if n >= TAIL_SIZE:
            self._tail = bytearray(data[-TAIL_SIZE:])
        else:
            self._tail += data
            if len(self._tail) > 4 * TAIL_SIZE:
                del self._tail[:-TAIL_SIZE]

    def result(self, claimed_format: str) -> ImageInfo:
        """Detect the format, check it against ``claimed_format`` and the safety rules, or raise."""
        claimed = claimed_format.strip().lower() if isinstance(claimed_format, str) else ""
        if claimed not in CLAIMABLE:
            raise InspectionError(f"Disk format {str(claimed_format)[:32]!r} cannot be inspected and is not accepted")
        try:
            detected = self._detect()
            expected = "raw" if claimed in RAW_ALIASES else claimed
            if detected != expected:
                raise InspectionError(f"Image is not in the claimed format {claimed} (the data is {detected})")
            virtual_size = getattr(self, f"_size_{detected}")()
        except InspectionError:
            raise
        except Exception as exc:  # a parser bug must never let hostile data through, nor crash the caller
            log.warning("format inspector failed on data claimed as %s", claimed, exc_info=True)
            raise InspectionError(f"The {claimed} image is malformed and could not be inspected") from exc
        return ImageInfo(detected, virtual_size, self._pos)

    # -- byte access -----------------------------------------------------------------------------

    def _read(self, offset: int, length: int) -> bytes | None:
        """Bytes at ``offset`` if the prefix or a window holds all of them, else None."""
        if offset + length <= len(self._prefix):
            return bytes(self._prefix[offset:offset + length])
        for start, _end, buf in self._windows:
            if start <= offset and offset + length <= start + len(buf):
                return bytes(buf[offset - start:offset - start + length])
        return None

    def _need(self, length: int, fmt: str) -> bytes:
        if len(self._prefix) < length:
            raise _truncated(fmt)
        return bytes(self._prefix[:length])

    def _footer(self, size: int, skip: int = 0) -> bytes | None:
        """``size`` bytes that end ``skip`` bytes before the end of the stream, if the tail holds them."""
        if self._pos < size + skip or len(self._tail) < size + skip:
            return None
        end = len(self._tail) - skip
        return bytes(self._tail[end - size:end])

    # -- detection -------------------------------------------------------------------------------

    def _detect(self) -> str:
        p = self._prefix
        found = []
        if p[:4] == _QCOW2_MAGIC:
            found.append("qcow2")
        elif p[:4] == b"QED\x00":
            found.append("qed")
        elif p[:4] in (b"KDMV", b"COWD") or self._is_vmdk_descriptor():
            found.append("vmdk")
        elif p[:8] == b"vhdxfile":
            found.append("vhdx")
        footer = self._footer(512)
        if p[:8] == b"conectix" or (footer is not None and footer[:8] == b"conectix"):
            found.append("vhd")
        if p[0x40:0x44] == _VDI_SIGNATURE:
            found.append("vdi")
        if bytes(p[_ISO_FIRST + 1:_ISO_FIRST + 6]) in _ISO_IDS:
            found.append("iso")
        if len(found) > 1:
            raise InspectionError(f"Image matches several formats ({', '.join(sorted(found))}); "
                                  "ambiguous data is not allowed")
        return found[0] if found else "raw"

    def _is_vmdk_descriptor(self) -> bool:
        """A text VMDK descriptor, as QEMU's probe sees it: comments and blanks, then ``version=N``."""
        head = bytes(self._prefix[:65536])
        if head.startswith(b"# Disk DescriptorFile"):
            return True
        for line in head.split(b"\n"):
            line = line.strip()
            if line and not line.startswith(b"#"):
                return re.match(rb"version\s*=\s*\d", line) is not None
        return False

    # -- per-format parsing (called as _size_<format>) --------------------------------------------

    def _size_raw(self) -> int:
        return self._pos

    def _size_qcow2(self) -> int:
        hdr = self._need(72, "qcow2")
        version, backing_offset, _backing_len, cluster_bits, size = struct.unpack_from(">IQIIQ", hdr, 4)
        if version not in (2, 3):
            raise InspectionError(f"qcow2 version {version} is not supported")
        if backing_offset != 0:
            raise InspectionError("qcow2 images with a backing file are not allowed")
        if not 9 <= cluster_bits <= 21:
            raise InspectionError(f"qcow2 cluster size 2^{cluster_bits} is invalid")
        if version == 3:
            incompat, = struct.unpack_from(">Q", self._need(104, "qcow2"), 72)
            if incompat & _QCOW2_DATA_FILE:
                raise InspectionError("qcow2 images with an external data file are not allowed")
            if incompat & ~_QCOW2_KNOWN_INCOMPAT:
                raise InspectionError(f"qcow2 image uses unknown incompatible features "
                                      f"(0x{incompat & ~_QCOW2_KNOWN_INCOMPAT:x}); not allowed")
            if incompat & _QCOW2_CORRUPT:
                raise InspectionError("qcow2 image is marked corrupt")
        return size

    def _size_vmdk(self) -> int:
        if self._prefix[:4] == b"COWD":
            raise InspectionError("VMDK version 3 (COWD) images are not supported")
        if self._prefix[:4] != b"KDMV":  # a bare text descriptor: the data lives in other files
            self._check_vmdk_descriptor(bytes(self._prefix), embedded=False)
            raise InspectionError("VMDK descriptor files without embedded data are not allowed")
        hdr = self._need(512, "vmdk")
        version, _flags, capacity, _grain, desc_sector, desc_sectors = struct.unpack_from("<IIQQQQ", hdr, 4)
        gd_offset, = struct.unpack_from("<Q", hdr, 56)
        if version not in (1, 2, 3):
            raise InspectionError(f"VMDK version {version} is not supported")
        if capacity == 0:  # QEMU would then open the extents the descriptor names
            raise InspectionError("VMDK sparse images without a capacity (descriptor only) are not allowed")
        if desc_sector != 1 or not 1 <= desc_sectors <= 2048:
            raise InspectionError("VMDK descriptor must directly follow the header (at most 1 MiB)")
        end = 512 + desc_sectors * 512
        if len(self._prefix) < end:
            raise _truncated("vmdk")
        self._check_vmdk_descriptor(bytes(self._prefix[512:end]), embedded=True)
        if gd_offset == _VMDK_GD_AT_END:  # stream-optimized: the footer's header overrides this one
            footer = self._footer(512, skip=512)
            if footer is None or footer[:4] != b"KDMV":
                raise InspectionError("VMDK stream footer is missing")
            capacity, = struct.unpack_from("<Q", footer, 12)
        return capacity * 512

    @staticmethod
    def _check_vmdk_descriptor(raw: bytes, *, embedded: bool) -> None:
        text = raw.split(b"\x00", 1)[0]
        try:
            lines = text.decode("ascii").splitlines()
        except UnicodeDecodeError:
            raise InspectionError("VMDK descriptor is not ASCII text") from None
        fields: dict[str, str] = {}
        extents = []
        for line in (raw_line.strip() for raw_line in lines):
            if not line or line.startswith("#") or line.lower().startswith("ddb."):
                continue
            if m := _EXTENT.fullmatch(line):
                extents.append(m)
            elif m := _FIELD.fullmatch(line):
                fields[m.group(1).lower()] = m.group(2)
            else:
                raise InspectionError("VMDK descriptor contains an unrecognised line")
        create_type = fields.get("createtype")
        if create_type is None:
            raise InspectionError("VMDK descriptor has no createType")
        if create_type not in _VMDK_ALLOWED:
            raise InspectionError(f"VMDK create type {create_type[:64]!r} is not allowed")
        if "parentfilenamehint" in fields:
            raise InspectionError("VMDK images with a parent image are not allowed")
        for m in extents:
            name = m.group(4) or ""
            if m.group(3).upper() != "SPARSE" or "/" in name or "\\" in name:
                raise InspectionError("VMDK descriptor references other extent files, which is not allowed")
        if embedded and len(extents) > 1:
            raise InspectionError("VMDK descriptor references other extent files, which is not allowed")

    def _size_vhd(self) -> int:
        copies = [self._footer(512)]
        if self._prefix[:8] == b"conectix":  # dynamic disks: QEMU reads this copy first
            copies.insert(0, self._need(512, "vhd"))
        copies = [c for c in copies if c is not None and c[:8] == b"conectix"]
        for footer in copies:
            disk_type, = struct.unpack_from(">I", footer, 60)
            if disk_type == 4:
                raise InspectionError("VHD differencing images (with a parent image) are not allowed")
            if disk_type not in (2, 3):
                raise InspectionError(f"VHD disk type {disk_type} is not supported")
        size, = struct.unpack_from(">Q", copies[0], 48)
        return size

    def _vhdx_metadata_region(self) -> tuple[int, int]:
        table = self._need(_VHDX_REGION_END, "vhdx")[_VHDX_REGION_TABLE:]
        signature, _checksum, count = struct.unpack_from("<4sII", table, 0)
        if signature != b"regi" or count > 2047:
            raise InspectionError("VHDX region table is invalid")
        for i in range(count):
            guid, offset, length = struct.unpack_from("<16sQI", table, 16 + 32 * i)
            if guid == _VHDX_METADATA:
                return offset, length
        raise InspectionError("VHDX image has no metadata region")

    def _plan_vhdx_window(self) -> None:
        """Once the region table is in, arrange to capture the metadata region if it lies beyond the prefix."""
        if self._prefix[:8] != b"vhdxfile":
            return
        try:
            offset, length = self._vhdx_metadata_region()
        except (InspectionError, struct.error):
            return  # result() reports it
        end = offset + min(length, WINDOW_LIMIT)
        if end > PREFIX_LIMIT:
            self._windows.append((offset, end, bytearray(self._prefix[offset:end])))

    def _vhdx_item(self, offset: int, length: int) -> bytes | None:
        data = self._read(offset, length)
        if data is None and self._pos < offset + length:
            raise _truncated("vhdx")
        return data

    def _size_vhdx(self) -> int | None:
        base, region_length = self._vhdx_metadata_region()
        head = self._vhdx_item(base, 32)
        if head is None:
            return None
        signature, _reserved, count = struct.unpack_from("<8sHH", head, 0)
        if signature != b"metadata" or count > 2047:
            raise InspectionError("VHDX metadata table is invalid")
        entries = self._vhdx_item(base + 32, 32 * count)
        if entries is None:
            return None
        size_at = params_at = None
        for i in range(count):
            guid, item_offset, item_length = struct.unpack_from("<16sII", entries, 32 * i)
            if item_offset + item_length > region_length:
                raise InspectionError("VHDX metadata item lies outside its region")
            if guid == _VHDX_PARENT:
                raise InspectionError("VHDX differencing images (with a parent image) are not allowed")
            if guid == _VHDX_DISK_SIZE and item_length >= 8:
                size_at = base + item_offset
            elif guid == _VHDX_FILE_PARAMS and item_length >= 8:
                params_at = base + item_offset
        params = None if params_at is None else self._vhdx_item(params_at, 8)
        if params is not None and struct.unpack_from("<I", params, 4)[0] & 2:  # HasParent
            raise InspectionError("VHDX differencing images (with a parent image) are not allowed")
        if size_at is None:
            raise InspectionError("VHDX image has no virtual disk size")
        size = self._vhdx_item(size_at, 8)
        return None if size is None else struct.unpack("<Q", size)[0]

    def _size_vdi(self) -> int:
        hdr = self._need(0x178, "vdi")
        version, _header_size, image_type = struct.unpack_from("<III", hdr, 0x44)
        if version != 0x00010001:
            raise InspectionError(f"VDI version 0x{version:08x} is not supported")
        if image_type not in (1, 2):  # normal (dynamic) and fixed; undo/differencing have a parent
            raise InspectionError(f"VDI image type {image_type} is not allowed")
        size, = struct.unpack_from("<Q", hdr, 0x170)
        return size

    def _size_iso(self) -> int | None:
        udf = False
        for offset in range(_ISO_FIRST, PREFIX_LIMIT - _ISO_SECTOR + 1, _ISO_SECTOR):
            vd = self._read(offset, _ISO_SECTOR)
            if vd is None:
                raise _truncated("iso")
            kind, ident = vd[0], vd[1:6]
            if ident not in _ISO_IDS or (ident == b"CD001" and kind == 255):
                break
            udf = udf or ident in (b"NSR02", b"NSR03")
            if ident == b"CD001" and kind == 1:
                (blocks_le,), (blocks_be,) = struct.unpack_from("<I", vd, 80), struct.unpack_from(">I", vd, 84)
                (block_le,), (block_be,) = struct.unpack_from("<H", vd, 128), struct.unpack_from(">H", vd, 130)
                if blocks_le != blocks_be or block_le != block_be or block_le == 0:
                    raise InspectionError("ISO 9660 primary volume descriptor is inconsistent")
                return blocks_le * block_le
        if udf:
            return None  # pure UDF: the size is in structures beyond the volume recognition area
        raise InspectionError("ISO 9660 image has no primary volume descriptor")


def inspect_file(path: str | os.PathLike[str], claimed_format: str) -> ImageInfo:
    """Inspect a file on disk through the same streaming inspector (reads it once, in chunks)."""
    inspector = FormatInspector()
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            inspector.feed(chunk)
    return inspector.result(claimed_format)
