"""The nftables firewall's text, without a kernel (``nft -c`` checks the syntax too when run as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace

import pytest

from kumo.network.dataplane.base import PortFirewall, SecurityGroupRule
from kumo.network.firewall import FIREWALLS, FakeFirewall, NftablesFirewall, create_firewall
from kumo.network.firewall.nftables import _changed_addresses, assign_zones, link_local, parse_zones, render_ruleset

R = SecurityGroupRule
TAP1, TAP2, TAP3 = "tap0123456789a", "tapbbbbbbbbbbb", "tapccccccccccc"
GROUP = ("10.0.0.5", "10.0.0.6", "10.0.0.7", "fd00::5")


def web_port() -> PortFirewall:
    return PortFirewall(
        tap=TAP1, port_id="0123456789abcdef", mac_address="FA:16:3E:00:00:01", addresses=("10.0.0.5", "fd00::5"),
        allowed_pairs=(("fa:16:3e:00:00:99", "10.0.1.0/24"),),
        rules=(
            R("egress", "IPv4"), R("egress", "IPv6"),
            R("ingress", "IPv4", "tcp", 80, 80),
            R("ingress", "IPv4", "tcp", 8000, 8100, "192.168.0.0/16"),
            R("ingress", "IPv4", "udp", 53, None),
            R("ingress", "IPv4", "icmp", 8, 0),
            R("ingress", "IPv6", "icmp"),
            R("ingress", "IPv6", "ipv6-icmp", 128),
            R("ingress", "IPv4", "47"),
            R("ingress", "IPv4", None, remote_addresses=GROUP),
            R("ingress", "IPv6", None, remote_addresses=GROUP),
            R("ingress", "IPv4", "tcp", 22, 22, remote_addresses=()),
            R("ingress", "IPv4", None, "fd00::/64"),
            R("egress", "IPv4", "tcp", None, None, "0.0.0.0/0"),
        ))


def plan() -> list[PortFirewall]:
    return [
        web_port(),
        PortFirewall(tap=TAP2, port_id="b", mac_address="fa:16:3e:00:00:02", addresses=("10.0.0.6",), stateful=False,
                     rules=(R("ingress", "IPv4", None, remote_addresses=GROUP),)),
        PortFirewall(tap=TAP3, port_id="c", mac_address="fa:16:3e:00:00:03", addresses=("10.0.0.7",),
                     port_security_enabled=False),
    ]


def chain(text: str, name: str) -> list[str]:
    """The rule lines of one chain of the rendered text."""
    lines = text.splitlines()
    start = lines.index(f"  chain {name} {{")
    end = lines.index("  }", start)
    return [line.strip() for line in lines[start + 1:end]]


@pytest.fixture
def text() -> str:
    return NftablesFirewall(table="kumo-unit", guard_table="kumo-unitg").render(plan(), ["brq0123456789a"])


def test_transaction_replaces_only_kumo_tables(text: str) -> None:
    head = text.splitlines()[:6]
    assert head == ["add table bridge kumo-unit", "delete table bridge kumo-unit",
                    "add table inet kumo-unit", "delete table inet kumo-unit",
                    "add table inet kumo-unitg", "delete table inet kumo-unitg"]
    assert "flush ruleset" not in text
    tables = [line for line in text.splitlines() if line.startswith("table ")]
    assert tables == ["table bridge kumo-unit {", "table inet kumo-unit {", "table inet kumo-unitg {"]


def test_port_chains_hold_the_rules(text: str) -> None:
    ingress = chain(text, f"ingress-{TAP1}")
    assert ingress[:2] == ["meta mark & 0x30000000 == 0x30000000 drop", "meta mark & 0x30000000 == 0x20000000 accept"]
    assert "ether type ip meta l4proto tcp th dport 80 accept" in ingress
    assert "ether type ip ip saddr 192.168.0.0/16 meta l4proto tcp th dport 8000-8100 accept" in ingress
    assert "ether type ip meta l4proto udp th dport 53 accept" in ingress
    assert "ether type ip meta l4proto icmp icmp type 8 icmp code 0 accept" in ingress
    assert "ether type ip6 meta l4proto icmpv6 accept" in ingress  # "icmp" in an IPv6 rule means ICMPv6
    assert "ether type ip6 meta l4proto icmpv6 icmpv6 type 128 accept" in ingress
    assert "ether type ip meta l4proto 47 accept" in ingress
    assert not any("dport 22" in line for line in ingress)  # empty remote group: matches nothing
    assert not any("fd00::/64" in line for line in ingress)  # IPv6 prefix on an IPv4 rule: matches nothing
    assert ingress[-1] == "drop"
    egress = chain(text, f"egress-{TAP1}")
    assert egress[2:] == ["ether type ip return", "ether type ip6 return",
                          "ether type ip meta l4proto tcp return", "drop"]


def test_remote_groups_share_one_named_set_per_family(text: str) -> None:
    sets = [line for line in text.splitlines() if line.startswith("  set remote")]
    assert len(sets) == 2
    v4 = next(s for s in sets if "ipv4_addr" in s)
    assert "10.0.0.5, 10.0.0.6/31" in v4
    name = v4.split()[1]
    assert f"ether type ip ip saddr @{name} accept" in chain(text, f"ingress-{TAP1}")
    assert f"ether type ip ip saddr @{name} accept" in chain(text, f"ingress-{TAP2}")


def test_anti_spoofing_sets(text: str) -> None:
    assert f'"{TAP1}" . fa:16:3e:00:00:01 . 10.0.0.5' in text
    assert f'"{TAP1}" . fa:16:3e:00:00:99 . 10.0.1.0/24' in text
    assert f'"{TAP1}" . fa:16:3e:00:00:01 . fe80::f816:3eff:fe00:1' in text
    assert f'"{TAP1}" . fa:16:3e:00:00:99 . fe80::f816:3eff:fe00:99' in text
    assert f'"{TAP1}" . fa:16:3e:00:00:01 . fd00::5' in text
    assert "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return" in chain(text, "spoof-ip")
    assert "iifname . ether saddr != @macs drop" in chain(text, "spoof")
    egress = chain(text, "egress")
    assert egress.index("udp sport 67 udp dport 68 drop") < egress.index("iifname vmap @egress-ports")
    assert "icmpv6 type nd-router-advert drop" in egress


def test_unfiltered_and_stateless_ports(text: str) -> None:
    assert TAP3 not in text  # port security off: no filtering at all
    assert chain(text, f"ingress-{TAP2}")[0].startswith("ether type ip ip saddr @remote4-")  # no conntrack lines
    stateful = next(line for line in text.splitlines() if "set stateful-ports" in line)
    assert TAP1 in stateful and TAP2 not in stateful


def test_dispatch_by_verdict_maps(text: str) -> None:
    assert f'"{TAP1}" : goto egress-{TAP1}' in text
    assert f'"{TAP2}" : goto ingress-{TAP2}' in text
    assert chain(text, "forward")[1:] == ["iifname @ports jump egress", "oifname @ports jump ingress"]


def test_guard_table(text: str) -> None:
    guard = text[text.index("table inet kumo-unitg"):]
    assert 'set bridges { type ifname; elements = { "brq0123456789a" } }' in guard
    assert '"brq0123456789a" . "brq0123456789a"' in guard
    assert "iifname @bridges drop" in guard and "oifname @bridges drop" in guard


def test_empty_plan_renders() -> None:
    text = render_ruleset([], [], table="kumo-empty", guard_table="kumo-emptyg")
    assert "set ports { type ifname; }" in text


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="nft -c needs root")
@pytest.mark.parametrize("guarded", [(), ("brq0123456789a", "br-public")])
def test_nft_accepts_the_text(guarded: tuple[str, ...]) -> None:
    for ports in (plan(), []):
        text = NftablesFirewall(table="kumo-check", guard_table="kumo-checkg").render(ports, guarded)
        done = subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("bad", [
    dict(tap='tap"; flush ruleset'), dict(tap="tap0123456789abcdef"), dict(mac_address="fa:16:3e:00:01"),
])
def test_refuses_what_could_escape_the_text(bad: dict[str, str]) -> None:
    fields = dict(tap=TAP1, port_id="x", mac_address="fa:16:3e:00:00:01")
    port = PortFirewall(**{**fields, **bad})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        render_ruleset([port])


def test_table_names_and_duplicates() -> None:
    with pytest.raises(ValueError):
        NftablesFirewall(table="filter")
    with pytest.raises(ValueError):
        render_ruleset([web_port(), web_port()])


def test_link_local_is_eui64() -> None:
    assert link_local("52:54:00:12:34:56") == "fe80::5054:ff:fe12:3456"


def test_changed_ports_get_their_connections_rejudged() -> None:
    old = {p.tap: p for p in plan()}
    new = plan()
    new[1] = PortFirewall(tap=TAP2, port_id="b", mac_address="fa:16:3e:00:00:02", addresses=("10.0.0.6",))
    assert _changed_addresses(old, new) == {"10.0.0.6"}
    assert _changed_addresses({}, new) == set()


def test_registry_and_fake() -> None:
    assert FIREWALLS == {"nftables": NftablesFirewall, "fake": FakeFirewall}
    fake = create_firewall("fake")
    assert isinstance(fake, FakeFirewall)
    fake.apply(plan(), ["brqx"])
    assert fake.ports == tuple(plan()) and fake.guarded_bridges == ("brqx",)
    assert fake.by_tap(TAP2) == plan()[1]
    fake.clear()
    assert fake.ports == () and fake.cleared
    assert isinstance(create_firewall("nftables", table="kumo-x"), NftablesFirewall)
    with pytest.raises(ValueError):
        create_firewall("iptables")


def test_zones_keep_their_numbers_and_new_bridges_take_the_lowest_free() -> None:
    assert assign_zones(["brqb", "brqa"], {}) == {"brqa": 1, "brqb": 2}
    # brqa goes, brqc comes: brqb keeps 2 (its live connections stay in it), brqc takes the freed 1
    assert assign_zones(["brqb", "brqc"], {"brqa": 1, "brqb": 2}) == {"brqb": 2, "brqc": 1}
    assert assign_zones([], {"brqa": 1}) == {}


def test_zone_chains_run_before_conntrack_and_read_back() -> None:
    ports = [PortFirewall(tap="tap1", port_id="1", mac_address="fa:16:3e:00:00:01", addresses=("10.0.0.5",),
                          bridge="brq1"),
             PortFirewall(tap="tap2", port_id="2", mac_address="fa:16:3e:00:00:02", addresses=("10.0.0.5",),
                          bridge="brq2")]
    text = render_ruleset(ports, zones={"brq1": 7, "brq2": 3})
    assert "type filter hook prerouting priority -300; policy accept;" in text
    assert 'ct zone set iifname map { "brq1" : 7, "brq2" : 3 }' in text
    assert 'ct zone set oifname map { "brq1" : 7, "brq2" : 3 }' in text
    loaded = 'chain zones-in {\n\ttype filter hook prerouting priority raw; policy accept;\n' \
             '\tct zone set iifname map { "brq1" : 7, "brq2" : 3 }\n}'
    assert parse_zones(loaded) == {"brq1": 7, "brq2": 3}
    assert "zones-in" not in render_ruleset([replace(p, bridge="") for p in ports])  # no bridge, no zones
    assert 'iifname map { "brq1" : 1, "brq2" : 2 }' in render_ruleset(ports)  # numbered when not given
