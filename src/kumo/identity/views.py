"""How a token looks on the wire (``{"token": {...}}``), built from an AuthContext."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kumo.core.auth import AuthContext


def isotime(value: dt.datetime) -> str:
    """Keystone's token timestamps: ``2015-11-05T22:00:11.000000Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def token_body(ctx: AuthContext, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
    token: dict[str, Any] = {
        "methods": list(ctx.methods),
        "user": {"id": ctx.user_id, "name": ctx.user_name,
                 "domain": {"id": ctx.user_domain_id, "name": ctx.user_domain_name},
                 "password_expires_at": isotime(ctx.password_expires_at) if ctx.password_expires_at else None},
        "audit_ids": list(ctx.audit_ids),
        "expires_at": isotime(ctx.expires_at),
        "issued_at": isotime(ctx.issued_at),
    }
    scoped = True
    if ctx.project_id:
        token["project"] = {"id": ctx.project_id, "name": ctx.project_name,
                            "domain": {"id": ctx.project_domain_id, "name": ctx.project_domain_name}}
        token["is_domain"] = False
    elif ctx.domain_id:
        token["domain"] = {"id": ctx.domain_id, "name": ctx.domain_name}
    elif ctx.system_scope:
        token["system"] = {ctx.system_scope: True}
    else:
        scoped = False
    if scoped:
        token["roles"] = [{"id": i, "name": n} for i, n in zip(ctx.role_ids, ctx.roles)]
        if catalog is not None:
            token["catalog"] = catalog
    if ctx.app_cred_id:
        token["application_credential"] = {"id": ctx.app_cred_id, "name": ctx.app_cred_name,
                                            "restricted": ctx.app_cred_restricted}
    return {"token": token}
