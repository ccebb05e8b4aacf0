"""Shared by the integration suites: the tiny image, built once per session from Debian packages.

The .deb cache persists across runs (/var/cache/kumo-test/debs, or $KUMO_TEST_DEB_CACHE), so a
reused machine builds without downloading; a fresh one downloads ~75 MB once.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemutest import deb_cache, need

from kumo.image.tiny import TinyImage, build_tiny


@pytest.fixture(scope="session")
def tiny() -> Iterator[TinyImage]:
    need("apt-get", "dpkg-deb")
    with tempfile.TemporaryDirectory(prefix="kumo-tiny-test-") as out:
        started = time.monotonic()
        image = build_tiny(Path(out), deb_cache(), progress=print)
        print(f"tiny image built in {time.monotonic() - started:.1f}s")
        yield image
