"""Only hosts that can run the image's architecture, hypervisor and VM mode (Nova's ``ImagePropertiesFilter``).

The image asks with ``hw_architecture``, ``img_hv_type``, ``hw_vm_mode``
(or the legacy ``architecture``, ``hypervisor_type``, ``vm_mode``) and
optionally ``img_hv_requested_version`` (``">= 6.0"``, comma-separated
predicates). Values are canonicalised as Nova's ``Architecture`` /
``HVType`` / ``VMMode`` fields do (``amd64`` is ``x86_64``, ``hv`` is
``hvm``). A host supports ``(cpu_arch, hypervisor_type, "hvm")``; a QEMU host
also accepts ``kvm`` images, as a libvirt host advertises both domain types.
An image that asks for none of these runs anywhere.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "i386": "i686", "i486": "i686", "i586": "i686",
                 "x86_32": "i686", "arm64": "aarch64", "armv8": "aarch64", "ppc64el": "ppc64le"}
_VM_MODE_ALIASES = {"hv": "hvm", "baremetal": "hvm", "pv": "xen"}
_HV_ALIASES = {"xapi": "xen"}
_HOST_HV_TYPES = {"qemu": frozenset({"qemu", "kvm"})}
_HOST_VM_MODES = frozenset({"hvm"})
_VERSION_OPS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt}
Version = tuple[int, ...]


def _prop(props: Mapping[str, str], name: str, legacy: str) -> str:
    return str(props.get(name) or props.get(legacy) or "").strip().lower()


def canonical_arch(arch: str) -> str:
    arch = arch.lower()
    return _ARCH_ALIASES.get(arch, arch)


def _version(text: str) -> Version:
    parts = tuple(int(part) for part in text.strip().split("."))
    return (parts + (0, 0, 0))[:3]


def parse_version_requirement(text: str) -> list[tuple[Callable[[Version, Version], bool], Version]]:
    """``">= 6.0, < 9"`` -> [(ge, (6, 0, 0)), (lt, (9, 0, 0))]; ValueError if malformed."""
    predicates = []
    for part in text.split(","):
        part = part.strip()
        op = next((o for o in _VERSION_OPS if part.startswith(o)), None)
        if op is None:
            raise ValueError(f"bad img_hv_requested_version predicate {part!r}")
        predicates.append((_VERSION_OPS[op], _version(part[len(op):])))
    return predicates


def _never(host: HostState) -> bool:
    return False


def _host_version(version: int) -> Version:
    return (version // 1_000_000, version // 1_000 % 1_000, version % 1_000)


class ImagePropertiesFilter(BaseHostFilter):
    name = "ImagePropertiesFilter"
    run_filter_once_per_request = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        props = spec.image_properties
        arch = canonical_arch(_prop(props, "hw_architecture", "architecture"))
        hv_type = _prop(props, "img_hv_type", "hypervisor_type")
        hv_type = _HV_ALIASES.get(hv_type, hv_type)
        vm_mode = _prop(props, "hw_vm_mode", "vm_mode")
        vm_mode = _VM_MODE_ALIASES.get(vm_mode, vm_mode)
        wanted_version = props.get("img_hv_requested_version")
        try:
            versions = parse_version_requirement(wanted_version) if wanted_version else []
        except ValueError:
            return _never  # an unparsable requirement cannot be met; NoValidHost names it
        if not (arch or hv_type or vm_mode or versions):
            return None

        def supports(host: HostState) -> bool:
            if arch and canonical_arch(host.cpu_arch) != arch:
                return False
            if hv_type:
                host_hv = host.hypervisor_type.lower()
                if hv_type not in _HOST_HV_TYPES.get(host_hv, (host_hv,)):
                    return False
            if vm_mode and vm_mode not in _HOST_VM_MODES:
                return False
            if versions and host.hypervisor_version:
                have = _host_version(host.hypervisor_version)
                return all(compare(have, want) for compare, want in versions)
            return True

        return supports

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        keys = ("hw_architecture", "architecture", "img_hv_type", "hypervisor_type", "hw_vm_mode", "vm_mode",
                "img_hv_requested_version")
        wanted = ", ".join(f"{k}={spec.image_properties[k]!r}" for k in keys if spec.image_properties.get(k))
        return f"image requires {wanted}"
