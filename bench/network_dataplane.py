#!/usr/bin/env python3
"""Network dataplane benchmark: port create -> DHCP-ready, and rule create -> enforced, with 1,000 ports on the host.

Not a test; needs root (it runs the real Linux dataplane: bridges, taps,
dnsmasq, nftables). It starts ``kumo up`` (fake compute driver, no bootstrap
networks, SQLite + in-process bus), makes one network with a /20 DHCP subnet,
then ``--ports`` ports bound to this host as a compute agent binds them
(``device_owner compute:nova``, ``binding:host_id``), with ``--concurrency``
clients. Measured:

* bulk: ports/s through the API and the time until *every* port is ready on
  the host (its tap exists and its MAC is in dnsmasq's hosts file: dnsmasq
  reloads that file at once on the SIGHUP that follows the write);
* single port at that scale: ``--samples`` ports made one at a time, each
  timed from the API's 201 to ready (p50/p99);
* rule to enforced: ``--samples`` security group rules added to the default
  group every port is in, each timed from the API's 201 until the rule is in
  the nftables chain of a port (``nft list chain bridge kumo ingress-<tap>``);
  the agent loads the whole ruleset in one transaction, so one chain having
  it means every port has it.

Everything is deleted at the end; the host is checked clean. Results in
``bench/results/network_dataplane.json``.

Usage (from the repository root, as root)::

    .venv/bin/python bench/network_dataplane.py                  # 1000 ports, 16 clients, 20 samples
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from identity_tokens import (  # noqa: E402
    REPO,
    Server,
    free_port,
    git_revision,
    latency_summary,
    load_average,
    machine,
    password_body,
    process_cpu_s,
)

NET = "/network/v2.0"
HOST = "bench-host"


def tap(port_id: str) -> str:
    return f"tap{port_id[:11]}"


class Host:
    """What the dataplane made, read straight from the kernel and dnsmasq's files."""

    def __init__(self, state_dir: Path, network_id: str) -> None:
        self.hosts_file = state_dir / "dhcp" / network_id / "host"

    def macs(self) -> set[str]:
        try:
            return {line.split(",")[0] for line in self.hosts_file.read_text().splitlines() if line}
        except FileNotFoundError:
            return set()

    def ready(self, port: dict[str, Any]) -> bool:
        return os.path.exists(f"/sys/class/net/{tap(port['id'])}") and port["mac_address"] in self.macs()

    @staticmethod
    def chain_has(port_id: str, needle: str) -> bool:
        done = subprocess.run(["nft", "list", "chain", "bridge", "kumo", f"ingress-{tap(port_id)}"],
                              capture_output=True, text=True)
        return needle in done.stdout


async def until(check: Any, timeout: float = 120.0, every: float = 0.002) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the dataplane did not catch up")
        await asyncio.sleep(every)
    return time.perf_counter() - started


async def run(server: Server, ports: int, concurrency: int, samples: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.base, timeout=120, limits=limits) as http:
        r = await http.post("/identity/v3/auth/tokens", json=password_body(server.admin_password()))
        http.headers["X-Auth-Token"] = r.headers["X-Subject-Token"]
        network = (await http.post(f"{NET}/networks", json={"network": {"name": "bench"}})).json()["network"]
        await http.post(f"{NET}/subnets", json={"subnet": {"network_id": network["id"], "ip_version": 4,
                                                           "cidr": "10.100.0.0/20"}})
        host = Host(server.state_dir, network["id"])
        bound = {"device_owner": "compute:nova", "binding:host_id": HOST}

        async def create(i: int) -> dict[str, Any]:
            r = await http.post(f"{NET}/ports", json={"port": {"network_id": network["id"], "device_id": f"vm-{i}",
                                                                **bound}})
            r.raise_for_status()
            return dict(r.json()["port"])

        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(ports):
            queue.put_nowait(i)
        made: list[dict[str, Any]] = []

        async def worker() -> None:
            while not queue.empty():
                made.append(await create(queue.get_nowait()))

        cpu0, started = process_cpu_s(server.pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        api_s = time.perf_counter() - started
        await until(lambda: all(host.ready(p) for p in made[-50:]) and len(host.macs()) >= ports, timeout=600,
                    every=0.05)
        all_ready_s = time.perf_counter() - started
        bulk_cpu = process_cpu_s(server.pid) - cpu0
        assert all(host.ready(p) for p in made), "a port is not on the host"

        single: list[float] = []
        for i in range(samples):
            port = await create(ports + i)
            made.append(port)
            single.append(await until(lambda p=port: host.ready(p)))

        groups = (await http.get(f"{NET}/security-groups", params={"name": "default"})).json()["security_groups"]
        project = made[0]["project_id"]
        [group] = [g for g in groups if g["project_id"] == project]
        rule_lat: list[float] = []
        for i in range(samples):
            port_number = 20000 + i
            r = await http.post(f"{NET}/security-group-rules", json={"security_group_rule": {
                "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
                "port_range_min": port_number, "port_range_max": port_number}})
            r.raise_for_status()
            rule_lat.append(await until(lambda n=port_number: host.chain_has(made[-1]["id"], f"dport {n}"),
                                        every=0.01))

        queue = asyncio.Queue()
        for port in made:
            queue.put_nowait(port["id"])

        async def deleter() -> None:
            while not queue.empty():
                (await http.delete(f"{NET}/ports/{queue.get_nowait()}")).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(deleter() for _ in range(concurrency)))
        await http.delete(f"{NET}/networks/{network['id']}")
        await until(lambda: not any(os.path.exists(f"/sys/class/net/{tap(p['id'])}") for p in made[:50])
                    and not host.hosts_file.exists(), timeout=600, every=0.05)
        cleaned_s = time.perf_counter() - started
        return {"ports": ports, "concurrency": concurrency, "samples": samples,
                "bulk_api_ports_per_s": round(ports / api_s, 1), "bulk_all_ready_s": round(all_ready_s, 2),
                "bulk_server_cpu_ms_per_port": round(bulk_cpu / ports * 1000, 2),
                "port_to_dhcp_ready": latency_summary(single), "rule_to_enforced": latency_summary(rule_lat),
                "delete_all_and_clean_s": round(cleaned_s, 2)}


def kumo_links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith(("brq", "vxlan-", "tap"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--kumo", default=str(REPO / ".venv" / "bin" / "kumo"))
    parser.add_argument("--results-dir", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (the real dataplane)", file=sys.stderr)
        return 2
    if kumo_links():
        print(f"this host already has Kumo links ({', '.join(kumo_links()[:5])} ...): stop that cloud first",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="kumo-dp-bench-"))
    work.chmod(0o755)
    env = {"KUMO_COMPUTE__DRIVER": "fake", "KUMO_METADATA__PORT": str(free_port()),
           "KUMO_CONSOLE__PROXY_PORT": str(free_port()), "KUMO_NETWORK__QUOTA_PORT": "-1",
           "KUMO_NETWORK__QUOTA_SECURITY_GROUP_RULE": "-1", "KUMO_NETWORK__BOOTSTRAP_NETWORKS": "false",
           "KUMO_NETWORK__DATAPLANE": "linuxbridge", "KUMO_NODE__HOST": HOST}
    server = Server(args.kumo, work, free_port(), None, extra_env=env)
    load = load_average()
    try:
        server.start()
        figures = asyncio.run(run(server, args.ports, args.concurrency, args.samples))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    left = kumo_links()
    out = {"benchmark": "network_dataplane", "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "revision": git_revision(), "machine": machine(), "load_average_before": load, **figures,
           "links_left": left}
    path = Path(args.results_dir) / "network_dataplane.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{args.ports} ports: {figures['bulk_api_ports_per_s']} ports/s via the API, all DHCP-ready after "
          f"{figures['bulk_all_ready_s']} s; one more port at that scale: DHCP-ready p50 "
          f"{figures['port_to_dhcp_ready']['p50_ms']} ms (p99 {figures['port_to_dhcp_ready']['p99_ms']} ms); "
          f"rule -> enforced p50 {figures['rule_to_enforced']['p50_ms']} ms "
          f"(p99 {figures['rule_to_enforced']['p99_ms']} ms); delete + clean {figures['delete_all_and_clean_s']} s")
    print(f"results: {path}" + (f"; LEFT ON THE HOST: {left}" if left else ""))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
