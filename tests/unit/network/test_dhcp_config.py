"""The dnsmasq configuration a DHCP plan renders to (pure functions, no root), and the fake driver."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kumo.network.dataplane.base import DhcpHost, DhcpPlan, DhcpSubnet, FixedIP
from kumo.network.dhcp import (
    DnsmasqDhcp,
    FakeDhcp,
    dnsmasq_args,
    render,
    render_addn_hosts,
    render_hosts,
    render_opts,
    write_atomic,
)

CONF = Path("/var/lib/kumo/dhcp/net-1")
V4 = DhcpSubnet("s4", "10.0.0.0/24", 4, "10.0.0.1")
STATEFUL = DhcpSubnet("s6", "2001:db8::/64", 6, "2001:db8::1", ipv6_ra_mode="dhcpv6-stateful",
                      ipv6_address_mode="dhcpv6-stateful")
STATELESS = DhcpSubnet("s7", "2001:db8:1::/64", 6, None, ipv6_address_mode="dhcpv6-stateless")
SLAAC_RA = DhcpSubnet("s8", "2001:db8:2::/64", 6, None, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
SLAAC_ROUTER = DhcpSubnet("s9", "2001:db8:3::/64", 6, "2001:db8:3::1", ipv6_address_mode="slaac")


def plan(*subnets: DhcpSubnet, hosts: tuple[DhcpHost, ...] = (), **kw: object) -> DhcpPlan:
    fields: dict = {"network_id": "net-1", "namespace": "qdhcp-net-1", "interface": "ns-port1", "port_id": "port1",
                    "mac_address": "fa:16:3e:00:00:02", "mtu": 1450, "subnets": subnets or (V4,), "hosts": hosts,
                    "addresses": (FixedIP("10.0.0.2", 24, "s4", "10.0.0.1"), FixedIP("2001:db8::2", 64, "s6"),
                                  FixedIP("2001:db8:1::2", 64, "s7"), FixedIP("2001:db8:2::2", 64, "s8"))}
    fields.update(kw)
    return DhcpPlan(**fields)


VM = DhcpHost("FA:16:3E:00:00:05", ("10.0.0.5", "2001:db8::5", "2001:db8:1::5", "2001:db8:2::5"), "vm1")


def test_ipv4_argv() -> None:
    assert dnsmasq_args(plan(V4), CONF) == [
        "--no-hosts", "--no-resolv", "--conf-file=/dev/null",
        "--pid-file=/var/lib/kumo/dhcp/net-1/pid",
        "--dhcp-hostsfile=/var/lib/kumo/dhcp/net-1/host",
        "--addn-hosts=/var/lib/kumo/dhcp/net-1/addn_hosts",
        "--dhcp-optsfile=/var/lib/kumo/dhcp/net-1/opts",
        "--dhcp-leasefile=/var/lib/kumo/dhcp/net-1/leases",
        "--bind-dynamic", "--interface=ns-port1", "--except-interface=lo",
        "--domain=openstacklocal", "--dhcp-authoritative", "--dhcp-lease-max=256",
        "--dhcp-option-force=option:mtu,1450",
        "--dhcp-range=set:subnet-s4,10.0.0.0,static,255.255.255.0,86400s",
    ]


def test_log_file_logs_leases_and_queries_there() -> None:
    args = dnsmasq_args(plan(V4), CONF, log_file=Path("/var/log/kumo/net-1/dhcp_dns_log"))
    assert args[-3:] == ["--log-facility=/var/log/kumo/net-1/dhcp_dns_log", "--log-dhcp", "--log-queries"]
    assert not any(a.startswith("--log") for a in dnsmasq_args(plan(V4), CONF))


def test_ipv6_ranges_and_router_advertisements() -> None:
    args = dnsmasq_args(plan(V4, STATEFUL, STATELESS, SLAAC_RA, SLAAC_ROUTER), CONF, user="dnsmasq")
    assert [a for a in args if a.startswith("--dhcp-range")] == [
        "--dhcp-range=set:subnet-s4,10.0.0.0,static,255.255.255.0,86400s",
        "--dhcp-range=set:subnet-s6,2001:db8::,static,64,86400s",
        "--dhcp-range=set:subnet-s7,2001:db8:1::,ra-stateless,64,86400s",
        "--dhcp-range=set:subnet-s8,2001:db8:2::,ra-only,64,86400s",
    ]  # s9: SLAAC with the router doing RAs, nothing for dnsmasq
    assert args[-3:] == ["--enable-ra", "--ra-param=ns-port1,mtu:1450,60,0", "--user=dnsmasq"]


def test_no_router_advertisements_without_ra_mode() -> None:
    stateful_no_ra = replace(STATEFUL, ipv6_ra_mode=None)
    args = dnsmasq_args(plan(V4, stateful_no_ra, STATELESS, SLAAC_ROUTER), CONF)
    assert "--enable-ra" not in args
    assert "--dhcp-range=set:subnet-s6,2001:db8::,static,64,86400s" in args


def test_hosts_file_leases_only_ipv4_and_stateful_addresses() -> None:
    hosts = (VM, DhcpHost("fa:16:3e:00:00:06", ("10.0.0.6", "192.168.9.9"), ""))
    assert render_hosts(plan(V4, STATEFUL, STATELESS, SLAAC_RA, hosts=hosts)) == (
        "fa:16:3e:00:00:05,vm1.openstacklocal,10.0.0.5\n"
        "fa:16:3e:00:00:05,vm1.openstacklocal,[2001:db8::5]\n"
        "fa:16:3e:00:00:06,host-10-0-0-6.openstacklocal,10.0.0.6\n"
    )  # 192.168.9.9 is in none of the plan's subnets


@pytest.mark.parametrize(("given", "name"), [
    ("vm1", "vm1"), ("VM1.example.org", "vm1"), ("bad_name", "host-10-0-0-5"), ("", "host-10-0-0-5"),
    ("-x", "host-10-0-0-5"), ("a" * 64, "host-10-0-0-5"),
])
def test_invalid_names_fall_back_to_neutrons_default(given: str, name: str) -> None:
    out = render_hosts(plan(V4, hosts=(DhcpHost("fa:16:3e:00:00:05", ("10.0.0.5",), given),)))
    assert out == f"fa:16:3e:00:00:05,{name}.openstacklocal,10.0.0.5\n"


def test_addn_hosts_name_every_address() -> None:
    p = plan(V4, STATEFUL, STATELESS, SLAAC_RA, hosts=(VM,), dns_domain="example.org.")
    assert render_addn_hosts(p) == (
        "10.0.0.5\tvm1.example.org vm1\n"
        "2001:db8::5\tvm1.example.org vm1\n"
        "2001:db8:1::5\tvm1.example.org vm1\n"
        "2001:db8:2::5\tvm1.example.org vm1\n"
    )
    assert "--domain=example.org" in dnsmasq_args(p, CONF)
    assert render_hosts(replace(p, hosts=(DhcpHost("fa:16:3e:00:00:05", ("2001:db8::5",), ""),))) == (
        "fa:16:3e:00:00:05,host-2001-db8--5.example.org,[2001:db8::5]\n")


def test_ipv4_options_default_to_dnsmasq_as_dns_server() -> None:
    assert render_opts(plan(V4)) == (
        "tag:subnet-s4,option:dns-server,10.0.0.2\n"
        "tag:subnet-s4,option:router,10.0.0.1\n"
    )


def test_ipv4_options_with_dns_servers_routes_and_no_gateway() -> None:
    routed = replace(V4, dns_nameservers=("8.8.8.8", "2001:4860::8888", "1.1.1.1"),
                     host_routes=(("10.1.0.0/16", "10.0.0.254"),))
    assert render_opts(plan(routed)) == (
        "tag:subnet-s4,option:dns-server,8.8.8.8,1.1.1.1\n"
        "tag:subnet-s4,option:classless-static-route,10.1.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1\n"
        "tag:subnet-s4,249,10.1.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1\n"
        "tag:subnet-s4,option:router,10.0.0.1\n"
    )
    no_gateway = replace(routed, gateway=None, dns_nameservers=())
    assert render_opts(plan(no_gateway)) == (
        "tag:subnet-s4,option:dns-server,10.0.0.2\n"
        "tag:subnet-s4,option:classless-static-route,10.1.0.0/16,10.0.0.254\n"
        "tag:subnet-s4,249,10.1.0.0/16,10.0.0.254\n"
        "tag:subnet-s4,option:router\n"
    )


def test_given_default_route_is_not_repeated() -> None:
    routed = replace(V4, host_routes=(("0.0.0.0/0", "10.0.0.9"),))
    assert "classless-static-route,0.0.0.0/0,10.0.0.9\n" in render_opts(plan(routed))


def test_ipv6_options() -> None:
    with_dns = replace(STATELESS, dns_nameservers=("2001:4860:0:0::8888", "8.8.8.8"))
    assert render_opts(plan(STATEFUL, with_dns, SLAAC_ROUTER)) == (
        "tag:subnet-s6,option6:dns-server,[2001:db8::2]\n"
        "tag:subnet-s6,option6:domain-search,openstacklocal\n"
        "tag:subnet-s7,option6:dns-server,[2001:4860::8888]\n"
        "tag:subnet-s7,option6:domain-search,openstacklocal\n"
    )


def test_lease_max_covers_the_static_subnets() -> None:
    big = DhcpSubnet("big", "10.0.0.0/8", 4, "10.0.0.1")
    assert "--dhcp-lease-max=131072" in dnsmasq_args(plan(big, STATEFUL, STATELESS), CONF)  # 2**16 each


def test_hosts_change_only_the_files_and_the_digest() -> None:
    before = render(plan(V4), CONF)
    after = render(plan(V4, hosts=(VM,)), CONF)
    assert before.args == after.args
    assert before.digest != after.digest
    assert render(plan(V4), CONF) == before


def test_write_atomic_reports_changes_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "host"
    assert write_atomic(target, "a\n")
    assert not write_atomic(target, "a\n")
    assert write_atomic(target, "b\n")
    assert target.read_text() == "b\n"
    assert [p.name for p in tmp_path.iterdir()] == ["host"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_state_dir_must_be_reachable_by_dnsmasq(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(ValueError, match="not searchable"):
        DnsmasqDhcp(private / "dhcp")
    DnsmasqDhcp(private / "dhcp", user="root")  # no privileges dropped: anything goes


def test_nothing_running_without_pid_files(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    made = DnsmasqDhcp(tmp_path, user="root")
    (tmp_path / "net-9").mkdir()
    (tmp_path / "net-9" / "pid").write_text("1\n")  # pid 1 is no dnsmasq of ours
    assert made.networks() == set()
    made.remove("net-9")
    made.remove("never-there")
    assert list(tmp_path.iterdir()) == []


def test_fake_records_what_dnsmasq_would_do() -> None:
    fake = FakeDhcp()
    p = plan(V4)
    fake.ensure(p)
    fake.ensure(p)
    fake.ensure(replace(p, hosts=(VM,)))
    fake.ensure(replace(p, hosts=(VM,), dns_domain="example.org"))
    assert fake.networks() == {"net-1"}
    assert fake.plans["net-1"].dns_domain == "example.org"
    fake.stop_all()
    fake.remove("net-1")
    assert fake.networks() == set()
    assert fake.events == [("start", "net-1"), ("reload", "net-1"), ("restart", "net-1"), ("stop", "net-1")]
