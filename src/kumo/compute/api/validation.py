"""Nova's JSON-schema parameter types as pydantic types, with Nova's 400 messages.

Nova validates bodies with JSON schema (``nova/api/validation``): integers
may come as digit strings, booleans as ``"yes"``/``"on"``..., names must be
printable without leading or trailing whitespace. These annotated types
reproduce those rules; :func:`parse` turns the first failure into the
message Nova would give (``Invalid input for field/attribute ram. Value: 0.
0 is less than the minimum of 1``, ``'name' is a required property``,
``Additional properties are not allowed ('x' was unexpected)``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, TypeVar

import orjson
import pydantic
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from kumo.compute.api.common import MAX_BODY
from kumo.core import errors
from kumo.core.web import read_json

M = TypeVar("M", bound=pydantic.BaseModel)

MAX_INT = 0x7FFFFFFF
FLOAT_MAX = 3.40282e38
TRUE_STRINGS = ("True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes")
FALSE_STRINGS = ("False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no")
NAME_REASON = "printable characters. Can not start or end with whitespace."


def invalid(reason: str) -> PydanticCustomError:
    """A field error, rendered ``Invalid input for field/attribute <f>. Value: <v>. <reason>``."""
    return PydanticCustomError("nova_field", "{reason}", {"reason": reason})


def detail(message: str) -> PydanticCustomError:
    """An error whose message is shown as is (Nova's InvalidName and friends)."""
    return PydanticCustomError("nova_detail", "{message}", {"message": message})


def show_value(value: Any) -> str:
    """A value as Nova's validator quotes it in messages: strings in quotes, the rest as Python shows it."""
    return f"'{value}'" if isinstance(value, str) else repr(value)


def one_of(choices: list[str]) -> BeforeValidator:
    """JSON schema's ``enum``: Nova's "'x' is not one of [...]"."""

    def check(value: Any) -> str:
        if value not in choices:
            raise invalid(f"{value!r} is not one of {choices}")
        return str(value)

    return BeforeValidator(check)


# ----------------------------------------------------------------------------- types

def _integer(minimum: int) -> Any:
    """``flavor_param_positive`` / ``_non_negative``: an integer, or a string of digits."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise invalid(f"{show_value(value)} is not of type 'integer', 'string'")
        if isinstance(value, str):
            if not re.fullmatch(r"[0-9]+", value):
                raise invalid(f"'{value}' does not match '^[0-9]+$'")
            value = int(value)
        if value < minimum:
            raise invalid(f"{value} is less than the minimum of {minimum}")
        if value > MAX_INT:
            raise invalid(f"{value} is greater than the maximum of {MAX_INT}")
        return value

    return BeforeValidator(check)


def _boolean(value: Any) -> bool:
    """Nova's ``parameter_types.boolean``: JSON booleans or the strings oslo accepts."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in TRUE_STRINGS + FALSE_STRINGS:
        return value in TRUE_STRINGS
    raise invalid(f"{show_value(value)} is not one of [True, False, {', '.join(map(repr, TRUE_STRINGS + FALSE_STRINGS))}]")


def is_printable(char: str) -> bool:
    """Nova's ``_is_printable``: not a control/format character, and no line/paragraph separator."""
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _string(value: Any, max_length: int = 255, min_length: int = 1) -> str:
    if not isinstance(value, str):
        raise invalid(f"{show_value(value)} is not of type 'string'")
    if len(value) < min_length:
        raise invalid(f"'{value}' is too short")
    if len(value) > max_length:
        raise invalid(f"'{value}' is too long")
    return value


def _name(value: Any) -> str:
    """``parameter_types.name``: 1-255 printable characters, no whitespace at either end."""
    value = _string(value)
    edges_ok = unicodedata.category(value[0]) != "Zs" and unicodedata.category(value[-1]) != "Zs"
    if not (edges_ok and all(is_printable(c) for c in value)):
        raise detail(f"An invalid 'name' value was provided. The name must be: {NAME_REASON}")
    return value


def _description(value: Any) -> str | None:
    """Flavor descriptions (2.55): printable text up to 65535 characters, or null."""
    if value is None:
        return None
    value = _string(value, max_length=65535, min_length=0)
    if not all(is_printable(c) for c in value):
        raise invalid(f"'{value}' does not match the printable-characters pattern")
    return value


def _flavor_id(value: Any) -> str | None:
    """A flavor id: a string of ``[a-zA-Z0-9. _-]`` (no space at either end), a number, or null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid(f"{show_value(value)} is not of type 'string', 'number', 'null'")
    if isinstance(value, str):
        _string(value)
        if not re.fullmatch(r"(?! )[a-zA-Z0-9. _-]+(?<! )", value):
            raise invalid(f"'{value}' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'")
        return value
    return str(value)


def _rxtx_factor(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise invalid(f"{show_value(value)} is not of type 'number', 'string'")
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
            raise invalid(f"'{value}' does not match '^[0-9]+(\\.[0-9]+)?$'")
        value = float(value)
    if value <= 0:
        raise invalid(f"{value} is less than or equal to the minimum of 0")
    if value > FLOAT_MAX:
        raise invalid(f"{value} is greater than the maximum of {FLOAT_MAX}")
    return float(value)


_SPEC_KEY = re.compile(r"[a-zA-Z0-9-_:. ]{1,255}")


def _extra_specs(value: Any) -> dict[str, str]:
    """Nova's flavor ``metadata``: keys ``[a-zA-Z0-9-_:. ]{1,255}``, values strings (<= 255) or numbers."""
    if not isinstance(value, dict):
        raise invalid(f"{show_value(value)} is not of type 'object'")
    specs = {}
    for key, item in value.items():
        if not _SPEC_KEY.fullmatch(key):
            raise detail(f"Additional properties are not allowed ('{key}' was unexpected)")
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise invalid(f"{show_value(item)} is not of type 'string', 'number'")
        text = str(item)
        if len(text) > 255:
            raise invalid(f"'{text}' is too long")
        specs[key] = text
    return specs


PositiveInt = Annotated[int, _integer(1)]
NonNegativeInt = Annotated[int, _integer(0)]
NovaBool = Annotated[bool, BeforeValidator(_boolean)]
Name = Annotated[str, BeforeValidator(_name)]
Description = Annotated[str | None, BeforeValidator(_description)]
FlavorId = Annotated[str | None, BeforeValidator(_flavor_id)]
RxtxFactor = Annotated[float, BeforeValidator(_rxtx_factor)]
ExtraSpecs = Annotated[dict[str, str], BeforeValidator(_extra_specs)]
String255 = Annotated[str, BeforeValidator(_string)]


def _any_string(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(f"{show_value(value)} is not of type 'string'")
    return value


AnyString = Annotated[str, BeforeValidator(_any_string)]


# ----------------------------------------------------------------------------- parsing

def nova_message(exc: pydantic.ValidationError) -> str:
    """The first problem, worded as Nova's JSON-schema validator words it."""
    item = exc.errors(include_url=False)[0]
    loc = [str(p) for p in item["loc"]]
    field = loc[-1] if loc else ""
    value = item.get("input")
    kind = item["type"]
    if kind == "missing":
        return f"'{field}' is a required property"
    if kind == "extra_forbidden":
        return f"Additional properties are not allowed ('{field}' was unexpected)"
    if kind == "nova_detail":
        return str(item["ctx"]["message"])
    reason = item["ctx"]["reason"] if kind == "nova_field" else item["msg"]
    if kind in ("model_type", "dict_type"):
        reason = f"{orjson.dumps(value).decode()} is not of type 'object'"
        if not loc:
            return reason
    return f"Invalid input for field/attribute {field}. Value: {value}. {reason}"


def parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise errors.ValidationError(nova_message(exc)) from exc


async def parse_body(request: Request, model: type[M]) -> M:
    """Read (size-capped), decode and validate a JSON body; every failure is a 400 (413 when too big)."""
    return parse(model, await read_json(request, MAX_BODY))
