"""How an instance row becomes the driver's InstanceSpec."""

from __future__ import annotations

import base64

from kumo.compute.manager import instance_spec
from kumo.compute.models import Instance
from kumo.compute.resources import flavor_usage


def _row(**overrides: object) -> Instance:
    fields: dict[str, object] = dict(
        uuid="u1", project_id="p", user_id="u", display_name="web", hostname="web-1", vm_state="building",
        flavor={"vcpus": 2, "memory_mb": 1024, "root_gb": 10, "ephemeral_gb": 5, "swap": 1536},
        image_ref="img", system_metadata={"image_kernel_id": "k1", "image_hw_disk_bus": "virtio"},
        user_data=base64.b64encode(b"#!/bin/sh\necho hi\n").decode(), metadata_={"role": "web"},
        key_data="ssh-ed25519 AAAA", config_drive=True)
    fields.update(overrides)
    return Instance(**fields)


def test_spec_from_row_uses_flavor_snapshot_and_image_properties_from_system_metadata() -> None:
    spec = instance_spec(_row())
    assert (spec.vcpus, spec.memory_mb, spec.root_gb, spec.ephemeral_gb, spec.swap_mb) == (2, 1024, 10, 5, 1536)
    assert spec.kernel_id == "k1" and spec.image_properties["hw_disk_bus"] == "virtio"
    assert spec.user_data == b"#!/bin/sh\necho hi\n"
    assert spec.metadata == {"role": "web"} and spec.config_drive and spec.hostname == "web-1"
    assert spec.disk_gb == 17  # swap rounds up to a whole GiB


def test_spec_for_rebuild_and_resize_takes_the_new_image_and_flavor() -> None:
    image = {"id": "img2", "properties": {"ramdisk_id": "r2"}}
    spec = instance_spec(_row(), flavor={"vcpus": 4, "memory_mb": 4096, "root_gb": 20}, image=image)
    assert (spec.vcpus, spec.memory_mb, spec.root_gb) == (4, 4096, 20)
    assert spec.image_id == "img2" and spec.ramdisk_id == "r2" and spec.kernel_id is None


def test_undecodable_user_data_is_dropped_not_fatal() -> None:
    assert instance_spec(_row(user_data="***not base64***")).user_data is None


def test_flavor_usage_counts_swap_in_whole_gib() -> None:
    assert flavor_usage({"vcpus": 1, "memory_mb": 512, "root_gb": 1, "swap": 1}) == (1, 512, 2)
    assert flavor_usage({}) == (0, 0, 0)
