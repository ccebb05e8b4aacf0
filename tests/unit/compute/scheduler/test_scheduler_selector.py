"""select_destinations: filter, weigh, choose, claim; multi-instance, groups, reschedules, NoValidHost."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest

from kumo.compute.scheduler import (
    HostSelector,
    HostState,
    NoValidHost,
    RequestSpec,
    SchedulerOptions,
    ServerGroupSpec,
    select_destinations,
)
from kumo.core.errors import KumoError

HostFactory = Callable[..., HostState]  # the make_host / make_spec fixtures of conftest.py
SpecFactory = Callable[..., RequestSpec]


def test_picks_the_host_with_most_free_ram_and_claims_it(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("busy", used_memory_mb=4096), make_host("idle"), make_host("half", used_memory_mb=2048)]
    [chosen] = select_destinations(make_spec(memory_mb=1024, instance_uuid="i-1"), hosts)
    assert chosen.host == "idle"
    assert chosen.used_memory_mb == 1024 and chosen.instance_uuids == {"i-1"} and chosen.num_instances == 1


def test_multi_instance_sees_its_own_claims(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("a", total_memory_mb=4096), make_host("b", total_memory_mb=2048)]
    chosen = select_destinations(make_spec(memory_mb=1024, vcpus=1), hosts, 6)
    assert Counter(h.host for h in chosen) == {"a": 4, "b": 2}
    assert hosts[0].free_ram_mb == 0 and hosts[1].free_ram_mb == 0


def test_anti_affinity_spreads_a_multi_instance_request(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host(f"h{i}") for i in range(4)]
    spec = make_spec(server_group=ServerGroupSpec("anti-affinity"), num_instances=3)
    chosen = select_destinations(spec, hosts, instance_uuids=["i-1", "i-2", "i-3"])
    assert len({h.host for h in chosen}) == 3
    assert [sorted(h.instance_uuids) for h in chosen] == [["i-1"], ["i-2"], ["i-3"]]


def test_anti_affinity_with_max_server_per_host(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("h1"), make_host("h2")]
    group = ServerGroupSpec("anti-affinity", rules={"max_server_per_host": 2})
    assert Counter(h.host for h in select_destinations(make_spec(server_group=group), hosts, 4)) == {"h1": 2, "h2": 2}


def test_too_many_for_anti_affinity_claims_nothing(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host(f"h{i}") for i in range(3)]
    with pytest.raises(NoValidHost) as caught:
        select_destinations(make_spec(server_group=ServerGroupSpec("anti-affinity")), hosts, 4)
    assert all(h.num_instances == 0 and h.used_memory_mb == 0 for h in hosts)
    assert str(caught.value) == ("No valid host was found. There are not enough hosts available for instance 4 of 4: "
                                 "3 hosts: ServerGroupAntiAffinityFilter removed 3 "
                                 "(anti-affinity group allows 1 per host)")


def test_affinity_puts_every_instance_on_one_host(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host(f"h{i}") for i in range(4)]
    chosen = select_destinations(make_spec(server_group=ServerGroupSpec("affinity")), hosts, 4)
    assert len({h.host for h in chosen}) == 1 and chosen[0].num_instances == 4


def test_affinity_follows_existing_members(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("idle"), make_host("members", used_memory_mb=4096)]
    chosen = select_destinations(make_spec(server_group=ServerGroupSpec("affinity", ("members",))), hosts, 2)
    assert [h.host for h in chosen] == ["members", "members"]


def test_affinity_fails_when_the_group_host_is_full(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("idle"), make_host("members", total_memory_mb=1024)]
    with pytest.raises(NoValidHost, match="RamFilter removed 1, ServerGroupAffinityFilter removed 1"):
        select_destinations(make_spec(server_group=ServerGroupSpec("affinity", ("members",))), hosts, 2)


def test_soft_anti_affinity_spreads_but_never_fails(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("h1"), make_host("h2")]
    chosen = select_destinations(make_spec(server_group=ServerGroupSpec("soft-anti-affinity")), hosts, 4)
    assert Counter(h.host for h in chosen) == {"h1": 2, "h2": 2}


def test_soft_affinity_gathers(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("h1"), make_host("h2", used_memory_mb=1024)]
    chosen = select_destinations(make_spec(server_group=ServerGroupSpec("soft-affinity")), hosts, 4)
    assert [h.host for h in chosen] == ["h1"] * 4


def test_no_valid_host_names_each_filter_and_its_count(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host(f"off{i}", enabled=False) for i in range(2)] + [make_host("dead", up=False)]
    hosts += [make_host(f"h{i}", total_memory_mb=2048) for i in range(997)]
    with pytest.raises(NoValidHost) as caught:
        select_destinations(make_spec(memory_mb=4096), hosts)
    assert caught.value.message == ("No valid host was found. 1000 hosts: ComputeFilter removed 3, "
                                    "RamFilter removed 997 (need 4096 MB RAM; best host has 2048 MB free)")
    assert caught.value.removed_by == [("ComputeFilter", 3), ("RamFilter", 997)]
    assert isinstance(caught.value, KumoError) and caught.value.status == 400


def test_no_valid_host_without_hosts(make_spec: SpecFactory) -> None:
    with pytest.raises(NoValidHost, match=r"^No valid host was found\. 0 hosts: no compute host is known$"):
        select_destinations(make_spec(), [])


def test_reschedule_excludes_hosts_already_tried(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("best"), make_host("second", used_memory_mb=1024), make_host("third", used_memory_mb=2048)]
    [chosen] = select_destinations(make_spec(ignore_hosts=("best",)), hosts)
    assert chosen.host == "second"
    with pytest.raises(NoValidHost, match=r"3 hosts: IgnoreHostsFilter removed 3$"):
        select_destinations(make_spec(ignore_hosts=("best", "second", "third")), hosts)


def test_forced_host_skips_placement_filters_but_not_resources(make_host: HostFactory,
                                                               make_spec: SpecFactory) -> None:
    hosts = [make_host("a"), make_host("b", availability_zone="az9", total_memory_mb=1024)]
    [chosen] = select_destinations(make_spec(memory_mb=512, availability_zone="nova", force_hosts=("b",)), hosts)
    assert chosen.host == "b"
    with pytest.raises(NoValidHost, match="force_hosts removed 1, RamFilter removed 1"):
        select_destinations(make_spec(memory_mb=2048, force_hosts=("b",)), hosts)
    with pytest.raises(NoValidHost, match="forced hosts zz are unknown"):
        select_destinations(make_spec(force_hosts=("zz",)), hosts)


def test_once_per_request_filters_run_for_the_first_instance_only(make_host: HostFactory,
                                                                  make_spec: SpecFactory) -> None:
    selector = HostSelector()
    calls: Counter[str] = Counter()
    for host_filter in selector.filters:
        original = host_filter.predicate

        def counting(spec: RequestSpec, _name: str = host_filter.name, _original=original):  # type: ignore[no-untyped-def]
            calls[_name] += 1
            return _original(spec)

        host_filter.predicate = counting  # type: ignore[method-assign]
    selector.select(make_spec(), [make_host("a"), make_host("b")], 3)
    assert calls["ComputeFilter"] == 1 and calls["AvailabilityZoneFilter"] == 1
    assert calls["RamFilter"] == 3 and calls["ServerGroupAntiAffinityFilter"] == 3


def test_host_subset_size_draws_among_the_best(make_host: HostFactory, make_spec: SpecFactory) -> None:
    selector = HostSelector(SchedulerOptions(host_subset_size=2), rng=random.Random(7))
    hosts = [make_host("best"), make_host("good", used_memory_mb=100), make_host("worst", used_memory_mb=4000)]
    picked = set()
    for _ in range(40):
        [host] = select_destinations(make_spec(memory_mb=1), hosts, selector=selector)
        host.release(make_spec(memory_mb=1))
        picked.add(host.host)
    assert picked == {"best", "good"}


def test_options_are_validated(make_host: HostFactory, make_spec: SpecFactory) -> None:
    with pytest.raises(ValueError, match="NoSuchFilter"):
        HostSelector(SchedulerOptions(enabled_filters=("ComputeFilter", "NoSuchFilter")))
    with pytest.raises(ValueError, match="2 instance UUIDs for 3 instances"):
        select_destinations(make_spec(), [make_host()], 3, instance_uuids=["a", "b"])
    with pytest.raises(ValueError):
        select_destinations(make_spec(), [make_host()], 0)


def test_only_enabled_filters_run(make_host: HostFactory, make_spec: SpecFactory) -> None:
    selector = HostSelector(SchedulerOptions(enabled_filters=("ComputeFilter",), weighers={"RAMWeigher": -1.0}))
    hosts = [make_host("small", total_memory_mb=512), make_host("big")]
    assert select_destinations(make_spec(memory_mb=4096), hosts, selector=selector)[0].host == "small"


def test_an_unexpected_error_also_releases_earlier_claims(make_host: HostFactory, make_spec: SpecFactory) -> None:
    selector = HostSelector()
    hosts = [make_host("a"), make_host("b")]
    calls = 0
    original = selector.best_hosts

    def fail_on_second(spec: RequestSpec, candidates: list[HostState], count: int) -> list[HostState]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("weigher bug")
        return original(spec, candidates, count)

    selector.best_hosts = fail_on_second  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        selector.select(make_spec(), hosts, 2)
    assert all(h.num_instances == 0 and h.used_memory_mb == 0 for h in hosts)
