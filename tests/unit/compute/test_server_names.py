"""Nova's small helpers behind server create: hostnames, passwords, reservations, image fit and metadata."""

from __future__ import annotations

import pytest

from kumo.compute.images import check_flavor_image, image_request, image_system_metadata
from kumo.compute.servers import generate_password, reservation_id, sanitize_hostname
from kumo.core import errors

IMAGE = {"id": "i1", "name": "cirros", "status": "active", "disk_format": "qcow2", "container_format": "bare",
         "min_disk": 0, "min_ram": 0, "size": 1 << 20, "visibility": "private", "os_hidden": False,
         "hw_disk_bus": "virtio", "kernel_id": "k1"}


@pytest.mark.parametrize(("name", "hostname"), [
    ("web 1", "web-1"), ("My_Server.example", "my-server-example"), ("..a..", "a"), ("ünïcode", "ünïcode"),
    ("漢字", ""), ("x" * 70, "x" * 63), ("a!b@c", "abc")])
def test_sanitize_hostname(name: str, hostname: str) -> None:
    assert sanitize_hostname(name) == hostname


def test_password_and_reservation_shapes() -> None:
    password = generate_password()
    assert len(password) == 12 and not set(password) & set("01lIO")
    resv = reservation_id()
    assert resv.startswith("r-") and len(resv) == 10


def test_image_request_and_system_metadata() -> None:
    assert image_request(IMAGE) == {"id": "i1", "name": "cirros", "disk_format": "qcow2",
                                    "container_format": "bare", "min_disk": 0, "min_ram": 0, "size": 1 << 20,
                                    "properties": {"hw_disk_bus": "virtio", "kernel_id": "k1"}}
    meta = image_system_metadata(IMAGE, root_gb=2)
    assert meta["image_hw_disk_bus"] == "virtio" and meta["image_min_disk"] == 2
    assert meta["kernel_id"] == "k1" and meta["ramdisk_id"] == "" and meta["image_base_image_ref"] == "i1"
    assert image_system_metadata({**IMAGE, "kernel_id": "nokernel", "ramdisk_id": "r"}, 1)["ramdisk_id"] == ""


def test_flavor_must_fit_image() -> None:
    check_flavor_image(512, 1, IMAGE, allow_zero_disk=False)
    with pytest.raises(errors.BadRequest, match="memory is too small"):
        check_flavor_image(512, 1, {**IMAGE, "min_ram": 1024}, allow_zero_disk=False)
    with pytest.raises(errors.BadRequest, match="image is 2147483648 bytes"):
        check_flavor_image(512, 1, {**IMAGE, "size": 2 << 30}, allow_zero_disk=False)
    with pytest.raises(errors.Forbidden, match="zero disk"):
        check_flavor_image(512, 0, IMAGE, allow_zero_disk=False)
    check_flavor_image(512, 0, IMAGE, allow_zero_disk=True)
