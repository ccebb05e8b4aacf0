"""The image store contract (Glance's glance_store drivers, in small).

A store keeps the bytes of images; the image service decides everything
else (states, checksums, inspection, quotas). Every backend passes the same
contract tests (tests/unit/image/test_stores.py):

* ``open_writer(key)`` returns a writer; bytes written are invisible until
  ``commit()`` returns the location. ``abort()`` (or a crash before commit)
  leaves nothing behind under the final name. Memory use is constant in the
  size of the image.
* ``read(location, start, length)`` streams the bytes, in order, in chunks.
* ``delete(location)`` succeeds when the data is already gone.
* Locations are opaque strings owned by the store (``file:///...``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path

from kumo.core import errors

CHUNK = 1024 * 1024


class StoreWriter(ABC):
    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Append bytes."""

    @abstractmethod
    async def commit(self) -> str:
        """Make the data durable under its final name; return its location."""

    @abstractmethod
    async def abort(self) -> None:
        """Throw away everything written; safe to call more than once."""


class ImageStore(ABC):
    name: str = ""
    description: str = ""

    def __init__(self, root: Path) -> None:
        self.root = root

    @abstractmethod
    async def open_writer(self, key: str) -> StoreWriter:
        """A writer for new data stored under ``key`` (an image id, or ``staging-<id>``)."""

    @abstractmethod
    def read(self, location: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (all, when None) from ``start``."""

    @abstractmethod
    async def delete(self, location: str) -> None:
        """Remove the data; no error when it is already gone."""

    @abstractmethod
    async def size(self, location: str) -> int:
        """Bytes stored at ``location``; NotFound when missing."""


class DataMissing(errors.NotFound):
    """The image record says there is data but the store has none."""
