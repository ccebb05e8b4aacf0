#!/usr/bin/env python3
"""Real-guest boot benchmark: `server create` to ACTIVE and to the guest's console, under TCG (or KVM).

Not a test. It starts ``kumo up`` with the QEMU driver and the ``tiny`` image
(its own state dir, ports and run dir; the .deb cache of the test suite is
reused), then for each ``--concurrency`` (default 1 and 8) boots that many
``m1.nano`` servers at once (one ``POST /servers`` each, ``networks: none``)
and records, per server, from the moment its POST was sent:

* **ACTIVE** - when ``GET /servers/{id}`` first says ACTIVE (polled every 50 ms);
* **on the host** - the agent's build event (``compute__do_build_and_run_instance``,
  from the instance actions API): image fetch (the cache is warm after the
  first boot) + disks + QEMU until its monitor answers. This is the "ACTIVE
  after scheduling" figure;
* **first console line** - the first byte in the guest's serial log
  (``instances/<id>/console.log``, polled every 20 ms);
* **userspace** - the tiny image's ``KUMO-TINY-BOOT-OK`` marker (its /init runs);
* **ready** - ``KUMO-TINY-READY`` (config read, keys, sshd, user data done).

After the largest batch is ready and has idled ``--idle`` seconds, the memory
of each QEMU process (RSS and PSS from ``/proc/<pid>/smaps_rollup``) is read.
Every server is deleted and the cloud stopped at the end, also on errors;
a QEMU still running after that is killed. Results go to
``bench/results/qemu_boot.json``.

Usage (from the repository root, as root)::

    .venv/bin/python bench/qemu_boot.py                       # 1 and 8 guests, ~1 min
    .venv/bin/python bench/qemu_boot.py --concurrency 1,4,8 --runs 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from identity_tokens import REPO, Server, free_port, git_revision, load_average, machine  # noqa: E402

COMPUTE = "/compute/v2.1"
DEB_CACHE = os.environ.get("KUMO_TEST_DEB_CACHE", "/var/cache/kumo-test/debs")
AIM_ACTIVE_AFTER_SCHEDULING_S = 1.0
AIM_USERSPACE_S = 5.0


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"count": len(values), "min_s": round(ordered[0], 3), "p50_s": round(statistics.median(ordered), 3),
            "max_s": round(ordered[-1], 3), "mean_s": round(statistics.fmean(ordered), 3)}


def parse_time(value: str) -> float:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=dt.UTC).timestamp()


class Bench:
    def __init__(self, server: Server, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http
        self.instances = server.state_dir / "instances"
        self.run_dir = server.state_dir.parent / "run"

    async def login(self) -> None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": self.server.admin_password()}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        r = await self.http.post("/identity/v3/auth/tokens", json=body)
        r.raise_for_status()
        self.http.headers["X-Auth-Token"] = r.headers["X-Subject-Token"]
        self.http.headers["OpenStack-API-Version"] = "compute 2.90"

    async def image_id(self, name: str = "tiny") -> str:
        r = await self.http.get("/image/v2/images", params={"name": name})
        r.raise_for_status()
        images = r.json()["images"]
        if not images:
            raise RuntimeError(f"no image {name!r}: the tiny image could not be built (see kumo-up.log)")
        return str(images[0]["id"])

    def console(self, uuid: str) -> bytes:
        try:
            return (self.instances / uuid / "console.log").read_bytes()
        except OSError:
            return b""

    async def boot_one(self, image: str, name: str, deadline: float) -> dict[str, Any]:
        sent = time.time()
        r = await self.http.post(f"{COMPUTE}/servers", json={"server": {
            "name": name, "imageRef": image, "flavorRef": "42", "networks": "none"}})  # 42 = m1.nano
        r.raise_for_status()
        uuid = r.json()["server"]["id"]
        result: dict[str, Any] = {"id": uuid, "create_response_s": time.time() - sent}
        marks = {"first_console_line_s": b"\n", "userspace_s": b"KUMO-TINY-BOOT-OK", "ready_s": b"KUMO-TINY-READY"}
        next_status = 0.0
        while time.time() < deadline and (len(result) < 6 or "active_s" not in result):
            now = time.time()
            if "active_s" not in result and now >= next_status:
                next_status = now + 0.05
                show = (await self.http.get(f"{COMPUTE}/servers/{uuid}")).json()["server"]
                if show["status"] == "ACTIVE":
                    result["active_s"] = time.time() - sent
                elif show["status"] == "ERROR":
                    raise RuntimeError(f"{name} went to ERROR: {show.get('fault')}")
            text = self.console(uuid)
            for key, marker in marks.items():
                if key not in result and marker in text:
                    result[key] = time.time() - sent
            await asyncio.sleep(0.02)
        result.update(await self.host_time(uuid))
        return result

    async def host_time(self, uuid: str) -> dict[str, float]:
        """The agent's build event: from the host taking the instance to the guest running."""
        actions = (await self.http.get(f"{COMPUTE}/servers/{uuid}/os-instance-actions")).json()["instanceActions"]
        create = next(a for a in actions if a["action"] == "create")
        detail = (await self.http.get(f"{COMPUTE}/servers/{uuid}/os-instance-actions/{create['request_id']}"))
        events = {e["event"]: e for e in detail.json()["instanceAction"]["events"]}
        build = events.get("compute__do_build_and_run_instance")
        schedule = events.get("conductor_schedule_and_build_instances")
        out: dict[str, float] = {}
        if build and build.get("finish_time"):
            out["on_host_s"] = parse_time(build["finish_time"]) - parse_time(build["start_time"])
        if schedule and schedule.get("finish_time") and build and build.get("finish_time"):
            out["scheduled_to_active_s"] = parse_time(build["finish_time"]) - parse_time(schedule["finish_time"])
        return out

    async def delete_all(self, uuids: list[str]) -> None:
        for uuid in uuids:
            await self.http.delete(f"{COMPUTE}/servers/{uuid}")
        deadline = time.time() + 120
        while time.time() < deadline:
            left = [u for u in uuids if (await self.http.get(f"{COMPUTE}/servers/{u}")).status_code != 404]
            if not left:
                return
            await asyncio.sleep(0.2)

    def memory(self, uuid: str) -> dict[str, int]:
        pid = int((self.run_dir / uuid / "qemu.pid").read_text())
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            parts = line.split()
            if parts and parts[0] in ("Rss:", "Pss:"):
                fields[parts[0].rstrip(":").lower() + "_kib"] = int(parts[1])
        return fields


async def run(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base, timeout=120) as http:
        bench = Bench(server, http)
        await bench.login()
        image = await bench.image_id()
        warm = await bench.boot_one(image, "warm-up", time.time() + 120)  # fills the image cache
        await bench.delete_all([warm["id"]])
        batches: list[dict[str, Any]] = []
        memory: list[dict[str, int]] = []
        for count in args.concurrency:
            for run_no in range(args.runs):
                deadline = time.time() + args.timeout
                results = await asyncio.gather(*(bench.boot_one(image, f"b{count}-{run_no}-{i}", deadline)
                                                 for i in range(count)))
                batch = {"concurrency": count, "run": run_no, "servers": results}
                for key in ("create_response_s", "active_s", "on_host_s", "scheduled_to_active_s",
                            "first_console_line_s", "userspace_s", "ready_s"):
                    batch[key] = stats([r[key] for r in results if key in r])
                batches.append(batch)
                print(f"{count} concurrent (run {run_no + 1}): ACTIVE p50 {batch['active_s'].get('p50_s')}s, "
                      f"on host p50 {batch['on_host_s'].get('p50_s')}s, first console line p50 "
                      f"{batch['first_console_line_s'].get('p50_s')}s, userspace p50 "
                      f"{batch['userspace_s'].get('p50_s')}s, ready p50 {batch['ready_s'].get('p50_s')}s", flush=True)
                if count == max(args.concurrency) and run_no == args.runs - 1:
                    await asyncio.sleep(args.idle)
                    memory = [bench.memory(r["id"]) for r in results]
                await bench.delete_all([r["id"] for r in results])
        rss = [m["rss_kib"] for m in memory if "rss_kib" in m]
        pss = [m["pss_kib"] for m in memory if "pss_kib" in m]
        return {"batches": batches, "idle_memory": {
            "guests": len(memory), "guest_ram_mb": 128, "rss_mib_mean": round(statistics.fmean(rss) / 1024, 1) if rss else None,
            "pss_mib_mean": round(statistics.fmean(pss) / 1024, 1) if pss else None, "per_guest": memory}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,8", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds the last batch idles before memory is read")
    parser.add_argument("--timeout", type=float, default=180.0, help="per batch")
    parser.add_argument("--kumo", default=str(REPO / ".venv" / "bin" / "kumo"))
    parser.add_argument("--results-dir", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64"):
        print("needs root and qemu-system-x86_64", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="kumo-qemu-bench-"))
    (work / "state").mkdir()
    env = {"KUMO_COMPUTE__DRIVER": "qemu", "KUMO_COMPUTE__RUN_DIR": str(work / "run"),
           "KUMO_IMAGE__BOOTSTRAP_TINY": "true", "KUMO_IMAGE__TINY_CACHE_DIR": DEB_CACHE,
           "KUMO_METADATA__PORT": str(free_port()), "KUMO_CONSOLE__PROXY_PORT": str(free_port()),
           "KUMO_NETWORK__DATAPLANE": "fake", "KUMO_NETWORK__BOOTSTRAP_NETWORKS": "false"}  # guests: networks none
    server = Server(args.kumo, work / "state", free_port(), None, extra_env=env)
    load = load_average()
    try:
        server.start(timeout=600)
        figures = asyncio.run(run(args, server))
    finally:
        server.stop()
        for pid_file in (work / "run").glob("*/qemu.pid"):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(work, ignore_errors=True)
    accel = "kvm" if "accelerator KVM" in server.log_tail(10_000) else "tcg"
    out = {"benchmark": "qemu_boot", "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "revision": git_revision(), "machine": machine(), "load_average_before": load, "accelerator": accel,
           "aims": {"active_after_scheduling_s": AIM_ACTIVE_AFTER_SCHEDULING_S, "userspace_s": AIM_USERSPACE_S},
           **figures}
    path = Path(args.results_dir) / "qemu_boot.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"results: {path}")
    print(f"idle memory per guest (128 MB RAM): RSS {figures['idle_memory']['rss_mib_mean']} MiB, "
          f"PSS {figures['idle_memory']['pss_mib_mean']} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
