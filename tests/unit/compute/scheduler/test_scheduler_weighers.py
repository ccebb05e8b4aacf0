"""Weighers: normalisation, spread versus stack, soft server group policies."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kumo.compute.scheduler import HostState, RequestSpec, ServerGroupSpec
from kumo.compute.scheduler.weighers import (
    DEFAULT_WEIGHERS,
    WEIGHERS,
    CPUWeigher,
    RAMWeigher,
    ServerGroupSoftAffinityWeigher,
    ServerGroupSoftAntiAffinityWeigher,
    normalize,
    weigh_hosts,
)

HostFactory = Callable[..., HostState]  # the make_host / make_spec fixtures of conftest.py
SpecFactory = Callable[..., RequestSpec]


def test_registry() -> None:
    assert all(cls.name == name for name, cls in WEIGHERS.items())
    assert DEFAULT_WEIGHERS["RAMWeigher"] == 1.0 and DEFAULT_WEIGHERS["CPUWeigher"] == 1.0


def test_normalize_like_nova() -> None:
    assert normalize([10, 20, 30]) == [0.0, 0.5, 1.0]
    assert normalize([5, 5, 5]) == [0.0, 0.0, 0.0]
    assert normalize([]) == []
    assert normalize([1, 2], minval=0, maxval=4) == [0.25, 0.5]


def test_ram_weigher_spreads_to_the_most_free_ram(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("full", used_memory_mb=6144), make_host("empty"), make_host("half", used_memory_mb=4096)]
    ranked = weigh_hosts([RAMWeigher()], hosts, make_spec())
    assert [(w, h.host) for w, h in ranked] == [(1.0, "empty"), (pytest.approx(1 / 3), "half"), (0.0, "full")]


def test_negative_ram_multiplier_stacks(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("full", used_memory_mb=6144), make_host("empty"), make_host("half", used_memory_mb=4096)]
    ranked = weigh_hosts([RAMWeigher(-1.0)], hosts, make_spec())
    assert [h.host for _, h in ranked] == ["full", "half", "empty"]
    assert ranked[0][0] == 0.0 and ranked[-1][0] == -1.0


def test_weights_are_normalised_per_weigher_then_summed(make_host: HostFactory, make_spec: SpecFactory) -> None:
    # "ram" has far more free MB but fewer free vCPUs: with raw numbers RAM would swamp CPU.
    ram = make_host("ram", total_memory_mb=65536, used_vcpus=3)
    cpu = make_host("cpu", total_memory_mb=8192)
    mid = make_host("mid", total_memory_mb=36864, used_vcpus=1)
    ranked = weigh_hosts([RAMWeigher(1.0), CPUWeigher(2.0)], [ram, cpu, mid], make_spec())
    assert [h.host for _, h in ranked] == ["cpu", "mid", "ram"]
    assert ranked[0][0] == pytest.approx(2.0) and ranked[1][0] == pytest.approx(0.5 + 2 * 2 / 3)


def test_equal_hosts_keep_their_order_and_zero_multiplier_is_ignored(make_host: HostFactory,
                                                                     make_spec: SpecFactory) -> None:
    hosts = [make_host("a"), make_host("b", used_memory_mb=100), make_host("c")]
    assert [h.host for _, h in weigh_hosts([RAMWeigher(0.0)], hosts, make_spec())] == ["a", "b", "c"]
    assert [w for w, _ in weigh_hosts([CPUWeigher()], hosts, make_spec())] == [0.0, 0.0, 0.0]


def test_soft_affinity_prefers_the_members_host_over_free_capacity(make_host: HostFactory,
                                                                   make_spec: SpecFactory) -> None:
    members = make_host("members", used_memory_mb=6144, used_vcpus=3)
    empty = make_host("empty")
    spec = make_spec(server_group=ServerGroupSpec("soft-affinity", ("members",)))
    weighers = [RAMWeigher(), CPUWeigher(), ServerGroupSoftAffinityWeigher(), ServerGroupSoftAntiAffinityWeigher()]
    assert weigh_hosts(weighers, [empty, members], spec)[0][1] is members


def test_soft_anti_affinity_prefers_the_host_with_fewest_members(make_host: HostFactory,
                                                                 make_spec: SpecFactory) -> None:
    hosts = [make_host("two"), make_host("one"), make_host("none", used_memory_mb=6000)]
    spec = make_spec(server_group=ServerGroupSpec("soft-anti-affinity", ("two", "one", "two")))
    ranked = weigh_hosts([RAMWeigher(), ServerGroupSoftAntiAffinityWeigher()], hosts, spec)
    assert [h.host for _, h in ranked] == ["none", "one", "two"]
    assert ServerGroupSoftAntiAffinityWeigher().weigh(hosts[0], spec) == -2.0


def test_soft_weighers_stay_out_of_other_policies(make_host: HostFactory, make_spec: SpecFactory) -> None:
    spec = make_spec(server_group=ServerGroupSpec("anti-affinity", ("h",)))
    assert ServerGroupSoftAffinityWeigher().scorer(spec) is None
    assert ServerGroupSoftAntiAffinityWeigher().scorer(make_spec()) is None
    assert ServerGroupSoftAffinityWeigher().weigh(make_host("h"), spec) == 0.0
