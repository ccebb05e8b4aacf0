"""Each host filter on its own: passes, fails, exact capacity, ratios, and when it stays out of the way."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kumo.compute.scheduler import HostState, RequestSpec, ServerGroupSpec
from kumo.compute.scheduler.filters import (
    DEFAULT_FILTERS,
    FILTERS,
    AvailabilityZoneFilter,
    ComputeCapabilitiesFilter,
    ComputeFilter,
    CoreFilter,
    DifferentHostFilter,
    DiskFilter,
    IgnoreHostsFilter,
    ImagePropertiesFilter,
    RamFilter,
    SameHostFilter,
    ServerGroupAffinityFilter,
    ServerGroupAntiAffinityFilter,
)

HostFactory = Callable[..., HostState]  # the make_host / make_spec fixtures of conftest.py
SpecFactory = Callable[..., RequestSpec]


def test_registry_names_match_classes_and_defaults_are_registered() -> None:
    assert all(cls.name == name for name, cls in FILTERS.items())
    assert set(DEFAULT_FILTERS) == set(FILTERS) and len(DEFAULT_FILTERS) == len(FILTERS)
    assert DEFAULT_FILTERS.index("ComputeFilter") < DEFAULT_FILTERS.index("RamFilter")


def test_filter_all_agrees_with_host_passes(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host(f"h{i}", used_memory_mb=1024 * i) for i in range(9)]
    spec = make_spec(memory_mb=4096)
    ram = RamFilter()
    assert ram.filter_all(hosts, spec) == [h for h in hosts if ram.host_passes(h, spec)]
    assert [h.host for h in ram.filter_all(hosts, spec)] == ["h0", "h1", "h2", "h3", "h4"]


# --------------------------------------------------------------------------- ComputeFilter
@pytest.mark.parametrize(("enabled", "up", "passes"), [(True, True, True), (False, True, False),
                                                       (True, False, False), (False, False, False)])
def test_compute_filter(make_host: HostFactory, make_spec: SpecFactory, enabled: bool, up: bool,
                        passes: bool) -> None:
    assert ComputeFilter().host_passes(make_host(enabled=enabled, up=up), make_spec()) is passes


# --------------------------------------------------------------------------- resources
def test_ram_filter_exact_capacity_passes_one_mb_more_fails(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host(total_memory_mb=4096, used_memory_mb=1024)
    assert RamFilter().host_passes(host, make_spec(memory_mb=3072))
    assert not RamFilter().host_passes(host, make_spec(memory_mb=3073))


def test_ram_filter_applies_ratio_and_reservation(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host(total_memory_mb=4096, ram_allocation_ratio=1.5, reserved_host_memory_mb=512)
    assert RamFilter().host_passes(host, make_spec(memory_mb=6144 - 512))
    assert not RamFilter().host_passes(host, make_spec(memory_mb=6144 - 511))


def test_ram_filter_fails_an_overcommitted_host(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host(total_memory_mb=4096, used_memory_mb=8192)  # ratio lowered after the fact
    assert not RamFilter().host_passes(host, make_spec(memory_mb=0))


def test_core_filter_ratio_and_exact_capacity(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host(total_vcpus=4, cpu_allocation_ratio=4.0, used_vcpus=12)
    assert CoreFilter().host_passes(host, make_spec(vcpus=4))
    host.used_vcpus = 13
    assert not CoreFilter().host_passes(host, make_spec(vcpus=4))


def test_core_filter_refuses_overcommit_against_itself(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host(total_vcpus=4, cpu_allocation_ratio=16.0)
    assert host.free_vcpus == 64
    assert not CoreFilter().host_passes(host, make_spec(vcpus=5))


def test_disk_filter_counts_ephemeral_and_swap(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host(total_disk_gb=20)
    assert DiskFilter().host_passes(host, make_spec(root_gb=10, ephemeral_gb=9, swap=1024))
    assert not DiskFilter().host_passes(host, make_spec(root_gb=10, ephemeral_gb=9, swap=1025))


def test_disk_filter_ratio(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host(total_disk_gb=100, used_disk_gb=150, disk_allocation_ratio=2.0)
    assert DiskFilter().host_passes(host, make_spec(root_gb=50))
    assert not DiskFilter().host_passes(host, make_spec(root_gb=51))


def test_resource_filters_explain_the_best_host(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("a", used_memory_mb=8192 - 2048), make_host("b", used_memory_mb=8192 - 1024)]
    spec = make_spec(vcpus=8, memory_mb=4096, root_gb=500)
    assert RamFilter().explain(hosts, spec) == "need 4096 MB RAM; best host has 2048 MB free"
    assert CoreFilter().explain(hosts, spec) == "need 8 vCPUs; best host has 4 free"
    assert DiskFilter().explain(hosts, spec) == "need 500 GB disk; best host has 100 GB free"


# --------------------------------------------------------------------------- zone
def test_availability_zone_filter(make_host: HostFactory, make_spec: SpecFactory) -> None:
    f = AvailabilityZoneFilter()
    assert f.predicate(make_spec()) is None
    assert f.host_passes(make_host(availability_zone="az2"), make_spec())
    assert f.host_passes(make_host(availability_zone="az2"), make_spec(availability_zone="az2"))
    assert not f.host_passes(make_host(), make_spec(availability_zone="az2"))
    assert f.host_passes(make_host(), make_spec(availability_zone="nova"))


# --------------------------------------------------------------------------- image properties
@pytest.mark.parametrize(("props", "passes"), [
    ({"hw_architecture": "x86_64"}, True),
    ({"hw_architecture": "amd64"}, True),
    ({"architecture": "X86_64"}, True),
    ({"hw_architecture": "aarch64"}, False),
    ({"img_hv_type": "qemu"}, True),
    ({"img_hv_type": "kvm"}, True),
    ({"hypervisor_type": "xen"}, False),
    ({"hw_vm_mode": "hvm"}, True),
    ({"vm_mode": "hv"}, True),
    ({"hw_vm_mode": "xen"}, False),
    ({"hw_architecture": "x86_64", "img_hv_type": "qemu", "hw_vm_mode": "hvm"}, True),
    ({"hw_architecture": "x86_64", "img_hv_type": "vmware"}, False),
    ({"img_hv_requested_version": ">= 6.0"}, True),
    ({"img_hv_requested_version": ">=8.2, <9"}, True),
    ({"img_hv_requested_version": "==8.2.0"}, True),
    ({"img_hv_requested_version": ">= 9"}, False),
    ({"img_hv_requested_version": "newest"}, False),
])
def test_image_properties_filter(make_host: HostFactory, make_spec: SpecFactory, props: dict[str, str],
                                 passes: bool) -> None:
    host = make_host(hypervisor_version=8_002_000)
    assert ImagePropertiesFilter().host_passes(host, make_spec(image_properties=props)) is passes


def test_image_properties_filter_ignores_unrelated_props_and_unknown_versions(
        make_host: HostFactory, make_spec: SpecFactory) -> None:
    f = ImagePropertiesFilter()
    assert f.predicate(make_spec(image_properties={"os_distro": "debian", "hw_disk_bus": "virtio"})) is None
    spec = make_spec(image_properties={"img_hv_requested_version": ">= 9"})
    assert f.host_passes(make_host(hypervisor_version=0), spec)  # a host that reports no version is not judged
    assert not f.host_passes(make_host(cpu_arch="aarch64"), make_spec(image_properties={"hw_architecture": "x86_64"}))


# --------------------------------------------------------------------------- capabilities
@pytest.mark.parametrize(("extra_specs", "passes"), [
    ({"capabilities:cpu_arch": "x86_64"}, True),
    ({"capabilities:cpu_arch": "aarch64"}, False),
    ({"capabilities:hypervisor_type": "s== QEMU"}, True),
    ({"capabilities:hypervisor_type": "<or> Xen <or> QEMU"}, True),
    ({"capabilities:total_memory_mb": ">= 8192"}, True),
    ({"capabilities:total_memory_mb": ">= 8193"}, False),
    ({"capabilities:total_vcpus": "= 2"}, True),  # "=" means at least
    ({"capabilities:ssd": "true"}, True),
    ({"capabilities:gpu": "<in> nvidia"}, True),
    ({"capabilities:gpu": "<in> amd"}, False),
    ({"capabilities:sgx": "true"}, False),  # scoped and missing on the host: fails
    ({"ssd": "true"}, True),
    ({"ssd": "false"}, False),
    ({"sgx": "true"}, True),  # unscoped and missing: ignored, as in Nova
    ({"cpu_arch": "aarch64"}, False),
    ({"hw:cpu_policy": "dedicated", "quota:cpu_shares": "1024", "trait:HW_CPU_X86_AVX": "required"}, True),
])
def test_compute_capabilities_filter(make_host: HostFactory, make_spec: SpecFactory, extra_specs: dict[str, str],
                                     passes: bool) -> None:
    host = make_host(capabilities={"ssd": "true", "gpu": "nvidia-a100"})
    assert ComputeCapabilitiesFilter().host_passes(host, make_spec(extra_specs=extra_specs)) is passes


def test_compute_capabilities_filter_skips_requests_without_capability_specs(make_spec: SpecFactory) -> None:
    assert ComputeCapabilitiesFilter().predicate(make_spec()) is None
    assert ComputeCapabilitiesFilter().predicate(make_spec(extra_specs={"hw:mem_page_size": "large"})) is None


# --------------------------------------------------------------------------- hints and retries
def test_same_and_different_host_filters(make_host: HostFactory, make_spec: SpecFactory) -> None:
    with_a = make_host("h1", instance_uuids={"a"})
    empty = make_host("h2")
    same = make_spec(scheduler_hints={"same_host": ["a", "z"]})
    different = make_spec(scheduler_hints={"different_host": "a"})
    assert [h.host for h in SameHostFilter().filter_all([with_a, empty], same)] == ["h1"]
    assert [h.host for h in DifferentHostFilter().filter_all([with_a, empty], different)] == ["h2"]
    assert SameHostFilter().predicate(make_spec()) is None
    assert DifferentHostFilter().predicate(make_spec()) is None


def test_ignore_hosts_filter_drops_hosts_already_tried(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("h1"), make_host("h2"), make_host("h3")]
    passed = IgnoreHostsFilter().filter_all(hosts, make_spec(ignore_hosts=("h1", "h3")))
    assert [h.host for h in passed] == ["h2"]
    assert IgnoreHostsFilter().predicate(make_spec()) is None


# --------------------------------------------------------------------------- server groups
def test_affinity_filter(make_host: HostFactory, make_spec: SpecFactory) -> None:
    f = ServerGroupAffinityFilter()
    assert f.predicate(make_spec(server_group=ServerGroupSpec("affinity"))) is None  # first member: anywhere
    spec = make_spec(server_group=ServerGroupSpec("affinity", ("h2",)))
    assert [h.host for h in f.filter_all([make_host("h1"), make_host("h2")], spec)] == ["h2"]
    assert f.predicate(make_spec(server_group=ServerGroupSpec("soft-affinity", ("h2",)))) is None


def test_anti_affinity_filter_default_one_per_host(make_host: HostFactory, make_spec: SpecFactory) -> None:
    f = ServerGroupAntiAffinityFilter()
    spec = make_spec(server_group=ServerGroupSpec("anti-affinity", ("h1", "h3")))
    hosts = [make_host("h1"), make_host("h2"), make_host("h3")]
    assert [h.host for h in f.filter_all(hosts, spec)] == ["h2"]
    assert f.predicate(make_spec(server_group=ServerGroupSpec("soft-anti-affinity", ("h1",)))) is None


def test_anti_affinity_filter_honours_max_server_per_host(make_host: HostFactory, make_spec: SpecFactory) -> None:
    group = ServerGroupSpec("anti-affinity", ("h1", "h1", "h2"), {"max_server_per_host": 2})
    hosts = [make_host("h1"), make_host("h2")]
    assert [h.host for h in ServerGroupAntiAffinityFilter().filter_all(hosts, make_spec(server_group=group))] == ["h2"]


def test_anti_affinity_filter_lets_an_instance_stay_on_its_own_host(make_host: HostFactory,
                                                                    make_spec: SpecFactory) -> None:
    spec = make_spec(instance_uuid="me", server_group=ServerGroupSpec("anti-affinity", ("h1",)))
    assert ServerGroupAntiAffinityFilter().host_passes(make_host("h1", instance_uuids={"me"}), spec)
    assert not ServerGroupAntiAffinityFilter().host_passes(make_host("h1", instance_uuids={"other"}), spec)
