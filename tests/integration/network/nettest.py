"""Helpers of the dataplane suites (no tests here): commands, scratch namespaces and links, host listings.

Everything a test makes through :class:`Scratch` carries a random suffix, so
suites can run side by side, and is deleted at teardown even when the test
fails. Nothing here touches the host's own links, routes or firewall rules.
"""

from __future__ import annotations

import subprocess
import uuid


def sh(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run a command; a failure shows its stderr."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def in_ns(namespace: str, *argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", namespace, *argv, check=check, timeout=timeout)


class Scratch:
    """Namespaces and host links made by one test, removed by :meth:`cleanup`."""

    def __init__(self) -> None:
        self.namespaces: list[str] = []
        self.links: list[str] = []

    def namespace(self, prefix: str = "kt") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        in_ns(name, "ip", "link", "set", "lo", "up")
        return name

    def link_name(self, prefix: str = "kt") -> str:
        name = f"{prefix}{uuid.uuid4().hex[:8]}"[:15]
        self.links.append(name)
        return name

    def veth_into(self, namespace: str, host_name: str, ns_name: str, *, mac: str | None = None,
                  cidr: str | None = None, bridge: str | None = None) -> None:
        """A veth pair: ``host_name`` stays on the host (on ``bridge`` if given), ``ns_name`` into ``namespace``."""
        self.links.append(host_name)
        sh("ip", "link", "add", host_name, "type", "veth", "peer", "name", ns_name, "netns", namespace)
        if mac:
            in_ns(namespace, "ip", "link", "set", ns_name, "address", mac)
        if cidr:
            in_ns(namespace, "ip", "addr", "add", cidr, "dev", ns_name)
        in_ns(namespace, "ip", "link", "set", ns_name, "up")
        if bridge:
            sh("ip", "link", "set", host_name, "master", bridge)
        sh("ip", "link", "set", host_name, "up")

    def bridge(self, name: str | None = None) -> str:
        name = name or self.link_name("ktbr")
        if name not in self.links:
            self.links.append(name)
        sh("ip", "link", "add", name, "type", "bridge")
        sh("ip", "link", "set", name, "up")
        return name

    def cleanup(self) -> None:
        for name in reversed(self.links):
            sh("ip", "link", "del", name, check=False)
        for name in reversed(self.namespaces):
            pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", name, check=False)


def host_links() -> set[str]:
    """Names of every link in the host namespace (to assert a test left none behind)."""
    out = sh("ip", "-o", "link", "show").stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def host_namespaces() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()}
