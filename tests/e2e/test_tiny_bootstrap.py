"""`kumo up` builds and registers the `tiny` test image at first start, once."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from e2e_support import KumoProcess

pytestmark = [pytest.mark.e2e, pytest.mark.qemu]

# The .deb cache outlives test runs (the tiny-image integration test shares it).
DEB_CACHE = Path(os.environ.get("KUMO_TEST_DEB_CACHE", "/var/cache/kumo-test/debs"))


def test_kumo_up_registers_tiny(tmp_path: Path) -> None:
    if not shutil.which("apt-get"):
        pytest.skip("needs apt-get to fetch Debian packages")
    kumo = KumoProcess(state_dir=tmp_path / "state", extra_env={
        "KUMO_IMAGE__BOOTSTRAP_TINY": "true", "KUMO_IMAGE__TINY_CACHE_DIR": str(DEB_CACHE)})
    kumo.start(timeout=600)
    try:
        images = {i["Name"]: i for i in kumo.osc("image", "list", "--long")}
        assert {"tiny", "tiny-kernel", "tiny-ramdisk"} <= set(images)
        tiny = kumo.osc("image", "show", "tiny")
        assert tiny["status"] == "active" and tiny["visibility"] == "public"
        props = tiny["properties"] if isinstance(tiny["properties"], dict) else json.loads(tiny["properties"])
        assert props["kernel_id"] == images["tiny-kernel"]["ID"]
        assert props["ramdisk_id"] == images["tiny-ramdisk"]["ID"]
    finally:
        kumo.stop()
    # a restart registers nothing twice
    kumo.start(timeout=120)
    try:
        names = [i["Name"] for i in kumo.osc("image", "list")]
        assert names.count("tiny") == 1
    finally:
        kumo.stop()
