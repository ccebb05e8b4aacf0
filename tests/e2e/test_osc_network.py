"""The network API through the real `openstack` CLI and openstacksdk (no dataplane yet: the API alone).

Related commands share one client process (``kumo.osc_batch``).
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e_support import KumoProcess, unique

pytestmark = pytest.mark.e2e


def test_networks_subnets_ports_and_groups(kumo: KumoProcess) -> None:
    net, sub, v6, port, group = (unique(x) for x in ("net", "sub", "v6", "port", "sg"))
    created, subnet, subnet6, made_port, made_group, rule, shown = kumo.osc_batch(
        ["network", "create", "--tag", "e2e", net],
        ["subnet", "create", "--network", net, "--subnet-range", "10.42.0.0/24", "--dns-nameserver", "10.42.0.53",
         "--allocation-pool", "start=10.42.0.10,end=10.42.0.100", sub],
        ["subnet", "create", "--network", net, "--ip-version", "6", "--subnet-range", "fd00:42::/64",
         "--ipv6-ra-mode", "slaac", "--ipv6-address-mode", "slaac", v6],
        ["port", "create", "--network", net, "--fixed-ip", f"subnet={sub},ip-address=10.42.0.50", port],
        ["security", "group", "create", group],
        ["security", "group", "rule", "create", group, "--protocol", "tcp", "--dst-port", "22"],
        ["network", "show", net],
    )
    assert created["status"] == "ACTIVE" and created["provider:network_type"] == "vxlan" and created["mtu"] == 1450
    assert subnet["gateway_ip"] == "10.42.0.1" and subnet["allocation_pools"] == [
        {"start": "10.42.0.10", "end": "10.42.0.100"}]
    assert subnet6["gateway_ip"] == "fd00:42::"
    addresses = {ip["ip_address"] for ip in made_port["fixed_ips"]}
    assert "10.42.0.50" in addresses and any(a.startswith("fd00:42::") for a in addresses)
    assert rule["port_range_min"] == 22 and rule["remote_ip_prefix"] == "0.0.0.0/0"
    assert set(shown["subnets"]) == {subnet["id"], subnet6["id"]} and shown["tags"] == ["e2e"]

    ports = kumo.osc("port", "list", "--network", net, "--long")  # the DHCP agent's port may be there too
    assert [p["Name"] for p in ports if p["Device Owner"] != "network:dhcp"] == [port]
    usage = kumo.osc("ip", "availability", "show", net)  # each port holds one address of the IPv4 subnet
    [v4_usage] = [s for s in usage["subnet_ip_availability"] if s["ip_version"] == 4]
    assert (v4_usage["subnet_id"], v4_usage["used_ips"], v4_usage["total_ips"]) == (subnet["id"], len(ports), 91)
    assert usage["total_ips"] == 91 + 2**64 - 1  # the /64's pool: all but the gateway (fd00:42::)
    networks = kumo.osc("network", "list", "--tags", "e2e")
    assert net in [n["Name"] for n in networks]

    taken = kumo.osc("port", "create", "--network", net, "--fixed-ip", f"subnet={sub},ip-address=10.42.0.50",
                     unique("dup"), check=False)
    assert taken.returncode != 0 and "IP address 10.42.0.50 already allocated" in taken.stderr
    in_use = kumo.osc("network", "delete", net, check=False)
    assert in_use.returncode != 0
    for args, message in (
            (["--subnet-range", "10.43.0.0/24", "--gateway", "10.44.0.1"], "outside the subnet"),
            (["--subnet-range", "10.43.0.0/24", "--allocation-pool", "start=10.43.0.10,end=10.43.0.20",
              "--allocation-pool", "start=10.43.0.15,end=10.43.0.30"], "Found overlapping allocation pools"),
            (["--subnet-range", "10.43.0.0/40"], "is not in a CIDR format")):
        bad = kumo.osc("subnet", "create", "--network", net, *args, unique("bad"), check=False)
        assert bad.returncode != 0 and message in bad.stderr, bad
    kumo.osc_batch(["port", "delete", port], ["security", "group", "delete", group], ["subnet", "delete", sub],
                   ["subnet", "delete", v6], ["network", "delete", net])
    assert net not in [n["Name"] for n in kumo.osc("network", "list")]


def test_sdk_network_round_trip(conn: Any) -> None:
    network = conn.network.create_network(name=unique("sdk-net"))
    subnet = conn.network.create_subnet(network_id=network.id, ip_version=4, cidr="10.77.0.0/28")
    ports = [conn.network.create_port(network_id=network.id) for _ in range(3)]
    addresses = [p.fixed_ips[0]["ip_address"] for p in ports]  # the lowest free ones (the DHCP port may hold one)
    assert len(set(addresses)) == 3 and all(a.startswith("10.77.0.") for a in addresses)
    assert conn.network.find_network(network.name).id == network.id
    found = list(conn.network.ports(network_id=network.id, limit=2))  # the SDK follows the next links
    assert sorted(p.id for p in found if p.device_owner != "network:dhcp") == sorted(p.id for p in ports)
    assert conn.network.get_quota(conn.current_project_id).networks == 100
    for port in ports:
        conn.network.delete_port(port)
    conn.network.delete_subnet(subnet)
    conn.network.delete_network(network)
    assert conn.network.find_network(network.name) is None


def test_routers_and_floating_ips(kumo: KumoProcess) -> None:
    ext, ext_sub, net, sub, router = (unique(x) for x in ("ext", "extsub", "net", "sub", "router"))
    _, _, _, _, _, set_out, added, fip, shown = kumo.osc_batch(
        ["network", "create", "--external", ext],
        ["subnet", "create", "--network", ext, "--subnet-range", "172.31.0.0/24", "--no-dhcp", ext_sub],
        ["network", "create", net],
        ["subnet", "create", "--network", net, "--subnet-range", "10.61.0.0/24", sub],
        ["router", "create", router],
        ["router", "set", "--external-gateway", ext, router],
        ["router", "add", "subnet", router, sub],
        ["floating", "ip", "create", ext],
        ["router", "show", router],
    )
    gateway = shown["external_gateway_info"]
    assert gateway["network_id"] and gateway["enable_snat"] is True
    assert gateway["external_fixed_ips"][0]["ip_address"].startswith("172.31.0.")
    assert shown["interfaces_info"] and shown["interfaces_info"][0]["ip_address"] == "10.61.0.1"
    assert fip["floating_ip_address"].startswith("172.31.0.") and fip["port_id"] is None
    in_use = kumo.osc("router", "delete", router, check=False)
    assert in_use.returncode != 0
    kumo.osc_batch(["floating", "ip", "delete", fip["id"]], ["router", "remove", "subnet", router, sub],
                   ["router", "unset", "--external-gateway", router], ["router", "delete", router],
                   ["subnet", "delete", sub], ["network", "delete", net], ["subnet", "delete", ext_sub],
                   ["network", "delete", ext])


def test_subnet_pools(kumo: KumoProcess) -> None:
    pool, net = unique("pool"), unique("pnet")
    made, _, carved, sized, _ = kumo.osc_batch(
        ["subnet", "pool", "create", "--pool-prefix", "10.90.0.0/16", "--default-prefix-length", "24",
         "--max-prefix-length", "28", pool],
        ["network", "create", net],
        ["subnet", "create", "--network", net, "--subnet-pool", pool, unique("auto")],
        ["subnet", "create", "--network", net, "--subnet-pool", pool, "--prefix-length", "28", unique("small")],
        ["subnet", "pool", "set", "--pool-prefix", "10.91.0.0/16", pool],
    )
    assert made["prefixes"] == ["10.90.0.0/16"] and made["default_prefixlen"] == 24
    assert (carved["cidr"], carved["subnetpool_id"]) == ("10.90.0.0/24", made["id"])
    assert sized["cidr"] == "10.90.1.0/28"
    assert kumo.osc("subnet", "pool", "show", pool)["prefixes"] == ["10.90.0.0/15"]  # grown, and merged
    assert pool in [p["Name"] for p in kumo.osc("subnet", "pool", "list")]
    refused = kumo.osc("subnet", "create", "--network", net, "--subnet-pool", pool, "--prefix-length", "30",
                       unique("tiny"), check=False)
    assert refused.returncode != 0 and "maximum allowed prefix is 28" in refused.stderr
    in_use = kumo.osc("subnet", "pool", "delete", pool, check=False)
    assert in_use.returncode != 0
    kumo.osc("network", "delete", net, json=False)
    kumo.osc("subnet", "pool", "delete", pool, json=False)
