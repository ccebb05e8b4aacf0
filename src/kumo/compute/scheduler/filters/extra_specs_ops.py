"""Nova's extra-spec operators (``scheduler/filters/extra_specs_ops.py``), compiled once per request.

A requirement is ``"<op> operand"``; without a known operator it is a plain
string comparison. Numeric operators compare as floats, and ``=`` means *at
least* (``"= 4"`` matches ``"8"``), as in Nova. ``<in>`` is a substring test,
``<all-in>`` needs every operand, ``<or>`` is ``"<or> a <or> b"``, and the
``s``-prefixed operators compare strings. A host value that does not parse
as a number fails a numeric requirement instead of raising.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

Matcher = Callable[[str | None], bool]


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def check(value: str, operand: str) -> bool:
        try:
            return compare(float(value), float(operand))
        except ValueError:
            return False

    return check


_BINARY: dict[str, Callable[[str, str], bool]] = {
    "=": _numeric(operator.ge),
    "==": _numeric(operator.eq),
    "!=": _numeric(operator.ne),
    ">=": _numeric(operator.ge),
    "<=": _numeric(operator.le),
    "<in>": lambda value, operand: operand in value,
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
}


def compile_requirement(requirement: str) -> Matcher:
    """Parse ``requirement`` once; the result tells whether a host's value satisfies it."""
    words = requirement.split()
    op = words[0] if words else ""
    operands = words[1:]
    if op == "<or>":
        choices = frozenset(operands[0::2])
        return lambda value: value is not None and value in choices
    if op == "<all-in>":
        return lambda value: value is not None and bool(operands) and all(o in value for o in operands)
    method = _BINARY.get(op)
    if method is None:
        return lambda value: value == requirement
    if not operands:
        return lambda value: False
    operand = operands[0]
    return lambda value: value is not None and method(value, operand)


def match(value: str | None, requirement: str) -> bool:
    """Nova's ``extra_specs_ops.match``: one-off form of ``compile_requirement``."""
    return compile_requirement(requirement)(value)
