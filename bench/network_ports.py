#!/usr/bin/env python3
"""Network API benchmark: ports created per second (API + IPAM), and listing them, with 1,000 ports.

Not a test. It starts ``kumo up`` (fake compute driver, no tiny image; SQLite
+ in-process bus, or MariaDB with ``--backend mariadb``), creates one network
with a /20 subnet, then ``--ports`` ports with ``--concurrency`` clients (one
``POST /v2.0/ports`` each, as ``openstack port create`` does: an address
chosen by the IPAM, the default security group), checks that no address was
handed out twice, times ``GET /v2.0/ports?network_id=`` (all of them) and
``GET /v2.0/ports/{id}``, and deletes every port. Reports ports/s, per-request
p50/p99 and the server's CPU per port; results in
``bench/results/network_ports-<backend>.json``.

The dataplane figures (port to DHCP-ready, rule to enforced) are
bench/network_dataplane.py's; here the network agent runs its fake drivers.

Usage (from the repository root)::

    .venv/bin/python bench/network_ports.py                       # sqlite, 1000 ports, 16 clients
    .venv/bin/python bench/network_ports.py --backend mariadb
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
    Server,
    create_database,
    drop_database,
    free_port,
    git_revision,
    latency_summary,
    load_average,
    machine,
    password_body,
    process_cpu_s,
)

NET = "/network/v2.0"


async def timed(http: httpx.AsyncClient, method: str, url: str, latencies: list[float], **kwargs: Any
                ) -> httpx.Response:
    started = time.perf_counter()
    r = await http.request(method, url, **kwargs)
    latencies.append(time.perf_counter() - started)
    r.raise_for_status()
    return r


async def run(server: Server, ports: int, concurrency: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.base, timeout=120, limits=limits) as http:
        r = await http.post("/identity/v3/auth/tokens", json=password_body(server.admin_password()))
        http.headers["X-Auth-Token"] = r.headers["X-Subject-Token"]
        network = (await http.post(f"{NET}/networks", json={"network": {"name": "bench"}})).json()["network"]
        await http.post(f"{NET}/subnets", json={"subnet": {"network_id": network["id"], "ip_version": 4,
                                                           "cidr": "10.100.0.0/20"}})
        create_lat: list[float] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(ports):
            queue.put_nowait(i)
        made: list[dict[str, Any]] = []

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                r = await timed(http, "POST", f"{NET}/ports", create_lat,
                                json={"port": {"network_id": network["id"]}})
                made.append(r.json()["port"])

        cpu0, started = process_cpu_s(server.pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        create_s, create_cpu = time.perf_counter() - started, process_cpu_s(server.pid) - cpu0
        addresses = [p["fixed_ips"][0]["ip_address"] for p in made]
        assert len(set(addresses)) == len(addresses) == ports, "an address was handed out twice"
        list_lat: list[float] = []
        for _ in range(10):
            r = await timed(http, "GET", f"{NET}/ports", list_lat, params={"network_id": network["id"]})
            assert len(r.json()["ports"]) == ports
        show_lat: list[float] = []
        for port in made[:200]:
            await timed(http, "GET", f"{NET}/ports/{port['id']}", show_lat)
        delete_lat: list[float] = []
        queue = asyncio.Queue()
        for port in made:
            queue.put_nowait(port["id"])

        async def deleter() -> None:
            while not queue.empty():
                await timed(http, "DELETE", f"{NET}/ports/{queue.get_nowait()}", delete_lat)

        started = time.perf_counter()
        await asyncio.gather(*(deleter() for _ in range(concurrency)))
        delete_s = time.perf_counter() - started
        return {"ports": ports, "concurrency": concurrency, "create_per_s": round(ports / create_s, 1),
                "create": latency_summary(create_lat), "server_cpu_ms_per_create": round(create_cpu / ports * 1000, 2),
                "list_all": latency_summary(list_lat), "show": latency_summary(show_lat),
                "delete_per_s": round(ports / delete_s, 1), "delete": latency_summary(delete_lat)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "mariadb"), default="sqlite")
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--mariadb-url", default=DEFAULT_MARIADB)
    parser.add_argument("--kumo", default=str(REPO / ".venv" / "bin" / "kumo"))
    parser.add_argument("--results-dir", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kumo-net-bench-"))
    database = create_database(args.mariadb_url) if args.backend == "mariadb" else None
    url = f"{args.mariadb_url}/{database}" if database else None
    env = {"KUMO_COMPUTE__DRIVER": "fake", "KUMO_METADATA__PORT": str(free_port()),
           "KUMO_CONSOLE__PROXY_PORT": str(free_port()), "KUMO_NETWORK__QUOTA_PORT": "-1",
           # The API and IPAM alone (bench/network_dataplane.py measures the agent's side).
           "KUMO_NETWORK__DATAPLANE": "fake", "KUMO_NETWORK__BOOTSTRAP_NETWORKS": "false"}
    server = Server(args.kumo, work, free_port(), url, extra_env=env)
    load = load_average()
    try:
        server.start()
        figures = asyncio.run(run(server, args.ports, args.concurrency))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if database:
            drop_database(args.mariadb_url, database)
    out = {"benchmark": "network_ports", "backend": args.backend,
           "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "revision": git_revision(),
           "machine": machine(), "load_average_before": load, **figures}
    path = Path(args.results_dir) / f"network_ports-{args.backend}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{args.backend}: {figures['create_per_s']} ports/s (create p50 {figures['create']['p50_ms']} ms, "
          f"p99 {figures['create']['p99_ms']} ms, server CPU {figures['server_cpu_ms_per_create']} ms/port); "
          f"list of {args.ports} p50 {figures['list_all']['p50_ms']} ms; show p50 {figures['show']['p50_ms']} ms; "
          f"{figures['delete_per_s']} deletes/s")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
