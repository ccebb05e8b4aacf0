"""Forgetting tracked connections, over netlink (pyroute2's ``Conntrack``).

Two callers need it: the firewall, so an established connection does not
outlive the rule that let it in, and the router NAT, so a connection does not
outlive the floating IP it was translated through (Neutron's agents delete
such entries too). The netlink socket works on the namespace it was opened
in: callers that mean a router's table run this inside it
(:func:`kumo.network.dataplane.netns.in_namespace`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any


def forget(doomed: Callable[[Any], bool]) -> int:
    """Delete every IPv4 and IPv6 conntrack entry for which ``doomed(entry)`` holds; returns how many.

    ``entry.tuple_orig`` / ``entry.tuple_reply`` carry ``saddr``/``daddr``.
    """
    from pyroute2 import Conntrack  # imported here so that rendering rules never needs kernel access

    deleted = 0
    for family in (socket.AF_INET, socket.AF_INET6):
        ct = Conntrack(nfgen_family=family)
        try:
            for entry in [e for e in ct.dump_entries() if doomed(e)]:
                try:
                    if entry.zone:  # pyroute2's delete() names no zone, and the kernel would look in zone 0
                        ct.entry("del", tuple_orig=entry.tuple_orig, zone=entry.zone)
                    else:
                        ct.delete(entry)
                    deleted += 1
                except Exception:  # noqa: BLE001 - gone already (timed out meanwhile); nothing to forget
                    continue
        finally:
            ct.close()
    return deleted
