#!/usr/bin/env python3
"""Image data path benchmark: upload and download of a large image through the Glance API.

Not a test: it starts a real ``kumo up`` on a free loopback port with a
temporary state directory, moves one large file of random bytes (1 GiB by
default) through it a bounded number of times, prints a markdown table and
writes ``bench/results/image_transfer.json``.

What it measures (every run, ``--repeat`` runs; the median is reported):

* **disk copy** — ``shutil.copyfile`` of the source file to a new file in the
  same directory, then ``fsync``: the physical limit of this machine's disk
  for "read a file, write a file, make it durable".
* **upload** — ``POST /image/v2/images`` (raw, bare), then ``PUT
  /image/v2/images/{id}/file`` with httpx streaming the file in ``--chunk-kib``
  chunks (``Content-Type: application/octet-stream``, ``Content-Length`` set),
  timed until the 204: Kumo hashes (md5 + sha512), inspects, writes, fsyncs
  and marks the image ``active`` before it answers.
* **download** — ``GET /image/v2/images/{id}/file`` streamed by httpx into a
  file in the same directory, then ``fsync`` (so it is comparable to the copy).
* **curl cross-check** (unless ``--no-curl``) — the same upload and download
  with curl as the client, to tell the server's share from the Python client's.
* **server memory** — the kumo process' ``VmRSS`` sampled every 20 ms during
  upload and download, and its ``VmHWM`` (peak RSS since start) before and
  after: constant memory means the peak does not grow with the image size.

The source file, the copy, the image store (the server's state directory)
and the downloaded file are all in one temporary directory (``--dir``), so
all figures are for the same filesystem. Page caches are not dropped: the
source file is in the page cache for every measurement alike; before each
measurement ``sync`` flushes what the previous one left dirty.

Usage (from the repository root)::

    .venv/bin/python bench/image_transfer.py --wait-idle 120  # 1 GiB, 3 runs, ~2 min
    .venv/bin/python bench/image_transfer.py --size-mib 256 --repeat 1

All traffic goes to 127.0.0.1. The server is always stopped (SIGINT, then
SIGKILL) and every large file deleted, also on errors, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"

try:
    import httpx
except ImportError:  # run with a python that lacks the project's dependencies: use the project's venv
    if VENV_PYTHON.is_file() and Path(sys.executable).resolve() != VENV_PYTHON.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
    raise

sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity_tokens import Server as KumoServer
from identity_tokens import (
    CpuMeter,
    free_port,
    git_revision,
    load_average,
    loopback_only,
    machine,
    wait_idle,
)

AIM_RATIO = 2.0  # upload and download at least half as fast as a plain disk copy
MIB = 1024 * 1024
TOKENS_PATH = "/identity/v3/auth/tokens"
IMAGES_PATH = "/image/v2/images"


class Stop(Exception):
    """SIGTERM: unwind through the ``finally`` blocks like Ctrl-C does."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Stop(f"signal {signum}")


# --------------------------------------------------------------------------- the server
class Server(KumoServer):
    """The identity benchmark's ``kumo up`` wrapper, on loopback, for image transfers."""

    def __init__(self, kumo: str, state_dir: Path, port: int) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(kumo, state_dir, port, database_url=None)
        loopback_only(self.base)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


# --------------------------------------------------------------------------- memory
def status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (a kumo with helper processes counts as one server)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


class RssSampler:
    """Samples the server's RSS (and that of any children) every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(sum(status_kib(p, "VmRSS") for p in [self.pid, *children(self.pid)]))
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def summary(self) -> dict[str, Any]:
        s = self.samples or [0]
        return {"rss_start_mib": round(s[0] / 1024, 1), "rss_peak_mib": round(max(s) / 1024, 1),
                "rss_end_mib": round(s[-1] / 1024, 1), "rss_samples": len(s)}


# --------------------------------------------------------------------------- files
def make_source(path: Path, size: int, chunk: int = 4 * MIB) -> str:
    """``size`` random bytes, fsynced; returns their md5."""
    md5 = hashlib.md5(usedforsecurity=False)
    with path.open("wb") as fh:
        left = size
        while left:
            block = os.urandom(min(chunk, left))
            md5.update(block)
            fh.write(block)
            left -= len(block)
        fh.flush()
        os.fsync(fh.fileno())
    return md5.hexdigest()


def file_md5(path: Path) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while block := fh.read(4 * MIB):
            md5.update(block)
    return md5.hexdigest()


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def mib_s(size: int, seconds: float) -> float:
    return round(size / MIB / seconds, 1) if seconds > 0 else 0.0


# --------------------------------------------------------------------------- the three measurements
def disk_copy(source: Path, target: Path) -> dict[str, Any]:
    os.sync()
    meter = CpuMeter(None)
    start = time.perf_counter()
    shutil.copyfile(source, target)
    fsync_path(target)
    seconds = time.perf_counter() - start
    cpu = meter.stop()
    size = target.stat().st_size
    unlink(target)
    return {"seconds": round(seconds, 3), "mib_per_s": mib_s(size, seconds), "copy_cpu_s": cpu["loadgen_cpu_s"],
            "other_cpu_s": cpu["other_cpu_s"]}


def read_chunks(path: Path, chunk: int) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            yield block


def new_image(client: httpx.Client) -> str:
    reply = client.post(IMAGES_PATH, json={"name": f"bench-{time.time_ns()}", "disk_format": "raw",
                                           "container_format": "bare"})
    reply.raise_for_status()
    return str(reply.json()["id"])


def upload(client: httpx.Client, server: Server, source: Path, chunk: int, expect_md5: str) -> tuple[str, dict]:
    size = source.stat().st_size
    image_id = new_image(client)
    os.sync()
    hwm_before = status_kib(server.pid, "VmHWM")
    meter = CpuMeter(server.pid)
    with RssSampler(server.pid) as rss:
        start = time.perf_counter()
        put = client.put(f"{IMAGES_PATH}/{image_id}/file", content=read_chunks(source, chunk),
                         headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        seconds = time.perf_counter() - start
    if put.status_code != 204:
        raise RuntimeError(f"upload answered {put.status_code}: {put.text[:300]}")
    cpu = meter.stop()
    image = client.get(f"{IMAGES_PATH}/{image_id}").json()
    if image["status"] != "active" or image["size"] != size or image["checksum"] != expect_md5:
        raise RuntimeError(f"the uploaded image is wrong: {image}")
    return image_id, {"seconds": round(seconds, 3), "mib_per_s": mib_s(size, seconds), **cpu_fields(cpu),
                      "vm_hwm_before_mib": round(hwm_before / 1024, 1),
                      "vm_hwm_after_mib": round(status_kib(server.pid, "VmHWM") / 1024, 1), **rss.summary()}


def download(client: httpx.Client, server: Server, image_id: str, target: Path, expect_md5: str) -> dict[str, Any]:
    os.sync()
    meter = CpuMeter(server.pid)
    with RssSampler(server.pid) as rss:
        start = time.perf_counter()
        with client.stream("GET", f"{IMAGES_PATH}/{image_id}/file") as reply, target.open("wb") as out:
            if reply.status_code != 200:
                raise RuntimeError(f"download answered {reply.status_code}: {reply.read()[:300]!r}")
            for block in reply.iter_raw():
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        seconds = time.perf_counter() - start
    cpu = meter.stop()
    size = target.stat().st_size
    got = file_md5(target)  # outside the timed part
    unlink(target)
    if got != expect_md5:
        raise RuntimeError(f"downloaded data differ: md5 {got} != {expect_md5}")
    return {"seconds": round(seconds, 3), "mib_per_s": mib_s(size, seconds), **cpu_fields(cpu),
            "vm_hwm_after_mib": round(status_kib(server.pid, "VmHWM") / 1024, 1), **rss.summary()}


def cpu_fields(cpu: dict[str, float]) -> dict[str, float]:
    return {"server_cpu_s": cpu["server_cpu_s"], "client_cpu_s": cpu["loadgen_cpu_s"],
            "other_cpu_s": cpu["other_cpu_s"]}


def curl_transfer(server: Server, token: str, image_id: str, source: Path, target: Path, expect_md5: str,
                  upload_image_id: str) -> dict[str, Any]:
    """The same upload and download with curl (C, no Python in the client): how much is the client's."""
    size = source.stat().st_size
    auth = ["-H", f"X-Auth-Token: {token}"]
    url = f"{server.base}{IMAGES_PATH}"
    os.sync()
    meter = CpuMeter(server.pid)
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-X", "PUT", "-T", str(source), *auth, "-H",
                    "Content-Type: application/octet-stream", f"{url}/{upload_image_id}/file"], check=True,
                   timeout=600)
    up_s = time.perf_counter() - start
    up_cpu = meter.stop()
    os.sync()
    meter = CpuMeter(server.pid)
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-f", "-o", str(target), *auth, f"{url}/{image_id}/file"], check=True,
                   timeout=600)
    fsync_path(target)
    down_s = time.perf_counter() - start
    down_cpu = meter.stop()
    got = file_md5(target)
    unlink(target)
    if got != expect_md5:
        raise RuntimeError(f"curl downloaded other data: md5 {got} != {expect_md5}")
    return {"upload": {"seconds": round(up_s, 3), "mib_per_s": mib_s(size, up_s), **cpu_fields(up_cpu)},
            "download": {"seconds": round(down_s, 3), "mib_per_s": mib_s(size, down_s), **cpu_fields(down_cpu)}}


# --------------------------------------------------------------------------- run
def admin_token(server: Server) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": server.admin_password()}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    reply = httpx.post(server.base + TOKENS_PATH, json=body, timeout=30)
    reply.raise_for_status()
    return reply.headers["x-subject-token"]


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 1)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    size = args.size_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="kumo-bench-image-", dir=args.dir))
    source, copy_target, download_target = work / "source.raw", work / "copy.raw", work / "download.raw"
    server = Server(args.kumo, work / "state", free_port())
    runs: list[dict[str, Any]] = []
    result: dict[str, Any] = {"size_mib": args.size_mib, "chunk_kib": args.chunk_kib, "repeat": args.repeat,
                              "directory": str(work.parent), "filesystem": filesystem_of(work)}
    try:
        free = shutil.disk_usage(work).free
        if free < 3 * size + 512 * MIB:
            raise SystemExit(f"{work} has {free // MIB} MiB free; this run needs {3 * args.size_mib + 512} MiB")
        print(f"writing {args.size_mib} MiB of random data to {source}", flush=True)
        expect_md5 = make_source(source, size)
        print(f"starting kumo up on {server.base} (state {server.state_dir})", flush=True)
        server.start()
        result["server_rss_idle_mib"] = round(status_kib(server.pid, "VmRSS") / 1024, 1)
        result["server_hwm_at_start_mib"] = round(status_kib(server.pid, "VmHWM") / 1024, 1)
        token = admin_token(server)
        result["load_average_before"] = load_average()
        with httpx.Client(base_url=server.base, headers={"X-Auth-Token": token},
                          timeout=httpx.Timeout(600.0)) as client:
            for n in range(1, args.repeat + 1):
                wait_idle(args.wait_idle, server.pid)
                copy = disk_copy(source, copy_target)
                print(f"[run {n}] disk copy   {copy['mib_per_s']:8.1f} MiB/s ({copy['seconds']:.2f} s)", flush=True)
                image_id, up = upload(client, server, source, args.chunk_kib * 1024, expect_md5)
                print(f"[run {n}] upload      {up['mib_per_s']:8.1f} MiB/s ({up['seconds']:.2f} s), "
                      f"server RSS peak {up['rss_peak_mib']} MiB", flush=True)
                down = download(client, server, image_id, download_target, expect_md5)
                print(f"[run {n}] download    {down['mib_per_s']:8.1f} MiB/s ({down['seconds']:.2f} s), "
                      f"server RSS peak {down['rss_peak_mib']} MiB", flush=True)
                run = {"run": n, "disk_copy": copy, "upload": up, "download": down}
                if args.curl:
                    other_id = new_image(client)
                    run["curl"] = curl_transfer(server, token, image_id, source, download_target, expect_md5,
                                                other_id)
                    print(f"[run {n}] curl        upload {run['curl']['upload']['mib_per_s']:.1f} MiB/s, "
                          f"download {run['curl']['download']['mib_per_s']:.1f} MiB/s", flush=True)
                    client.delete(f"{IMAGES_PATH}/{other_id}").raise_for_status()
                client.delete(f"{IMAGES_PATH}/{image_id}").raise_for_status()
                runs.append(run)
        result["runs"] = runs
        copy_m = median_of([r["disk_copy"] for r in runs], "mib_per_s")
        up_m = median_of([r["upload"] for r in runs], "mib_per_s")
        down_m = median_of([r["download"] for r in runs], "mib_per_s")
        result["median"] = {
            "disk_copy_mib_per_s": copy_m, "upload_mib_per_s": up_m, "download_mib_per_s": down_m,
            # How many times slower than the disk copy (1.0 = as fast; the aim is <= 2.0).
            "upload_slowdown_vs_copy": round(copy_m / up_m, 2) if up_m else None,
            "download_slowdown_vs_copy": round(copy_m / down_m, 2) if down_m else None,
            "server_rss_peak_mib": max(max(r["upload"]["rss_peak_mib"], r["download"]["rss_peak_mib"])
                                       for r in runs),
            "server_upload_cpu_s_per_gib": round(statistics.median(r["upload"]["server_cpu_s"] for r in runs)
                                                 / (size / 1024 / MIB), 2),
            "server_download_cpu_s_per_gib": round(statistics.median(r["download"]["server_cpu_s"] for r in runs)
                                                   / (size / 1024 / MIB), 2),
            "other_cpu_s_max": max(max(r[k]["other_cpu_s"] for k in ("disk_copy", "upload", "download"))
                                   for r in runs),
        }
        if args.curl:
            m = result["median"]
            m["curl_upload_mib_per_s"] = median_of([r["curl"]["upload"] for r in runs], "mib_per_s")
            m["curl_download_mib_per_s"] = median_of([r["curl"]["download"] for r in runs], "mib_per_s")
        result["server_hwm_at_end_mib"] = round(status_kib(server.pid, "VmHWM") / 1024, 1)
    except BaseException:
        print(f"failed; server log tail:\n{server.log_tail()}", file=sys.stderr, flush=True)
        raise
    finally:
        server.stop()
        for path in (source, copy_target, download_target):
            unlink(path)
        shutil.rmtree(work, ignore_errors=True)
    return result


def filesystem_of(path: Path) -> str:
    try:
        out = subprocess.run(["df", "--output=source,fstype", str(path)], capture_output=True, text=True,
                             timeout=10, check=True).stdout.splitlines()
        return " ".join(out[-1].split())
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def report(result: dict[str, Any]) -> str:
    m, runs = result["median"], result["runs"]
    copy = m["disk_copy_mib_per_s"]

    def row(what: str, rate: float, rss: str = "-", cpu: str = "-") -> str:
        return f"| {what} | {rate:,.0f} | {copy / rate:.2f}x | {rss} | {cpu} |"

    lines = [f"{result['size_mib']} MiB of random data, {result['repeat']} run(s), median; {result['filesystem']}",
             "",
             "| path | MiB/s | time vs. disk copy | server RSS peak MiB | server CPU s/GiB |",
             "|---|---|---|---|---|",
             row("disk copy (copyfile + fsync)", copy),
             row("upload (PUT /file, httpx, 1 MiB chunks)", m["upload_mib_per_s"],
                 str(max(r["upload"]["rss_peak_mib"] for r in runs)), str(m["server_upload_cpu_s_per_gib"])),
             row("download (GET /file, httpx, to a file + fsync)", m["download_mib_per_s"],
                 str(max(r["download"]["rss_peak_mib"] for r in runs)), str(m["server_download_cpu_s_per_gib"]))]
    if "curl_upload_mib_per_s" in m:
        lines += [row("cross-check: upload with curl", m["curl_upload_mib_per_s"]),
                  row("cross-check: download with curl (+ fsync)", m["curl_download_mib_per_s"])]
    lines += ["",
              f"CPU used by other processes during one measurement: at most {m['other_cpu_s_max']} s.",
              (f"Server RSS idle before the runs: {result['server_rss_idle_mib']} MiB; VmHWM (peak RSS) at start "
              f"{result['server_hwm_at_start_mib']} MiB, at the end {result['server_hwm_at_end_mib']} MiB."),
              f"Aim: upload and download take at most {AIM_RATIO:g}x the time of the disk copy."]
    for what in ("upload", "download"):
        slow = m[f"{what}_slowdown_vs_copy"]
        lines.append(f"- {what}: {slow}x: aim {'met' if slow <= AIM_RATIO else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the image (MiB of random data)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of copy + upload + download")
    parser.add_argument("--chunk-kib", type=int, default=1024, help="upload chunk size of the client")
    parser.add_argument("--dir", default=None, help="where the files and the server's state go (default: $TMPDIR)")
    parser.add_argument("--kumo", default=str(Path(sys.executable).parent / "kumo"), help="the kumo executable")
    parser.add_argument("--wait-idle", type=float, default=0.0,
                        help="before each run, wait up to this many seconds for other work to stop")
    parser.add_argument("--no-curl", dest="curl", action="store_false",
                        help="skip the cross-check with curl as the client")
    parser.add_argument("--results-dir", default=str(REPO / "bench" / "results"))
    args = parser.parse_args(argv)
    if not 1 <= args.size_mib <= 16384:
        parser.error("--size-mib must be between 1 and 16384")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be between 1 and 10")
    if not Path(args.kumo).is_file():
        parser.error(f"kumo executable not found: {args.kumo} (pass --kumo)")
    if args.curl and shutil.which("curl") is None:
        parser.error("curl is not installed: install it or pass --no-curl")
    signal.signal(signal.SIGTERM, _on_sigterm)
    if load_average() > 1.0:
        print(f"WARNING: load average is {load_average():.2f}: something else is using the machine, "
              "and the figures will be lower than on an idle one", file=sys.stderr, flush=True)
    meta = {"timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "kumo_revision": git_revision(),
            "machine": machine(), "aim_max_slowdown_vs_copy": AIM_RATIO,
            "note": "client, server and disk copy share the machine; page caches are not dropped"}
    result = {**meta, **bench(args)}
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "image_transfer.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}\n")
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
