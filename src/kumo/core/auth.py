"""Who is calling: the validated token as an :class:`AuthContext`, and its cache.

Every API validates the ``X-Auth-Token`` of every request, so this is the
hottest path in the cloud. Tokens are self-validating (Fernet), but whether
one is still good also depends on revocations, the user and the roles in the
database; :class:`CachingValidator` keeps recent answers in memory and drops
them whenever identity data changes (a local revision bump, a bus fanout
from other API nodes, or a periodic check of the revision in the database).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class AuthContext:
    """A validated token: the caller's identity, scope and effective roles."""

    token: str
    user_id: str
    user_name: str
    user_domain_id: str
    user_domain_name: str
    methods: tuple[str, ...]
    roles: tuple[str, ...] = ()
    role_ids: tuple[str, ...] = ()
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    project_domain_name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None
    system_scope: str | None = None
    expires_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    issued_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    audit_ids: tuple[str, ...] = ()
    app_cred_id: str | None = None
    app_cred_name: str | None = None
    app_cred_restricted: bool = False
    password_expires_at: dt.datetime | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def policy_creds(self) -> dict[str, Any]:
        """The credentials mapping the policy engine checks rules against."""
        return {
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": self.system_scope,
            "roles": list(self.roles),
        }


class TokenValidator(Protocol):
    async def validate(self, token: str) -> AuthContext:
        """Return the context of a valid token or raise errors.Unauthorized/NotFound."""
        ...


class CachingValidator:
    """LRU + TTL cache in front of a validator, invalidated by revision.

    ``revision`` is a process-local counter. Whoever changes identity data
    calls :meth:`invalidate` (directly in this process; through a bus fanout
    on the others), which bumps it; cached entries from an older revision are
    recomputed on their next use. Expired tokens are never served from cache.
    """

    def __init__(self, inner: TokenValidator, *, ttl: float = 300.0, max_entries: int = 50_000) -> None:
        self.inner = inner
        self.ttl = ttl
        self.max_entries = max_entries
        self.revision = 0
        self._entries: OrderedDict[str, tuple[AuthContext, float, int]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def seed(self, token: str, ctx: AuthContext) -> None:
        """Cache a context known to be valid (a token this process just issued)."""
        self._entries[token] = (ctx, time.monotonic(), self.revision)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self) -> None:
        self.revision += 1
        self._entries.clear()

    async def validate(self, token: str) -> AuthContext:
        now = time.monotonic()
        entry = self._entries.get(token)
        if entry is not None:
            ctx, stored_at, revision = entry
            if revision == self.revision and now - stored_at < self.ttl and ctx.expires_at > _utcnow():
                self.hits += 1
                self._entries.move_to_end(token)
                return ctx
            self._entries.pop(token, None)
        self.misses += 1
        revision = self.revision
        ctx = await self.inner.validate(token)
        if revision == self.revision:
            self._entries[token] = (ctx, now, revision)
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return ctx


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
