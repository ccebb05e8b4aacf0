"""Root-only fixtures of the dataplane suites (helpers in nettest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from nettest import Scratch


@pytest.fixture
def scratch() -> Iterator[Scratch]:
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, bridges)")
    made = Scratch()
    try:
        yield made
    finally:
        made.cleanup()
