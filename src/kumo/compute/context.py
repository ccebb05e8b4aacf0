"""The caller's identity as it travels over the bus (Nova's ``RequestContext``).

An API request becomes work on other processes (conductor, scheduler, a
compute agent); those need to know who asked (instance actions record the
user and the request id) and sometimes to act as the caller towards another
service (a snapshot is uploaded to the image service with the caller's
token, as Nova's compute manager does with ``context.auth_token``). Only
plain JSON crosses the bus; the token is never logged (``__repr__`` hides it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kumo.core.auth import AuthContext
from kumo.core.web import request_id_var


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asked, in which project, with which roles, under which request id."""

    user_id: str | None
    project_id: str | None
    roles: tuple[str, ...] = ()
    request_id: str = "-"
    auth_token: str | None = field(default=None, repr=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @classmethod
    def from_auth(cls, ctx: AuthContext, request_id: str | None = None) -> RequestContext:
        """The context of an API request (the request id comes from the request-id middleware)."""
        return cls(user_id=ctx.user_id, project_id=ctx.project_id, roles=tuple(ctx.roles),
                   request_id=request_id or request_id_var.get(), auth_token=ctx.token)

    @classmethod
    def system(cls, request_id: str = "-") -> RequestContext:
        """Kumo's own periodic work (timeout sweeps, power-state sync): no user, admin powers."""
        return cls(user_id=None, project_id=None, roles=("admin",), request_id=request_id)

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "project_id": self.project_id, "roles": list(self.roles),
                "request_id": self.request_id, "auth_token": self.auth_token}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestContext:
        return cls(user_id=data.get("user_id"), project_id=data.get("project_id"),
                   roles=tuple(data.get("roles") or ()), request_id=str(data.get("request_id") or "-"),
                   auth_token=data.get("auth_token"))
