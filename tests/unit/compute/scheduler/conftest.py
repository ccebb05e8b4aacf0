"""Builders for scheduler tests: hosts and requests with small, readable numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kumo.compute.scheduler import FlavorSpec, HostState, RequestSpec

HostFactory = Callable[..., HostState]
SpecFactory = Callable[..., RequestSpec]


def _host(name: str = "host1", **fields: Any) -> HostState:
    """A 4-vCPU, 8 GiB, 100 GB host without overcommit or reservation unless fields say otherwise."""
    values: dict[str, Any] = {"total_vcpus": 4, "total_memory_mb": 8192, "total_disk_gb": 100,
                              "cpu_allocation_ratio": 1.0, "ram_allocation_ratio": 1.0,
                              "reserved_host_memory_mb": 0}
    values.update(fields)
    return HostState(name, **values)


def _spec(vcpus: int = 1, memory_mb: int = 1024, root_gb: int = 10, *, ephemeral_gb: int = 0, swap: int = 0,
          extra_specs: dict[str, str] | None = None, **fields: Any) -> RequestSpec:
    flavor = FlavorSpec(vcpus, memory_mb, root_gb, ephemeral_gb, swap, extra_specs or {})
    return RequestSpec(flavor=flavor, **fields)


@pytest.fixture
def make_host() -> HostFactory:
    return _host


@pytest.fixture
def make_spec() -> SpecFactory:
    return _spec
