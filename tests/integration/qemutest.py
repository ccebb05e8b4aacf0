"""Helpers of the integration suites (no tests here): tool checks, the .deb cache, waiting on guests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def need(*tools: str) -> None:
    """Skip without the tools, except in CI, where their absence is an install bug."""
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        msg = f"missing {', '.join(missing)} (scripts/install-system-deps.sh installs them)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def deb_cache() -> Path:
    wanted = os.environ.get("KUMO_TEST_DEB_CACHE", "/var/cache/kumo-test/debs")
    for candidate in (Path(wanted), Path.home() / ".cache" / "kumo-test" / "debs"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    pytest.skip("no writable directory for the .deb cache")
