"""Image stores: where image bytes live. The registry is a literal dict."""

from __future__ import annotations

from pathlib import Path

from kumo.image.store.base import ImageStore, StoreWriter
from kumo.image.store.fake import FakeStore
from kumo.image.store.filesystem import FilesystemStore

STORES: dict[str, type[ImageStore]] = {"file": FilesystemStore, "fake": FakeStore}


def create_store(name: str, root: Path) -> ImageStore:
    try:
        cls = STORES[name]
    except KeyError:
        raise ValueError(f"unknown image store {name!r}; choose from {', '.join(STORES)}") from None
    return cls(root)


__all__ = ["STORES", "ImageStore", "StoreWriter", "create_store"]
