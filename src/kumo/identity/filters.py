"""Keystone's list filters: exact ``?name=x`` plus ``name__contains=x`` and friends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, func

from kumo.core import errors

OPERATORS = ("contains", "icontains", "startswith", "istartswith", "endswith", "iendswith", "equals", "iequals")


def parse_bool(value: str, name: str = "enabled") -> bool:
    """Keystone treats '0', 'false', 'no', 'off' (any case) as False, anything else as True."""
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def apply_filters(stmt: Select[Any], model: Any, query: Mapping[str, str], allowed: set[str]) -> Select[Any]:
    """Add WHERE clauses for the filters Keystone accepts on this collection."""
    for key, value in query.items():
        attr, _, op = key.partition("__")
        if attr not in allowed:
            continue
        column = getattr(model, attr)
        if attr == "enabled":
            stmt = stmt.where(column.is_(parse_bool(value)))
            continue
        if not op:
            stmt = stmt.where(column == value)
            continue
        if op not in OPERATORS:
            raise errors.ValidationError(f"Invalid filter operator: {op}")
        target = func.lower(column) if op.startswith("i") else column
        needle = value.lower() if op.startswith("i") else value
        needle = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        base = op.lstrip("i") if op.startswith("i") else op
        if base == "contains":
            stmt = stmt.where(target.like(f"%{needle}%", escape="\\"))
        elif base == "startswith":
            stmt = stmt.where(target.like(f"{needle}%", escape="\\"))
        elif base == "endswith":
            stmt = stmt.where(target.like(f"%{needle}", escape="\\"))
        else:
            stmt = stmt.where(target == (value.lower() if op.startswith("i") else value))
    return stmt
