"""Nova's extra-spec operators, case by case (the table of Nova's test_extra_specs_ops)."""

from __future__ import annotations

import pytest

from kumo.compute.scheduler.filters.extra_specs_ops import match


@pytest.mark.parametrize(("value", "requirement", "expected"), [
    ("1", "1", True), ("1", "2", False), ("abc", "abc", True),   # plain string equality
    ("123", "= 123", True), ("124", "= 123", True), ("12", "= 123", False),  # "=" is "at least"
    ("12311321", "<in> 11", True), ("12311321", "<in> 12311321", True), ("12310321", "<in> 11", False),
    ("[1, 2, 3]", "<all-in> 1 3", True), ("[1, 2, 3]", "<all-in> 1 4", False), ("x", "<all-in>", False),
    ("12", "<or> 11 <or> 12", True), ("13", "<or> 11 <or> 12", False), ("12", "<or> 11 <or> 12 <or>", True),
    ("2", "== 2.0", True), ("2", "!= 2", False), ("3", ">= 2", True), ("1", ">= 2", False), ("2", "<= 2", True),
    ("abc", "s== abc", True), ("abc", "s!= abc", False), ("abc", "s< abd", True), ("abc", "s>= abc", True),
    ("abd", "s> abc", True), ("abc", "s<= abb", False),
    ("fast", ">= 2", False),  # not a number: fails instead of raising
    (None, "= 1", False), (None, "<or> a <or> b", False), (None, "s== a", False),
    ("1", "=", False),  # an operator without an operand
])
def test_match(value: str | None, requirement: str, expected: bool) -> None:
    assert match(value, requirement) is expected
