"""Named network namespaces (``ip netns`` compatible), and running code inside one without moving the agent.

Split from :mod:`kumo.network.dataplane.linuxbridge`; nothing here touches a
link or the host's own namespace.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pyroute2 import netns

from kumo.network.dataplane.base import DataplaneError

NETNS_DIR = "/var/run/netns"
T = TypeVar("T")


def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def namespace_exists(name: str) -> bool:
    """A usable namespace is a bind mount; a bare file is what a crash mid-``create`` leaves behind."""
    return os.path.ismount(netns_path(name))


def ensure_namespace(name: str) -> None:
    if namespace_exists(name):
        return
    if os.path.lexists(netns_path(name)):
        os.unlink(netns_path(name))  # half-made by a crash: not mounted, so nothing lives in it
    netns.create(name)


def in_namespace(namespace: str, func: Callable[[], T]) -> T:
    """Run ``func`` on a short-lived thread that entered ``namespace``.

    ``setns`` moves only the calling thread, so the agent's threads stay in the
    host namespace; the thread checks it really is inside the namespace before
    ``func`` runs, so a failed ``setns`` can never make it write the host's
    sysctls.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            fd = os.open(netns_path(namespace), os.O_RDONLY)
            try:
                netns.setns(fd, flags=0)
                target = os.fstat(fd)
            finally:
                os.close(fd)
            here = os.stat("/proc/thread-self/ns/net")
            if (here.st_dev, here.st_ino) != (target.st_dev, target.st_ino):
                raise DataplaneError(f"could not enter namespace {namespace}")
            outcome["value"] = func()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"kumo-netns-{namespace[:20]}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def enable_forwarding() -> None:
    """Forwarding on, for the namespace of the calling thread (only ever called through :func:`in_namespace`)."""
    for path in ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"):
        try:
            with open(path) as f:
                if f.read().strip() == "1":
                    continue
            with open(path, "w") as f:
                f.write("1")
        except FileNotFoundError:  # IPv6 disabled on this host
            continue
