"""HostStateCache: concurrent claims never overcommit; failed commits give claims back; refreshes keep claims."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from kumo.compute.scheduler import (
    HostState,
    HostStateCache,
    NoValidHost,
    RequestSpec,
    Selection,
)

HostFactory = Callable[..., HostState]  # the make_host / make_spec fixtures of conftest.py
SpecFactory = Callable[..., RequestSpec]


def within_capacity(hosts: Iterable[HostState]) -> bool:
    return all(h.free_ram_mb >= 0 and h.free_vcpus >= 0 and h.free_disk_gb >= 0 for h in hosts)


async def test_fifty_concurrent_claims_on_ten_small_hosts_never_overcommit(make_host: HostFactory,
                                                                          make_spec: SpecFactory) -> None:
    hosts = [make_host(f"h{i}", total_vcpus=4, total_memory_mb=4096, total_disk_gb=40) for i in range(10)]
    rng = random.Random(3)
    committed: list[Selection] = []

    async def commit(selections: Sequence[Selection]) -> None:
        assert within_capacity(hosts)
        await asyncio.sleep(rng.random() / 1000)  # the database write: other claims interleave here
        assert within_capacity(hosts)
        committed.extend(selections)

    cache = HostStateCache(hosts, commit=commit)

    async def boot(n: int) -> Selection | None:
        await asyncio.sleep(rng.random() / 1000)
        try:
            [selection] = await cache.claim(make_spec(vcpus=1, memory_mb=1024, root_gb=10, instance_uuid=f"i-{n}"))
        except NoValidHost:
            return None
        return selection

    results = await asyncio.gather(*(boot(n) for n in range(50)))
    placed = [r for r in results if r is not None]
    assert len(placed) == 40 and len(committed) == 40  # 10 hosts x 4 instances of 1 vCPU / 1 GiB / 10 GB
    assert within_capacity(hosts)
    assert all(h.num_instances == 4 and h.free_ram_mb == 0 for h in hosts)
    assert sum(len(h.instance_uuids) for h in hosts) == 40


async def test_a_failed_commit_gives_the_claim_back(make_host: HostFactory, make_spec: SpecFactory) -> None:
    async def refuse(selections: Sequence[Selection]) -> None:
        raise RuntimeError("conditional UPDATE matched no row")

    host = make_host()
    cache = HostStateCache([host], commit=refuse)
    with pytest.raises(RuntimeError):
        await cache.claim(make_spec(instance_uuid="i-1"), num=2, instance_uuids=["i-1", "i-2"])
    assert host.used_memory_mb == 0 and host.num_instances == 0 and host.instance_uuids == set()


async def test_claim_on_a_subset_and_release(make_host: HostFactory, make_spec: SpecFactory) -> None:
    cache = HostStateCache([make_host("a"), make_host("b", used_memory_mb=4096)])
    b = cache.get("b")
    assert b is not None
    selections = await cache.claim(make_spec(memory_mb=512), [b])
    assert [s.host.host for s in selections] == ["b"] and b.used_memory_mb == 4608
    await cache.release(selections)
    assert b.used_memory_mb == 4096


async def test_refresh_keeps_claims_newer_than_the_report(make_host: HostFactory, make_spec: SpecFactory) -> None:
    old_report = datetime.now(UTC) - timedelta(seconds=5)
    cache = HostStateCache([make_host("a", updated_at=old_report), make_host("gone")])
    [selection] = await cache.claim(make_spec(memory_mb=2048))
    assert selection.host.host == "a"

    async def load_stale() -> list[HostState]:
        await asyncio.sleep(0)
        return [make_host("a", updated_at=old_report, enabled=False)]

    await cache.refresh(load_stale)
    a = cache.get("a")
    assert a is selection.host and a.used_memory_mb == 2048 and a.enabled is False  # claim kept, health taken
    assert cache.get("gone") is None

    fresh = datetime.now(UTC) + timedelta(seconds=1)
    cache.update([make_host("a", updated_at=fresh, used_memory_mb=3000)])
    assert a.used_memory_mb == 3000 and a.enabled is True and cache.get("a") is a


async def test_a_claim_waits_for_a_refresh_in_progress(make_host: HostFactory, make_spec: SpecFactory) -> None:
    cache = HostStateCache()
    loaded = asyncio.Event()

    async def slow_load() -> list[HostState]:
        await asyncio.sleep(0.01)
        loaded.set()
        return [make_host("a")]

    refresh = asyncio.create_task(cache.refresh(slow_load))
    await asyncio.sleep(0)
    selections = await cache.claim(make_spec())  # queued behind the refresh: sees its hosts
    assert loaded.is_set() and selections[0].host.host == "a"
    await refresh
