"""HostState capacity arithmetic and claims; RequestSpec helpers."""

from __future__ import annotations

import pytest

from kumo.compute.scheduler import FlavorSpec, HostState, RequestSpec, ServerGroupSpec


def test_defaults_match_nova() -> None:
    host = HostState("c1")
    assert (host.cpu_allocation_ratio, host.ram_allocation_ratio, host.disk_allocation_ratio) == (16.0, 1.5, 1.0)
    assert host.reserved_host_memory_mb == 512
    assert (host.hypervisor_type, host.cpu_arch, host.availability_zone) == ("QEMU", "x86_64", "nova")
    assert host.nodename == "c1"


def test_free_capacity_applies_ratios_and_reservation() -> None:
    host = HostState("c1", total_vcpus=8, total_memory_mb=8192, total_disk_gb=100,
                     used_vcpus=10, used_memory_mb=1024, used_disk_gb=40, disk_allocation_ratio=2.0)
    assert host.free_ram_mb == 8192 * 1.5 - 512 - 1024
    assert host.free_vcpus == 8 * 16 - 10
    assert host.free_disk_gb == 100 * 2 - 40


def test_consume_and_release_are_inverse() -> None:
    host = HostState("c1", total_vcpus=8, total_memory_mb=8192, total_disk_gb=100)
    spec = RequestSpec(instance_uuid="i-1", flavor=FlavorSpec(2, 2048, 20, ephemeral_gb=5, swap=512))
    host.consume(spec)
    assert (host.used_vcpus, host.used_memory_mb, host.used_disk_gb) == (2, 2048, 25.5)
    assert host.num_instances == 1 and host.instance_uuids == {"i-1"}
    stamped = host.updated_at
    assert stamped is not None
    host.release(spec)
    assert (host.used_vcpus, host.used_memory_mb, host.used_disk_gb) == (0, 0, 0)
    assert host.num_instances == 0 and host.instance_uuids == set()
    assert host.updated_at is not None and host.updated_at >= stamped


def test_consume_without_uuid_counts_the_instance() -> None:
    host = HostState("c1", total_vcpus=8, total_memory_mb=8192)
    host.consume(RequestSpec(flavor=FlavorSpec(1, 512)))
    assert host.num_instances == 1 and host.instance_uuids == set()


def test_flavor_disk_counts_swap_in_mb() -> None:
    assert FlavorSpec(1, 512, root_gb=10, ephemeral_gb=2, swap=2048).disk_gb == 14


def test_hints_accept_one_uuid_or_a_list() -> None:
    spec = RequestSpec(flavor=FlavorSpec(1, 512), scheduler_hints={"same_host": "a", "different_host": ["b", "c"]})
    assert spec.hint_list("same_host") == ("a",)
    assert spec.hint_list("different_host") == ("b", "c")
    assert spec.hint_list("group") == ()


def test_server_group_rejects_unknown_policy_and_grows_members() -> None:
    with pytest.raises(ValueError):
        ServerGroupSpec("sticky")
    group = ServerGroupSpec("anti-affinity", ("a",), {"max_server_per_host": 2})
    grown = group.with_member_on("a")
    assert grown.member_hosts == ("a", "a") and grown.rules == {"max_server_per_host": 2}
    assert group.member_hosts == ("a",)


def test_request_spec_is_frozen() -> None:
    spec = RequestSpec(flavor=FlavorSpec(1, 512))
    with pytest.raises(AttributeError):
        spec.availability_zone = "az2"  # type: ignore[misc]
