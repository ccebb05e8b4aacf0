"""Request bodies of the identity API (pydantic), strict where Keystone's schemas are.

Keystone accepts extra attributes on most resources (stored and returned as
they were sent), so those models allow extras; the types of the attributes
Keystone knows are checked strictly (``"enabled": "yes"`` is a 400).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, create_model

Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]
ShortName = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Id = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Text = StrictStr | None


class Open(BaseModel):
    """Keystone keeps unknown attributes: allow and return them."""

    model_config = ConfigDict(extra="allow")

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# -- auth -----------------------------------------------------------------------
class DomainRef(Closed):
    id: Id | None = None
    name: ShortName | None = None


class UserRef(Closed):
    id: Id | None = None
    name: Name | None = None
    domain: DomainRef | None = None
    password: StrictStr | None = None


class PasswordMethod(Closed):
    user: UserRef


class TokenMethod(Closed):
    id: Annotated[StrictStr, Field(min_length=1, max_length=1024)]


class AppCredMethod(Closed):
    id: Id | None = None
    name: Name | None = None
    secret: StrictStr
    user: UserRef | None = None


class Identity(Closed):
    methods: Annotated[list[StrictStr], Field(min_length=1)]
    password: PasswordMethod | None = None
    token: TokenMethod | None = None
    application_credential: AppCredMethod | None = None
    totp: dict[str, Any] | None = None


class ProjectScope(Closed):
    id: Id | None = None
    name: ShortName | None = None
    domain: DomainRef | None = None


class SystemScope(Closed):
    all: StrictBool


class Scope(Closed):
    project: ProjectScope | None = None
    domain: DomainRef | None = None
    system: SystemScope | None = None
    # OS-TRUST:trust is not supported; rejected as an unknown property.


class Auth(Closed):
    identity: Identity
    scope: Scope | Literal["unscoped"] | None = None


class AuthBody(Closed):
    auth: Auth


# -- resources ---------------------------------------------------------------------
class DomainCreate(Open):
    name: ShortName
    description: Text = None
    enabled: StrictBool = True
    id: Id | None = None
    explicit_domain_id: Id | None = None
    tags: list[StrictStr] | None = None


class DomainUpdate(Open):
    name: ShortName | None = None
    description: Text = None
    enabled: StrictBool | None = None


class ProjectCreate(Open):
    name: ShortName
    domain_id: Id | None = None
    parent_id: Id | None = None
    description: Text = None
    enabled: StrictBool = True
    is_domain: StrictBool = False
    tags: list[Annotated[StrictStr, Field(max_length=255)]] | None = None
    options: dict[str, Any] | None = None


class ProjectUpdate(Open):
    name: ShortName | None = None
    description: Text = None
    enabled: StrictBool | None = None
    tags: list[Annotated[StrictStr, Field(max_length=255)]] | None = None
    options: dict[str, Any] | None = None


class UserCreate(Open):
    name: Name
    domain_id: Id | None = None
    password: StrictStr | None = None
    enabled: StrictBool = True
    default_project_id: Id | None = None
    description: Text = None
    options: dict[str, Any] | None = None


class UserUpdate(Open):
    name: Name | None = None
    password: StrictStr | None = None
    enabled: StrictBool | None = None
    default_project_id: Id | None = None
    description: Text = None
    options: dict[str, Any] | None = None


class PasswordChange(Closed):
    original_password: StrictStr
    password: StrictStr


class GroupCreate(Open):
    name: ShortName
    domain_id: Id | None = None
    description: Text = None


class GroupUpdate(Open):
    name: ShortName | None = None
    description: Text = None


class RoleCreate(Closed):
    name: Name
    domain_id: Id | None = None
    description: Text = None
    options: dict[str, Any] | None = None


class RoleUpdate(Closed):
    name: Name | None = None
    description: Text = None
    options: dict[str, Any] | None = None


class RegionCreate(Open):
    id: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    description: Text = None
    parent_region_id: StrictStr | None = None


class RegionUpdate(Open):
    description: Text = None
    parent_region_id: StrictStr | None = None


class ServiceCreate(Open):
    type: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    name: StrictStr | None = None
    description: Text = None
    enabled: StrictBool = True


class ServiceUpdate(Open):
    type: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    name: StrictStr | None = None
    description: Text = None
    enabled: StrictBool | None = None


class EndpointCreate(Open):
    service_id: Id
    interface: Literal["public", "internal", "admin"]
    url: Annotated[StrictStr, Field(min_length=1, max_length=225)]
    region_id: StrictStr | None = None
    region: StrictStr | None = None
    enabled: StrictBool = True


class EndpointUpdate(Open):
    service_id: Id | None = None
    interface: Literal["public", "internal", "admin"] | None = None
    url: Annotated[StrictStr, Field(min_length=1, max_length=225)] | None = None
    region_id: StrictStr | None = None
    region: StrictStr | None = None
    enabled: StrictBool | None = None


class RoleRef(Closed):
    id: Id | None = None
    name: Name | None = None
    domain_id: Id | None = None


class AppCredCreate(Closed):
    name: Name
    description: Text = None
    secret: Annotated[StrictStr, Field(min_length=1)] | None = None
    expires_at: dt.datetime | None = None
    roles: list[RoleRef] | None = None
    unrestricted: StrictBool = False
    access_rules: list[dict[str, Any]] | None = None


def wrap(key: str, model: type[BaseModel]) -> type[BaseModel]:
    """A body model ``{key: model}`` with nothing else allowed at the top."""
    return create_model(f"{model.__name__}Body", __base__=Closed, **{key: (model, ...)})  # type: ignore[call-overload]
