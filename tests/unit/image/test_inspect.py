"""The image format inspector against real images made by qemu-img, crafted attacks and fuzz."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from kumo.image.inspect import (
    PREFIX_LIMIT,
    TAIL_SIZE,
    WINDOW_LIMIT,
    FormatInspector,
    ImageInfo,
    InspectionError,
    inspect_file,
)

QEMU_IMG = shutil.which("qemu-img")
GENERIC = "could not be inspected"  # the inspector's last-resort message: a parser bug if ever seen


# -- image builders ---------------------------------------------------------------------------------

def iso_image(blocks: int = 24, block_size: int = 2048, *, udf_only: bool = False) -> bytes:
    """A minimal ISO 9660 image: empty system area, PVD, El Torito-ish boot record, terminator."""
    def descriptor(kind: int, ident: bytes, body: bytes = b"") -> bytes:
        return (bytes([kind]) + ident + b"\x01" + body).ljust(2048, b"\x00")

    if udf_only:
        vds = [descriptor(0, b"BEA01"), descriptor(0, b"NSR02"), descriptor(0, b"TEA01")]
    else:
        pvd = bytearray(descriptor(1, b"CD001"))
        pvd[8:40] = b"KUMO".ljust(32)
        pvd[40:72] = b"TESTVOL".ljust(32)
        pvd[80:88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
        pvd[128:132] = struct.pack("<H", block_size) + struct.pack(">H", block_size)
        vds = [bytes(pvd), descriptor(0, b"CD001", b"EL TORITO SPECIFICATION"), descriptor(255, b"CD001")]
    data = b"\x00" * (16 * 2048) + b"".join(vds)
    return data.ljust(blocks * block_size, b"\x00")


def gpt_disk(size: int = 256 * 1024) -> bytes:
    """A raw disk with a protective MBR and a GPT header, as a partitioned raw image has."""
    disk = bytearray(os.urandom(size))
    disk[446:510] = b"\x00" * 64
    disk[446 + 4] = 0xEE  # protective partition
    disk[446 + 8:446 + 16] = struct.pack("<II", 1, size // 512 - 1)
    disk[510:512] = b"\x55\xaa"
    disk[512:520] = b"EFI PART"
    return bytes(disk)


def qemu_img(*args: str) -> None:
    assert QEMU_IMG
    subprocess.run([QEMU_IMG, *args], check=True, capture_output=True)


def qemu_virtual_size(path: Path, fmt: str) -> int:
    assert QEMU_IMG
    out = subprocess.run([QEMU_IMG, "info", "-f", fmt, "--output=json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["virtual-size"]


# name: (file, qemu format, claimed disk_format)
REAL = {
    "qcow2_v2": ("v2.qcow2", "qcow2", "qcow2"),
    "qcow2_v3": ("v3.qcow2", "qcow2", "qcow2"),
    "qcow2_data": ("data.qcow2", "qcow2", "qcow2"),
    "vmdk_sparse": ("sparse.vmdk", "vmdk", "vmdk"),
    "vmdk_stream": ("stream.vmdk", "vmdk", "vmdk"),
    "vhd_dynamic": ("dynamic.vhd", "vpc", "vhd"),
    "vhd_fixed": ("fixed.vhd", "vpc", "vhd"),
    "vhdx": ("disk.vhdx", "vhdx", "vhdx"),
    "vdi": ("disk.vdi", "vdi", "vdi"),
    "raw": ("disk.raw", "raw", "raw"),
}
BIG = {"vhdx"}  # an 8 MiB file: byte by byte would take seconds, so 7-byte chunks are its finest


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if QEMU_IMG is None:
        if os.environ.get("CI"):
            pytest.fail("qemu-img is missing in CI (scripts/install-system-deps.sh installs qemu-utils)")
        pytest.skip("qemu-img is not installed (apt-get install qemu-utils)")
    d = tmp_path_factory.mktemp("images")
    (d / "disk.raw").write_bytes(random.Random(7).randbytes(96 * 1024))
    qemu_img("create", "-f", "qcow2", "-o", "compat=0.10", str(d / "v2.qcow2"), "5M")
    qemu_img("create", "-f", "qcow2", "-o", "compat=1.1", str(d / "v3.qcow2"), "10M")
    qemu_img("convert", "-O", "qcow2", str(d / "disk.raw"), str(d / "data.qcow2"))
    qemu_img("create", "-f", "vmdk", str(d / "sparse.vmdk"), "10M")
    qemu_img("convert", "-O", "vmdk", "-o", "subformat=streamOptimized", str(d / "disk.raw"), str(d / "stream.vmdk"))
    qemu_img("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(d / "flat.vmdk"), "1M")
    qemu_img("create", "-f", "vpc", str(d / "dynamic.vhd"), "10M")
    qemu_img("create", "-f", "vpc", "-o", "subformat=fixed", str(d / "fixed.vhd"), "64K")
    qemu_img("create", "-f", "vhdx", str(d / "disk.vhdx"), "12M")
    qemu_img("create", "-f", "vdi", str(d / "disk.vdi"), "3M")
    qemu_img("create", "-f", "raw", str(d / "base.raw"), "1M")
    qemu_img("create", "-f", "qcow2", "-b", str(d / "base.raw"), "-F", "raw", str(d / "backed.qcow2"))
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={d / 'external.raw'}", str(d / "datafile.qcow2"), "1M")
    return d


def inspect_bytes(data: bytes, claimed: str, chunk: int = 65536) -> ImageInfo:
    insp = FormatInspector()
    for i in range(0, len(data), chunk):
        insp.feed(data[i:i + chunk])
    return insp.result(claimed)


def rejected(data: bytes, claimed: str, chunk: int = 65536) -> str:
    with pytest.raises(InspectionError) as exc:
        inspect_bytes(data, claimed, chunk)
    message = exc.value.message
    assert message == str(exc.value) and GENERIC not in message
    return message


def outcome(data: bytes, claimed: str, chunk: int = 65536) -> ImageInfo | str:
    """Either the result or the rejection message; any other exception fails the test."""
    try:
        return inspect_bytes(data, claimed, chunk)
    except InspectionError as exc:
        assert GENERIC not in exc.message, f"parser crashed on {claimed}: {exc.__cause__!r}"
        return exc.message


# -- real images: detection and virtual size, fed in odd chunk sizes ---------------------------------

@pytest.mark.parametrize(("name", "chunk"), [
    (name, chunk) for name in sorted(REAL) for chunk in (1, 7, 65536) if not (chunk == 1 and name in BIG)])
def test_real_images_are_detected_with_their_virtual_size(images: Path, name: str, chunk: int) -> None:
    filename, qemu_fmt, claimed = REAL[name]
    path = images / filename
    data = path.read_bytes()
    info = inspect_bytes(data, claimed, chunk)
    assert info == ImageInfo(claimed, qemu_virtual_size(path, qemu_fmt), len(data))


def test_inspect_file_reads_through_the_same_inspector(images: Path) -> None:
    info = inspect_file(images / "v3.qcow2", "qcow2")
    assert info == ImageInfo("qcow2", 10 * 1024 * 1024, (images / "v3.qcow2").stat().st_size)
    assert inspect_file(str(images / "disk.raw"), "ami").format == "raw"


@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_iso_volume_size_from_the_primary_volume_descriptor(chunk: int) -> None:
    data = iso_image(blocks=40)
    assert inspect_bytes(data, "iso", chunk) == ImageInfo("iso", 40 * 2048, len(data))
    assert inspect_bytes(iso_image(blocks=70, block_size=1024), "iso", chunk).virtual_size == 70 * 1024


def test_udf_only_iso_is_iso_without_a_size() -> None:
    assert inspect_bytes(iso_image(udf_only=True), "iso").virtual_size is None


@pytest.mark.parametrize("claimed", ["raw", "ami", "aki", "ari", "RAW"])
def test_raw_and_amazon_formats_accept_raw_data(claimed: str) -> None:
    data = os.urandom(5000)
    assert inspect_bytes(data, claimed) == ImageInfo("raw", 5000, 5000)


def test_gpt_partitioned_disk_is_raw() -> None:
    disk = gpt_disk()
    assert inspect_bytes(disk, "raw", 7).format == "raw"
    assert rejected(disk, "qcow2") == "Image is not in the claimed format qcow2 (the data is raw)"


def test_empty_stream_is_empty_raw_and_not_anything_else() -> None:
    assert FormatInspector().result("raw") == ImageInfo("raw", 0, 0)
    assert "(the data is raw)" in rejected(b"", "iso")


def test_feed_accepts_any_bytes_like_object_and_result_is_repeatable(images: Path) -> None:
    data = (images / "disk.vdi").read_bytes()
    insp = FormatInspector()
    insp.feed(bytearray(data[:100]))
    insp.feed(memoryview(data)[100:])
    insp.feed(b"")
    assert insp.result("vdi") == insp.result("VDI") == ImageInfo("vdi", 3 * 1024 * 1024, len(data))
    assert insp.actual_size == len(data)


# -- the security rules ------------------------------------------------------------------------------

def test_qcow2_with_a_backing_file_is_rejected(images: Path) -> None:
    data = (images / "backed.qcow2").read_bytes()
    assert rejected(data, "qcow2") == "qcow2 images with a backing file are not allowed"


def test_qcow2_with_an_external_data_file_is_rejected(images: Path) -> None:
    data = (images / "datafile.qcow2").read_bytes()
    assert rejected(data, "qcow2") == "qcow2 images with an external data file are not allowed"


def test_qcow2_unknown_incompatible_features_corrupt_and_old_versions_are_rejected(images: Path) -> None:
    data = bytearray((images / "v3.qcow2").read_bytes())
    data[72:80] = struct.pack(">Q", 1 << 40)
    assert "unknown incompatible features" in rejected(bytes(data), "qcow2")
    data[72:80] = struct.pack(">Q", 2)
    assert rejected(bytes(data), "qcow2") == "qcow2 image is marked corrupt"
    data[72:80] = struct.pack(">Q", 1)  # dirty is fine
    assert inspect_bytes(bytes(data), "qcow2").format == "qcow2"
    data[4:8] = struct.pack(">I", 1)
    assert rejected(bytes(data), "qcow2") == "qcow2 version 1 is not supported"
    assert rejected(bytes(data), "raw") == "Image is not in the claimed format raw (the data is qcow2)"


def test_vmdk_flat_descriptor_is_rejected(images: Path) -> None:
    desc = (images / "flat.vmdk").read_bytes()
    assert rejected(desc, "vmdk") == "VMDK create type 'monolithicFlat' is not allowed"
    # QEMU probes a text descriptor as vmdk, so it must not slip through as raw either
    assert rejected(desc, "raw") == "Image is not in the claimed format raw (the data is vmdk)"
    # the flat extent itself is plain raw data
    assert inspect_bytes((images / "flat-flat.vmdk").read_bytes(), "raw").format == "raw"


def _with_descriptor(vmdk: bytes, text: str) -> bytes:
    data = bytearray(vmdk)
    data[512:512 + 20 * 512] = text.encode().ljust(20 * 512, b"\x00")
    return bytes(data)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('createType="monolithicSparse"', 'createType="twoGbMaxExtentFlat"'),
     "VMDK create type 'twoGbMaxExtentFlat' is not allowed"),
    (lambda t: t.replace('SPARSE "sparse.vmdk"', 'FLAT "/etc/shadow" 0'),
     "VMDK descriptor references other extent files, which is not allowed"),
    (lambda t: t.replace('SPARSE "sparse.vmdk"', 'FLAT "sparse-flat.vmdk" 0'),
     "VMDK descriptor references other extent files, which is not allowed"),
    (lambda t: t.replace('SPARSE "sparse.vmdk"', 'SPARSE "../other.vmdk"'),
     "VMDK descriptor references other extent files, which is not allowed"),
    (lambda t: t.replace("# Extent description", 'RW 2048 SPARSE "sparse-s001.vmdk"'),
     "VMDK descriptor references other extent files, which is not allowed"),
    (lambda t: t.replace("parentCID=ffffffff", 'parentCID=12345678\nparentFileNameHint="/var/base.vmdk"'),
     "VMDK images with a parent image are not allowed"),
    (lambda t: t.replace("version=1", "version=1\n!include /etc/passwd"),
     "VMDK descriptor contains an unrecognised line"),
    (lambda t: t.replace('createType="monolithicSparse"', ""), "VMDK descriptor has no createType"),
])
def test_vmdk_descriptor_attacks_are_rejected(images: Path, edit, message: str) -> None:
    data = (images / "sparse.vmdk").read_bytes()
    text = data[512:512 * 21].rstrip(b"\x00").decode()
    assert 'createType="monolithicSparse"' in text
    assert rejected(_with_descriptor(data, edit(text)), "vmdk") == message


def test_vmdk_header_attacks_are_rejected(images: Path) -> None:
    data = (images / "sparse.vmdk").read_bytes()
    zero_capacity = data[:12] + struct.pack("<Q", 0) + data[20:]
    assert "descriptor only" in rejected(zero_capacity, "vmdk")
    moved = data[:28] + struct.pack("<Q", 40) + data[36:]
    assert "descriptor must directly follow" in rejected(moved, "vmdk")
    text_only = b"# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicSparse\"\nRW 8 SPARSE \"x.vmdk\"\n"
    assert rejected(text_only, "vmdk") == "VMDK descriptor files without embedded data are not allowed"
    assert rejected(b"COWD" + bytes(2044), "vmdk") == "VMDK version 3 (COWD) images are not supported"


def test_vmdk_stream_footer_overrides_the_header(images: Path) -> None:
    data = bytearray((images / "stream.vmdk").read_bytes())
    footer_header = bytearray(data[:512])
    footer_header[12:20] = struct.pack("<Q", 4096)  # 2 MiB, from the footer
    data[56:64] = struct.pack("<Q", 0xFFFFFFFFFFFFFFFF)
    marker = struct.pack("<QII", 1, 0, 3).ljust(512, b"\x00")
    stream = bytes(data) + marker + bytes(footer_header) + bytes(512)
    assert inspect_bytes(stream, "vmdk", 7).virtual_size == 2 * 1024 * 1024
    assert rejected(bytes(data), "vmdk") == "VMDK stream footer is missing"


def test_vhd_differencing_and_unknown_types_are_rejected(images: Path) -> None:
    data = bytearray((images / "dynamic.vhd").read_bytes())
    data[60:64] = struct.pack(">I", 4)
    assert rejected(bytes(data), "vhd") == "VHD differencing images (with a parent image) are not allowed"
    fixed = bytearray((images / "fixed.vhd").read_bytes())
    fixed[-512 + 60:-512 + 64] = struct.pack(">I", 9)
    assert rejected(bytes(fixed), "vhd") == "VHD disk type 9 is not supported"


def _vhdx_metadata_entry(data: bytes, guid: str) -> tuple[int, int]:
    """(region offset, table entry offset) of a metadata item, walked the way the spec lays it out."""
    count, = struct.unpack_from("<I", data, 0x30008)
    for i in range(count):
        entry = 0x30010 + 32 * i
        if data[entry:entry + 16] == uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le:
            base, = struct.unpack_from("<Q", data, entry + 16)
            items, = struct.unpack_from("<H", data, base + 10)
            for j in range(items):
                at = base + 32 + 32 * j
                if data[at:at + 16] == uuid.UUID(guid).bytes_le:
                    return base, at
    raise AssertionError(guid)


def test_vhdx_with_a_parent_is_rejected(images: Path) -> None:
    data = bytearray((images / "disk.vhdx").read_bytes())
    base, entry = _vhdx_metadata_entry(bytes(data), "CAA16737-FA36-4D43-B3B6-33F0AA44E76B")  # file parameters
    flags_at = base + struct.unpack_from("<I", data, entry + 16)[0] + 4
    data[flags_at] |= 2  # HasParent
    assert "VHDX differencing images" in rejected(bytes(data), "vhdx")


def test_vhdx_size_beyond_the_bounded_window_is_unknown(images: Path) -> None:
    data = bytearray((images / "disk.vhdx").read_bytes())
    base, entry = _vhdx_metadata_entry(bytes(data), "2FA54224-CD1B-4876-B211-5DBED83BF4B8")  # virtual disk size
    for i in range(struct.unpack_from("<I", data, 0x30008)[0]):  # grow the metadata region to 4 MiB
        if struct.unpack_from("<Q", data, 0x30010 + 32 * i + 16)[0] == base:
            data[0x30010 + 32 * i + 24:0x30010 + 32 * i + 28] = struct.pack("<I", 4 << 20)
    struct.pack_into("<I", data, entry + 16, 2 << 20)  # the item now sits 2 MiB in: past the 1 MiB window
    info = inspect_bytes(bytes(data), "vhdx", 4093)
    assert info == ImageInfo("vhdx", None, len(data))


def test_vdi_differencing_is_rejected(images: Path) -> None:
    data = bytearray((images / "disk.vdi").read_bytes())
    data[0x4C:0x50] = struct.pack("<I", 4)
    assert rejected(bytes(data), "vdi") == "VDI image type 4 is not allowed"


@pytest.mark.parametrize("name", sorted(set(REAL) - {"raw"}))
def test_any_real_format_claimed_as_raw_is_rejected(images: Path, name: str) -> None:
    filename, _, fmt = REAL[name]
    data = (images / filename).read_bytes()
    for claimed in ("raw", "ami", "aki", "ari"):
        assert rejected(data, claimed) == f"Image is not in the claimed format {claimed} (the data is {fmt})"


@pytest.mark.parametrize("claimed", ["qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso"])
def test_raw_data_claimed_as_a_format_is_rejected(images: Path, claimed: str) -> None:
    data = (images / "disk.raw").read_bytes()
    assert rejected(data, claimed) == f"Image is not in the claimed format {claimed} (the data is raw)"


def test_cross_format_claims_are_rejected(images: Path) -> None:
    qcow2 = (images / "v3.qcow2").read_bytes()
    assert rejected(qcow2, "vmdk") == "Image is not in the claimed format vmdk (the data is qcow2)"
    assert rejected(iso_image(), "raw") == "Image is not in the claimed format raw (the data is iso)"
    assert "(the data is qed)" in rejected(b"QED\x00" + bytes(4096), "raw")


def test_polyglots_matching_several_formats_are_rejected(images: Path) -> None:
    qcow2 = bytearray((images / "v3.qcow2").read_bytes())
    qcow2[0x8000:0x8800] = iso_image()[0x8000:0x8800]
    assert "matches several formats (iso, qcow2)" in rejected(bytes(qcow2), "qcow2")
    vhd_footer = (images / "fixed.vhd").read_bytes()[-512:]
    assert "(qcow2, vhd)" in rejected(bytes(qcow2[:0x8000]) + vhd_footer, "raw")


@pytest.mark.parametrize("claimed", ["ploop", "qed", "bare", "", "docker"])
def test_formats_that_cannot_be_inspected_are_refused(claimed: str) -> None:
    assert "cannot be inspected and is not accepted" in rejected(b"data", claimed)


# -- truncation and fuzz: only InspectionError, never a crash ----------------------------------------

@pytest.mark.parametrize(("name", "cut", "claimed"), [
    ("v3.qcow2", 50, "qcow2"), ("v3.qcow2", 90, "qcow2"), ("sparse.vmdk", 300, "vmdk"),
    ("sparse.vmdk", 2000, "vmdk"), ("dynamic.vhd", 100, "vhd"), ("disk.vdi", 0x100, "vdi"),
    ("disk.vhdx", 100 * 1024, "vhdx"), ("disk.vhdx", 0x40000, "vhdx"),
])
def test_truncated_headers_are_inspection_errors(images: Path, name: str, cut: int, claimed: str) -> None:
    data = (images / name).read_bytes()[:cut]
    assert "truncated" in rejected(data, claimed, 7)


def test_truncated_iso_descriptors_are_inspection_errors() -> None:
    assert "truncated" in rejected(iso_image()[:0x8100], "iso")
    assert "(the data is raw)" in rejected(iso_image()[:0x8003], "iso")


def test_inconsistent_iso_descriptor_is_rejected() -> None:
    data = bytearray(iso_image())
    data[0x8000 + 84:0x8000 + 88] = struct.pack(">I", 99999)
    assert "inconsistent" in rejected(bytes(data), "iso")


def _all_samples(images: Path) -> list[tuple[bytes, str]]:
    samples = [((images / f).read_bytes(), claimed) for f, _, claimed in REAL.values()]
    return samples + [(iso_image(), "iso"), ((images / "flat.vmdk").read_bytes(), "vmdk")]


def test_every_truncation_of_real_images_is_handled(images: Path) -> None:
    cuts = [0, 1, 3, 4, 5, 8, 12, 31, 32, 63, 64, 68, 71, 72, 100, 103, 104, 300, 511, 512, 513, 1023,
            1024, 2048, 4096, 10752, 0x8000, 0x8001, 0x8006, 0x8100, 0x8800, 0x9000, 0x30000, 0x30010,
            0x40000, 0x40001, 1 << 20, 3 << 20, (3 << 20) + 40]
    for data, claimed in _all_samples(images):
        for cut in {c for c in cuts if c < len(data)} | {len(data) - 1, max(0, len(data) - 513)}:
            for claim in (claimed, "raw"):
                outcome(data[:cut], claim, 4093)


def test_bit_flips_in_headers_only_raise_inspection_errors(images: Path) -> None:
    rng = random.Random(2024)
    for data, claimed in _all_samples(images):
        hot = [(0, 1024), (len(data) - 1536, len(data))]
        if claimed == "vhdx":
            hot += [(0x30000, 0x30100), (3 << 20, (3 << 20) + 0x10100)]
        if claimed == "iso":
            hot += [(0x8000, 0x9800)]
        for _ in range(40):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                lo, hi = rng.choice(hot)
                if lo >= 0 and hi <= len(data):
                    mutated[rng.randrange(lo, hi)] = rng.randrange(256)
            outcome(bytes(mutated), claimed)


def test_random_data_with_magic_prefixes_only_raises_inspection_errors() -> None:
    rng = random.Random(99)
    magics = [b"", b"QFI\xfb", b"QFI\xfb\x00\x00\x00\x03", b"KDMV", b"COWD", b"conectix", b"vhdxfile",
              b"QED\x00", b"# Disk DescriptorFile\nversion=1\n", b"version=1\ncreateType=\"streamOptimized\"\n"]
    claims = ["raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "ami"]
    for _ in range(400):
        data = bytearray(rng.choice(magics) + rng.randbytes(rng.choice([0, 1, 30, 100, 600, 3000, 40000])))
        if rng.random() < 0.2 and len(data) >= 0x44:
            data[0x40:0x44] = struct.pack("<I", 0xBEDA107F)
        if rng.random() < 0.2 and len(data) >= 0x8006:
            data[0x8000:0x8006] = bytes([rng.choice([0, 1, 255])]) + b"CD001"
        if rng.random() < 0.2 and len(data) >= 512:
            data[-512:-504] = b"conectix"
        outcome(bytes(data), rng.choice(claims), rng.choice([1, 7, 512, 65536]) if len(data) < 5000 else 4093)


def test_memory_stays_bounded_on_a_long_stream() -> None:
    insp = FormatInspector()
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(24):
        insp.feed(block)
        insp.feed(b"x")
    assert len(insp._prefix) <= PREFIX_LIMIT
    assert len(insp._tail) <= 4 * TAIL_SIZE
    assert all(len(buf) <= WINDOW_LIMIT for _, _, buf in insp._windows)
    assert insp.result("raw") == ImageInfo("raw", 24 * (1 << 20) + 24, 24 * (1 << 20) + 24)
