#!/usr/bin/env python3
"""Compute boot benchmark: servers/s through the whole build path, with 1,000 fake hosts.

Not a test. It starts ``kumo up --fake-hosts N`` in a subprocess (its own
state dir and port; SQLite + in-process bus, or MariaDB + RabbitMQ with
``--backend mariadb``), waits until every simulated host has reported, then:

1. **boot**: creates ``--servers`` servers with ``--concurrency`` clients
   (``POST /servers``, one server each, as ``openstack server create`` does)
   and polls ``GET /servers?status=ACTIVE`` until all are ACTIVE. Boot
   throughput is servers / (time from the first POST to the last ACTIVE):
   API -> conductor -> scheduler (claim in the database) -> the host's agent
   -> ACTIVE, all of it;
2. **read**: ``GET /servers/{id}`` and ``GET /servers/detail?limit=50`` at the
   same concurrency, for API latency with the servers in place;
3. **delete**: deletes every server and polls until the list is empty.

Latencies are per request, measured by the client (p50/p99). The fake
driver's spawn takes no time, so the figure is the control plane's own cost.
Results go to ``bench/results/compute_boot-<backend>.json``.

Usage (from the repository root)::

    .venv/bin/python bench/compute_boot.py                           # sqlite, 1000 hosts, 500 servers
    .venv/bin/python bench/compute_boot.py --backend mariadb --servers 300
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from identity_tokens import (  # noqa: E402
    DEFAULT_MARIADB,
    REPO,
    CpuMeter,
    Server,
    create_database,
    drop_database,
    free_port,
    git_revision,
    latency_summary,
    load_average,
    machine,
)

AIM_BOOTS_PER_S = 50.0
BROKER = "amqp://guest:guest@127.0.0.1:5672/"
COMPUTE = "/compute/v2.1"


class Client:
    def __init__(self, base: str, password: str, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.http = httpx.AsyncClient(base_url=base, timeout=120, limits=limits)
        self.password = password
        self.headers: dict[str, str] = {}

    async def login(self) -> None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": self.password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        r = await self.http.post("/identity/v3/auth/tokens", json=body)
        r.raise_for_status()
        self.headers = {"X-Auth-Token": r.headers["X-Subject-Token"], "OpenStack-API-Version": "compute 2.90"}

    async def call(self, method: str, path: str, *, version: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = self.headers | ({"OpenStack-API-Version": f"compute {version}"} if version else {})
        r = await self.http.request(method, path, headers=headers, **kwargs)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r

    async def image(self) -> str:
        r = await self.call("POST", "/image/v2/images", json={"name": "bench", "disk_format": "raw",
                                                              "container_format": "bare", "visibility": "public"})
        image_id = r.json()["id"]
        await self.http.put(f"/image/v2/images/{image_id}/file", content=b"\0" * 4096,
                            headers={**self.headers, "Content-Type": "application/octet-stream"})
        return str(image_id)

    async def quotas_unlimited(self) -> None:
        r = await self.call("GET", "/identity/v3/auth/projects")
        project = next(p["id"] for p in r.json()["projects"] if p["name"] == "admin")
        await self.call("PUT", f"{COMPUTE}/os-quota-sets/{project}",
                        json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})

    async def count(self, status: str | None = None) -> int:
        params = {"limit": "1000"} | ({"status": status} if status else {})
        total, marker = 0, None
        while True:
            page = dict(params) | ({"marker": marker} if marker else {})
            servers = (await self.call("GET", f"{COMPUTE}/servers", params=page)).json()["servers"]
            total += len(servers)
            if len(servers) < 1000:
                return total
            marker = servers[-1]["id"]


async def wait_hosts(client: Client, hosts: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            stats = await client.call("GET", f"{COMPUTE}/os-hypervisors/statistics", version="2.87")
            if stats.json()["hypervisor_statistics"]["count"] >= hosts:
                return time.monotonic() - started
        except RuntimeError:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"fewer than {hosts} hosts reported within {timeout:.0f}s")


async def run_pool(count: int, concurrency: int, job: Any) -> list[float]:
    """Run ``job(i)`` for i < count on ``concurrency`` workers; each job's latency in seconds."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            t0 = time.perf_counter()
            await job(i)
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def wait_none_left(client: Client, params: dict[str, str], timeout: float) -> float:
    """Poll cheaply (one row at most) until no server matches ``params``; the time it happened.

    The poll must not load the server it measures: listing hundreds of servers
    every 100 ms would take a good part of the CPU the boots need.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        r = await client.call("GET", f"{COMPUTE}/servers", params={**params, "limit": "1"})
        if not r.json()["servers"]:
            return time.monotonic()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"servers matching {params} still there after {timeout:.0f}s")


async def measure(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    client = Client(server.base, server.admin_password(), args.concurrency)
    await client.login()
    hosts_ready_s = await wait_hosts(client, args.hosts, timeout=300)
    image = await client.image()
    await client.quotas_unlimited()
    ids: list[str] = [""] * args.servers

    async def boot(i: int) -> None:
        r = await client.call("POST", f"{COMPUTE}/servers", json={"server": {
            "name": f"bench-{i}", "imageRef": image, "flavorRef": "1", "networks": "none"}})
        ids[i] = r.json()["server"]["id"]

    meter = CpuMeter(server.pid)
    t0 = time.monotonic()
    create_lat = await run_pool(args.servers, args.concurrency, boot)
    posted = time.monotonic()
    active_at = await wait_none_left(client, {"status": "BUILD"}, timeout=600)
    boot_cpu = meter.stop()
    errors = await client.count("ERROR")

    show_lat = await run_pool(args.reads, args.concurrency,
                              lambda i: client.call("GET", f"{COMPUTE}/servers/{ids[i % len(ids)]}"))
    detail_lat = await run_pool(max(1, args.reads // 10), args.concurrency,
                                lambda i: client.call("GET", f"{COMPUTE}/servers/detail", params={"limit": "50"}))

    meter = CpuMeter(server.pid)
    t1 = time.monotonic()
    delete_lat = await run_pool(args.servers, args.concurrency,
                                lambda i: client.call("DELETE", f"{COMPUTE}/servers/{ids[i]}"))
    gone_at = await wait_none_left(client, {}, timeout=600)
    delete_cpu = meter.stop()
    await client.http.aclose()
    boot_s, delete_s = active_at - t0, gone_at - t1
    return {
        "hosts": args.hosts, "servers": args.servers, "concurrency": args.concurrency,
        "hosts_reported_after_s": round(hosts_ready_s, 1), "errors": errors,
        "boot": {"seconds": round(boot_s, 2), "servers_per_s": round(args.servers / boot_s, 1),
                 "api_accepted_all_after_s": round(posted - t0, 2), "create_latency": latency_summary(create_lat),
                 "cpu": boot_cpu},
        "delete": {"seconds": round(delete_s, 2), "servers_per_s": round(args.servers / delete_s, 1),
                   "delete_latency": latency_summary(delete_lat), "cpu": delete_cpu},
        "show_latency": latency_summary(show_lat), "detail_50_latency": latency_summary(detail_lat),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "mariadb"], default="sqlite",
                        help="sqlite + in-process bus, or mariadb + RabbitMQ")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--mariadb", default=DEFAULT_MARIADB)
    parser.add_argument("--kumo", default=str(REPO / ".venv" / "bin" / "kumo"))
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="kumo-bench-boot-"))
    database = create_database(args.mariadb) if args.backend == "mariadb" else None
    env = {"KUMO_COMPUTE__FAKE_HOSTS": str(args.hosts), "KUMO_COMPUTE__DRIVER": "fake",
           "KUMO_NODE__HEARTBEAT_INTERVAL": "10",
           # Servers boot with networks "none": the control plane alone, as the figures always measured.
           "KUMO_NETWORK__DATAPLANE": "fake", "KUMO_NETWORK__BOOTSTRAP_NETWORKS": "false"}
    if args.backend == "mariadb":
        env["KUMO_BUS__URL"] = BROKER
    server = Server(args.kumo, state, free_port(), f"{args.mariadb}/{database}" if database else None, env)
    load = load_average()
    try:
        server.start(timeout=300)
        result = asyncio.run(measure(server, args))
    except Exception:
        print(server.log_tail(40), file=sys.stderr)
        raise
    finally:
        server.stop()
        if database:
            drop_database(args.mariadb, database)
        shutil.rmtree(state, ignore_errors=True)
    report = {"timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "kumo_revision": git_revision(),
              "machine": machine(), "load_average_before": load, "backend": args.backend,
              "aim_boots_per_s": AIM_BOOTS_PER_S, **result}
    out = REPO / "bench" / "results" / f"compute_boot-{args.backend}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    boot, delete = result["boot"], result["delete"]
    print(f"{args.backend}: {args.servers} servers on {args.hosts} hosts: boot {boot['servers_per_s']}/s "
          f"(create p50 {boot['create_latency']['p50_ms']} ms, p99 {boot['create_latency']['p99_ms']} ms), "
          f"delete {delete['servers_per_s']}/s; show p50 {result['show_latency']['p50_ms']} ms "
          f"p99 {result['show_latency']['p99_ms']} ms; errors {result['errors']}; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
