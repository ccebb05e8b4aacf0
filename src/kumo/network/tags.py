"""Neutron's ``standard-attr-tag``: tags on networks, subnets, ports and security groups.

The resource must be one the caller may change (its visibility is checked
by the resource's own service first). At most 50 tags of at most 255
characters each; tag filters (``tags``, ``tags-any``, ``not-tags``,
``not-tags-any``, comma-separated or repeated) are applied to list views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select

from kumo.core.db import Database
from kumo.network.errors import BadResourceRequest, InvalidInput, NotFound
from kumo.network.models import Tag

MAX_TAGS = 50
MAX_TAG_LENGTH = 255
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def check_tags(tags: Iterable[Any], resource: str) -> list[str]:
    found: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
            raise InvalidInput(f"'{tag}' is not a valid tag")
        if tag not in found:
            found.append(tag)
    if len(found) > MAX_TAGS:
        raise BadResourceRequest(resource, f"The number of tags exceed the per-resource limit of {MAX_TAGS}")
    return found


class TagService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_all(self, resource_type: str, resource_id: str) -> list[str]:
        async with self.db.session() as s:
            return sorted(await s.scalars(select(Tag.tag).where(Tag.resource_type == resource_type,
                                                                 Tag.resource_id == resource_id)))

    async def replace(self, resource_type: str, resource_id: str, tags: list[str]) -> list[str]:
        async with self.db.session() as s:
            await s.execute(delete(Tag).where(Tag.resource_type == resource_type, Tag.resource_id == resource_id))
            for tag in tags:
                s.add(Tag(resource_type=resource_type, resource_id=resource_id, tag=tag))
        return sorted(tags)

    async def add(self, resource_type: str, resource_id: str, tags: list[str], resource: str) -> list[str]:
        current = await self.get_all(resource_type, resource_id)
        merged = check_tags([*current, *tags], resource)
        return await self.replace(resource_type, resource_id, merged)

    async def has(self, resource_type: str, resource_id: str, tag: str) -> bool:
        return tag in await self.get_all(resource_type, resource_id)

    async def remove(self, resource_type: str, resource_id: str, tag: str) -> None:
        async with self.db.session() as s:
            result = await s.execute(delete(Tag).where(Tag.resource_type == resource_type,
                                                       Tag.resource_id == resource_id, Tag.tag == tag))
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound("Tag", tag)


def tag_filter(query: Mapping[str, list[str]]) -> dict[str, set[str]]:
    """The tag filters of a list query, each a set of tags (comma-separated values split)."""
    found: dict[str, set[str]] = {}
    for key in TAG_FILTERS:
        values = query.get(key) or []
        tags = {t for value in values for t in str(value).split(",") if t}
        if tags:
            found[key] = tags
    return found


def matches(tags: Iterable[str], wanted: Mapping[str, set[str]]) -> bool:
    have = set(tags)
    if "tags" in wanted and not wanted["tags"] <= have:
        return False
    if "tags-any" in wanted and not wanted["tags-any"] & have:
        return False
    if "not-tags" in wanted and wanted["not-tags"] <= have:
        return False
    return not ("not-tags-any" in wanted and wanted["not-tags-any"] & have)
