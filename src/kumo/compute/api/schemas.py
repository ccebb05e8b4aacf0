"""Request bodies of the flavor and key pair APIs (Nova's ``schemas/flavors.py``, ``keypairs.py``...).

Unknown fields are refused (``additionalProperties: False`` in Nova).
Fields that only exist from some microversion are checked by the handlers
with :func:`reject_newer_fields`, so one model serves every version.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from kumo.compute.api.validation import (
    AnyString,
    Description,
    ExtraSpecs,
    FlavorId,
    Name,
    NonNegativeInt,
    NovaBool,
    PositiveInt,
    RxtxFactor,
    String255,
    invalid,
)
from kumo.core import errors


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)


# ----------------------------------------------------------------------------- flavors

class FlavorCreate(Strict):
    name: Name
    ram: PositiveInt
    vcpus: PositiveInt
    disk: NonNegativeInt
    id: FlavorId = None
    ephemeral: NonNegativeInt = Field(0, alias="OS-FLV-EXT-DATA:ephemeral")
    swap: NonNegativeInt = 0
    rxtx_factor: RxtxFactor = 1.0
    is_public: NovaBool = Field(True, alias="os-flavor-access:is_public")
    description: Description = None  # 2.55+


class FlavorCreateBody(Strict):
    flavor: FlavorCreate


class FlavorUpdate(Strict):
    description: Description


class FlavorUpdateBody(Strict):
    flavor: FlavorUpdate


class ExtraSpecsBody(Strict):
    extra_specs: ExtraSpecs


class TenantAccess(Strict):
    tenant: String255


class AddTenantAccessBody(Strict):
    add: TenantAccess = Field(alias="addTenantAccess")


class RemoveTenantAccessBody(Strict):
    remove: TenantAccess = Field(alias="removeTenantAccess")


# ----------------------------------------------------------------------------- key pairs

def _public_key(value: Any) -> str:
    if not isinstance(value, str):  # an explicit null is refused: the schema says "string"
        raise invalid(f"{value!r} is not of type 'string'")
    return value


class KeypairCreate(Strict):
    name: Name
    public_key: Annotated[str | None, BeforeValidator(_public_key)] = None
    type: Literal["ssh", "x509"] = "ssh"  # 2.2+
    user_id: AnyString | None = None  # 2.10+


class KeypairCreateBody(Strict):
    keypair: KeypairCreate


def reject_newer_fields(model: BaseModel, fields: dict[str, bool]) -> None:
    """400 for a field sent below the microversion that introduced it (``{name: supported}``)."""
    for field, supported in fields.items():
        info = type(model).model_fields[field]
        if field in model.model_fields_set and not supported:
            raise errors.ValidationError(
                f"Additional properties are not allowed ('{info.alias or field}' was unexpected)")
