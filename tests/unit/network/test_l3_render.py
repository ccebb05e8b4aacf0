"""The router NAT ruleset: exact text for the common plans, and nft's own syntax check when we are root."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from kumo.network.dataplane.base import FixedIP, FloatingMapping, RouterInterface, RouterPlan
from kumo.network.l3 import FakeRouterNat, render_router_nat

ROUTER = "2f1c7d0e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"


def leg(name: str, *cidrs: str) -> RouterInterface:
    addresses = tuple(FixedIP(c.split("/")[0], int(c.split("/")[1])) for c in cidrs)
    return RouterInterface(port_id=name, name=name, tap=f"tap{name[3:]}", bridge="brqx",
                           mac_address="fa:16:3e:00:00:01", addresses=addresses, mtu=1450)


def plan(**kw: object) -> RouterPlan:
    values: dict[str, object] = {
        "router_id": ROUTER,
        "namespace": f"qrouter-{ROUTER}",
        "interfaces": (leg("qr-aaaa", "10.0.1.1/24", "fd00::1/64"), leg("qr-bbbb", "10.0.2.1/24")),
        "gateway": leg("qg-cccc", "172.24.4.10/24", "2001:db8::10/64"),
        "floating": (FloatingMapping("172.24.4.21", "10.0.2.6"), FloatingMapping("172.24.4.20", "10.0.1.5")),
    }
    values.update(kw)
    return RouterPlan(**values)  # type: ignore[arg-type]


FULL = """\
table ip kumo-nat {
}
delete table ip kumo-nat
table ip kumo-nat {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tiifname "qr-*" ip daddr 169.254.169.254 tcp dport 80 redirect to :9697
\t\tip daddr 172.24.4.20 dnat to 10.0.1.5
\t\tip daddr 172.24.4.21 dnat to 10.0.2.6
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tiifname != "qr-*" tcp dport 9697 drop
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname "qg-cccc" ip saddr 10.0.1.5 snat to 172.24.4.20
\t\toifname "qg-cccc" ip saddr 10.0.2.6 snat to 172.24.4.21
\t\toifname "qg-cccc" ip saddr { 10.0.1.0/24, 10.0.2.0/24 } snat to 172.24.4.10
\t}
}
"""


def nft_check(text: str) -> None:
    """``nft -c`` in a throwaway network namespace (unshare), so nothing is ever loaded anywhere."""
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"):
        return
    done = subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=text, capture_output=True, text=True,
                          timeout=20)
    assert done.returncode == 0, done.stderr


def test_gateway_snat_and_two_floating_ips() -> None:
    text = render_router_nat(plan())
    assert text == FULL
    nft_check(text)


def test_same_plan_same_text() -> None:
    reordered = plan(floating=tuple(reversed(plan().floating)), interfaces=tuple(reversed(plan().interfaces)))
    assert render_router_nat(reordered) == FULL


def test_without_gateway_only_the_metadata_redirect() -> None:
    text = render_router_nat(plan(gateway=None))
    assert "redirect to :9697" in text
    assert "dnat" not in text and "snat" not in text
    assert 'iifname != "qr-*" tcp dport 9697 drop' in text
    nft_check(text)


def test_snat_disabled_keeps_floating_ips() -> None:
    text = render_router_nat(plan(enable_snat=False))
    assert "ip daddr 172.24.4.20 dnat to 10.0.1.5" in text
    assert 'oifname "qg-cccc" ip saddr 10.0.1.5 snat to 172.24.4.20' in text
    assert "172.24.4.10" not in text
    assert "10.0.1.0/24" not in text
    nft_check(text)


def test_gateway_without_ipv4_or_internal_subnets_has_no_router_snat() -> None:
    assert "snat" not in render_router_nat(plan(gateway=leg("qg-cccc", "2001:db8::10/64"), floating=()))
    assert "snat" not in render_router_nat(plan(interfaces=(), floating=()))


def test_ipv6_floating_and_fixed_addresses_are_skipped() -> None:
    text = render_router_nat(plan(floating=(FloatingMapping("2001:db8::20", "fd00::5"),)))
    assert "2001:db8" not in text and "fd00" not in text
    nft_check(text)


@pytest.mark.parametrize("bad", [
    {"floating": (FloatingMapping("172.24.4.20; flush ruleset", "10.0.1.5"),)},
    {"gateway": leg('qg-"x"', "172.24.4.10/24")},
    {"gateway": leg("qg-waytoolongname", "172.24.4.10/24")},
])
def test_values_are_validated_not_pasted(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        render_router_nat(plan(**bad))


def test_fake_records_plans() -> None:
    fake = FakeRouterNat()
    p = plan()
    fake.apply(p)
    fake.apply(p)
    assert fake.plans == {p.namespace: p}
    assert fake.ruleset(p.namespace) == FULL
    fake.remove(p.namespace)
    fake.remove(p.namespace)
    assert fake.plans == {} and fake.ruleset(p.namespace) is None
    assert fake.calls == [("apply", p.namespace)] * 2 + [("remove", p.namespace)] * 2
