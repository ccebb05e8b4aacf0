"""`kumo image build-tiny` for real: build from Debian packages, boot in QEMU, check what /init did.

The ``tiny`` fixture (conftest.py) builds the image once per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemutest import need

from kumo.compute.virt.qemu.accel import choose_accel
from kumo.image.tiny import TinyImage

pytestmark = pytest.mark.qemu

QEMU = shutil.which("qemu-system-x86_64")
BOOT_DEADLINE = 60.0


def _config_drive(path: Path, meta: dict[str, object], user_data: str) -> None:
    """A vfat config drive labelled config-2, as Nova makes with config_drive_format=vfat."""
    src = path.parent / "config-drive"
    latest = src / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text(json.dumps(meta))
    (latest / "user_data").write_text(user_data)
    subprocess.run(["mkfs.vfat", "-C", "-n", "config-2", str(path), "1440"], check=True, capture_output=True)
    subprocess.run(["mcopy", "-s", "-i", str(path), str(src / "openstack"), "::"], check=True, capture_output=True,
                   env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user_net_available() -> bool:
    assert QEMU
    out = subprocess.run([QEMU, "-netdev", "help"], check=False, capture_output=True, text=True, timeout=30)
    return "user" in out.stdout.split()


def _ssh_banner(port: int, deadline: float) -> bytes:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                banner = s.recv(64)
                if banner:
                    return banner
        except OSError:
            pass
        time.sleep(0.5)
    return b""


@functools.cache
def _accel() -> str:
    """The accelerator the QEMU driver would choose here (KVM only where it really runs guests)."""
    assert QEMU
    accel = asyncio.run(choose_accel(QEMU)).name
    assert accel in ("kvm", "tcg")
    return accel


@contextlib.contextmanager
def _qemu(tiny: TinyImage, run: Path, netdev: str | None, extra: list[str], append: str = "") -> Iterator[Path]:
    """Boot the image (console on a file); QEMU is always killed and reaped on the way out."""
    assert QEMU
    net = ["-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile="] if netdev else ["-nic", "none"]
    log = run / "console.log"
    cmd = [QEMU, "-accel", _accel(), "-m", "256", "-nographic", "-no-reboot",
           "-kernel", str(tiny.kernel), "-initrd", str(tiny.ramdisk),
           "-append", f"console=ttyS0 panic=-1 {append}".strip(), *net, *extra,
           "-serial", f"file:{log}", "-monitor", "none"]
    with open(run / "qemu.err", "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield log
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        assert proc.returncode is not None  # no QEMU left behind


def _wait_for(log: Path, wanted: list[str], deadline: float) -> str:
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if all(w in text for w in wanted):
            return text
        time.sleep(0.2)
    err = (log.parent / "qemu.err").read_text(errors="replace")
    pytest.fail(f"guest console lacks {[w for w in wanted if w not in text]}; qemu stderr: {err[-500:]!r}; "
                f"console tail:\n{text[-3000:]}")


def test_tiny_image_boots_and_reads_config_drive(tiny: TinyImage) -> None:
    need("qemu-system-x86_64", "mkfs.vfat", "mcopy")
    assert tiny.kernel.stat().st_size > 1_000_000 and tiny.ramdisk.stat().st_size > 1_000_000
    with tempfile.TemporaryDirectory(prefix="kumo-tiny-boot-") as tmp:
        run = Path(tmp)
        login = shutil.which("ssh") and shutil.which("ssh-keygen")
        if login:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(run / "key")],
                           check=True)
            pubkey = (run / "key.pub").read_text().strip()
        else:
            pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummyKeyForTheTinyImageTest000000000000 test"
        meta = {"hostname": "tiny-test", "public_keys": {"k": pubkey}, "uuid": "6a1b7c4e-0000-4000-8000-000000000001",
                "name": "tiny-test", "launch_index": 0}
        _config_drive(run / "cfg.img", meta, "#!/bin/sh\necho KUMO-USERDATA-RAN\n")
        port = _free_port()
        netdev = f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22" if _user_net_available() else None
        started = time.monotonic()
        with _qemu(tiny, run, netdev, ["-drive", f"file={run / 'cfg.img'},format=raw,if=virtio,readonly=on"]) as log:
            deadline = started + BOOT_DEADLINE
            _wait_for(log, ["KUMO-TINY-BOOT-OK"], deadline)
            print(f"boot marker after {time.monotonic() - started:.1f}s")
            text = _wait_for(log, ["KUMO-TINY-HOSTNAME tiny-test", "KUMO-TINY-KEYS 1", "KUMO-USERDATA-RAN",
                                   "KUMO-TINY-USERDATA-RC 0", "KUMO-TINY-READY"], deadline)
            print(f"init done after {time.monotonic() - started:.1f}s")
            assert "KUMO-TINY-METADATA config-drive" in text
            if not netdev:
                return
            assert "KUMO-TINY-NET eth0 10.0.2.15/24" in text and "KUMO-TINY-SSHD 0" in text
            assert _ssh_banner(port, time.monotonic() + 30).startswith(b"SSH-2.0-dropbear")
            if login:
                ssh = subprocess.run(
                    ["ssh", "-i", str(run / "key"), "-p", str(port), "-o", "BatchMode=yes",
                     "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                     "-o", "ConnectTimeout=30", "root@127.0.0.1", "hostname; echo KUMO-SSH-OK"],
                    check=False, capture_output=True, text=True, timeout=90)
                assert ssh.stdout.split() == ["tiny-test", "KUMO-SSH-OK"], ssh.stderr
                print(f"ssh login after {time.monotonic() - started:.1f}s")


# Serves one HTTP request on stdin/stdout: QEMU's guestfwd runs it per guest connection.
METADATA_SERVER = """
import json, sys
req = b""
while b"\\r\\n\\r\\n" not in req:
    chunk = sys.stdin.buffer.read1(4096)
    if not chunk:
        break
    req += chunk
parts = req.split(b" ")
files = json.loads(open(sys.argv[1]).read())
body = files.get(parts[1].decode() if len(parts) > 1 else "/")
head = "HTTP/1.0 404 Not Found" if body is None else "HTTP/1.0 200 OK"
data = (body or "").encode()
sys.stdout.buffer.write(b"%s\\r\\nContent-Length: %d\\r\\n\\r\\n" % (head.encode(), len(data)) + data)
sys.stdout.buffer.flush()
"""


def test_tiny_image_reads_metadata_over_http(tiny: TinyImage) -> None:
    """No config drive: hostname, keys and user data come from the metadata service over HTTP."""
    need("qemu-system-x86_64")
    if not _user_net_available():
        pytest.skip("this QEMU has no user-mode networking")
    meta = {"hostname": "http-test", "public_keys": {"a": "ssh-ed25519 AAAAX a", "b": "ssh-ed25519 AAAAY b"}}
    files = {"/openstack/latest/meta_data.json": json.dumps(meta),
             "/openstack/latest/user_data": "#!/bin/sh\necho KUMO-HTTP-USERDATA\nexit 3\n"}
    with tempfile.TemporaryDirectory(prefix="kumo-tiny-boot-") as tmp:
        run = Path(tmp)
        (run / "md.py").write_text(METADATA_SERVER)
        (run / "files.json").write_text(json.dumps(files))
        # slirp only forwards addresses inside its own network, so the guest is pointed at 10.0.2.100
        serve = f"cmd:{sys.executable} {run / 'md.py'} {run / 'files.json'}"
        netdev = f"user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-{serve}"
        started = time.monotonic()
        with _qemu(tiny, run, netdev, [], append="kumo.metadata_url=http://10.0.2.100") as log:
            text = _wait_for(log, ["KUMO-TINY-READY"], started + BOOT_DEADLINE)
            print(f"init done after {time.monotonic() - started:.1f}s")
        for line in ("KUMO-TINY-METADATA http-openstack", "KUMO-TINY-HOSTNAME http-test", "KUMO-TINY-KEYS 2",
                     "KUMO-HTTP-USERDATA", "KUMO-TINY-USERDATA-RC 3"):
            assert line in text
