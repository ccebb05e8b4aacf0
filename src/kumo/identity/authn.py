"""Authentication and tokens: issue, validate, revoke.

Issue: prove who you are (password, an existing token, or an application
credential), pick a scope (project, domain, system, or none), and get a
Fernet token. Validate: decrypt, check expiry, then check against the
database that the user, scope and roles still hold and that no revocation
event matches. Validation results are cached by the caller
(:class:`kumo.core.auth.CachingValidator`), so the database work is paid once
per token per identity change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.db import utcnow
from kumo.identity.appcreds import AppCredService
from kumo.identity.models import ApplicationCredential, Domain, Project, RevocationEvent, Role, User
from kumo.identity.roles import RoleService
from kumo.identity.store import IdentityStore
from kumo.identity.tokens import TokenCodec, TokenPayload, new_audit_id
from kumo.identity.users import UserService

UNAUTHORIZED = "The request you have made requires authentication."


@dataclass(frozen=True)
class UserRef:
    id: str | None = None
    name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None


@dataclass(frozen=True)
class ScopeRequest:
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    project_domain_name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None
    system: str | None = None
    unscoped: bool = False

    @property
    def given(self) -> bool:
        return bool(self.project_id or self.project_name or self.domain_id or self.domain_name or self.system
                    or self.unscoped)


@dataclass(frozen=True)
class AuthRequest:
    methods: tuple[str, ...]
    password_user: UserRef | None = None
    password: str | None = None
    token: str | None = None
    app_cred_id: str | None = None
    app_cred_name: str | None = None
    app_cred_user: UserRef | None = None
    app_cred_secret: str | None = None
    scope: ScopeRequest = field(default_factory=ScopeRequest)


class Authenticator:
    def __init__(self, store: IdentityStore, users: UserService, roles: RoleService, appcreds: AppCredService,
                 codec: TokenCodec) -> None:
        self.store = store
        self.users = users
        self.roles = roles
        self.appcreds = appcreds
        self.codec = codec

    # -- issue -------------------------------------------------------------------
    async def issue(self, request: AuthRequest) -> tuple[str, AuthContext]:
        for method in request.methods:
            if method not in ("password", "token", "application_credential"):
                raise errors.Unauthorized(f"Attempted to authenticate with an unsupported method: {method}.")
        async with self.store.db.session() as s:
            if "application_credential" in request.methods:
                payload = await self._auth_app_cred(s, request)
            elif "password" in request.methods:
                payload = await self._auth_password(s, request)
            elif "token" in request.methods:
                payload = await self._auth_token(s, request)
            else:
                raise errors.ValidationError("'methods' must name at least one authentication method.")
        token = self.codec.encode(payload)
        return token, await self.validate(token)

    async def _find_user(self, s: AsyncSession, ref: UserRef) -> User | None:
        if ref.id:
            return await s.get(User, ref.id)
        domain_id = ref.domain_id
        if domain_id is None and ref.domain_name:
            domain_id = await s.scalar(select(Domain.id).where(Domain.name == ref.domain_name))
        if not ref.name or domain_id is None:
            return None
        return await s.scalar(select(User).where(User.name == ref.name, User.domain_id == domain_id))

    async def _auth_password(self, s: AsyncSession, request: AuthRequest) -> TokenPayload:
        if request.password_user is None or request.password is None:
            raise errors.ValidationError("'password' method needs a user and a password.")
        user = await self._find_user(s, request.password_user)
        rules = self.store.settings.identity.security_compliance
        options = (user.options or {}) if user else {}
        if user is not None and rules.lockout_failure_attempts and not options.get("ignore_lockout_failure_attempts"):
            if (user.failed_auth_count >= rules.lockout_failure_attempts and user.failed_auth_at is not None
                    and user.failed_auth_at + dt.timedelta(seconds=rules.lockout_duration) > utcnow()):
                raise errors.Unauthorized(f"The account is locked for user: {user.id}.")
        current = await self.users.current_password(s, user.id) if user else None
        if not await self.store.hasher.verify(current.hash if current else None, request.password) or user is None:
            if user is not None and rules.lockout_failure_attempts:
                await self._record_failure(user.id, rules.lockout_duration)
            raise errors.Unauthorized(UNAUTHORIZED)
        await self._check_user_enabled(s, user)
        if (current is not None and current.expires_at is not None and current.expires_at <= utcnow()
                and not options.get("ignore_password_expiry")):
            raise errors.Unauthorized(f"The password is expired and needs to be changed for user: {user.id}.")
        if user.failed_auth_count:
            user.failed_auth_count = 0
            user.failed_auth_at = None
        scope = await self._resolve_scope(s, user, request.scope)
        now = utcnow()
        return TokenPayload(user_id=user.id, methods=("password",), audit_ids=(new_audit_id(),), issued_at=now,
                            expires_at=now + dt.timedelta(seconds=self.store.settings.identity.token_expiration),
                            **scope)

    async def _record_failure(self, user_id: str, lockout_duration: int) -> None:
        """Count a failed login in its own transaction (the login itself fails)."""
        async with self.store.db.session() as s:
            user = await s.get(User, user_id)
            if user is None:
                return
            if user.failed_auth_at and user.failed_auth_at + dt.timedelta(seconds=lockout_duration) < utcnow():
                user.failed_auth_count = 0
            user.failed_auth_count += 1
            user.failed_auth_at = utcnow()

    async def _auth_token(self, s: AsyncSession, request: AuthRequest) -> TokenPayload:
        if not request.token:
            raise errors.ValidationError("'token' method needs a token id.")
        try:
            ctx = await self.validate(request.token)
        except errors.NotFound as exc:
            raise errors.Unauthorized(UNAUTHORIZED) from exc
        if ctx.app_cred_id:
            raise errors.Forbidden("Rescoping a token made from an application credential is not allowed.")
        if (ctx.project_id or ctx.domain_id or ctx.system_scope) and request.scope.given:
            raise errors.Forbidden("Rescoping a scoped token is not allowed.")  # Keystone's allow_rescope_scoped_token=false
        user = await s.get(User, ctx.user_id)
        assert user is not None
        if request.scope.given:
            scope = await self._resolve_scope(s, user, request.scope)
        else:
            scope = {"project_id": ctx.project_id, "domain_id": ctx.domain_id, "system": ctx.system_scope}
        methods = tuple(dict.fromkeys((*ctx.methods, "token")))
        return TokenPayload(user_id=user.id, methods=methods, expires_at=ctx.expires_at,
                            audit_ids=(new_audit_id(), ctx.audit_ids[-1]), issued_at=utcnow(), **scope)

    async def _auth_app_cred(self, s: AsyncSession, request: AuthRequest) -> TokenPayload:
        user_id = None
        if request.app_cred_user is not None:
            owner = await self._find_user(s, request.app_cred_user)
            user_id = owner.id if owner else None
        cred = await self.appcreds.lookup(s, cred_id=request.app_cred_id, name=request.app_cred_name, user_id=user_id)
        if cred is None or not await self.store.hasher.verify(cred.secret_hash, request.app_cred_secret or ""):
            if cred is None:
                await self.store.hasher.verify(None, request.app_cred_secret or "")
            raise errors.Unauthorized(UNAUTHORIZED)
        if cred.expires_at is not None and cred.expires_at <= utcnow():
            raise errors.Unauthorized("Application credential has expired.")
        if request.scope.given and request.scope.project_id not in (None, cred.project_id):
            raise errors.Forbidden("Application credentials cannot request a scope.")
        user = await s.get(User, cred.user_id)
        assert user is not None
        await self._check_user_enabled(s, user)
        now = utcnow()
        expires = now + dt.timedelta(seconds=self.store.settings.identity.token_expiration)
        if cred.expires_at is not None:
            expires = min(expires, cred.expires_at)
        return TokenPayload(user_id=user.id, methods=("application_credential",), audit_ids=(new_audit_id(),),
                            issued_at=now, expires_at=expires, project_id=cred.project_id, system=cred.system,
                            app_cred_id=cred.id)

    async def _check_user_enabled(self, s: AsyncSession, user: User) -> None:
        domain = await s.get(Domain, user.domain_id)
        if not user.enabled or domain is None or not domain.enabled:
            raise errors.Unauthorized(f"The account is disabled for user: {user.id}.")

    async def _resolve_scope(self, s: AsyncSession, user: User, scope: ScopeRequest) -> dict[str, str | None]:
        """Turn a scope request into ids, checking it exists, is enabled, and the user has a role there."""
        none: dict[str, str | None] = {"project_id": None, "domain_id": None, "system": None}
        if scope.system:
            if scope.system != "all":
                raise errors.ValidationError("Only the 'all' system scope exists.")
            if not await self.roles.effective_role_ids(s, user.id, system="all"):
                raise errors.Unauthorized(f"User {user.id} has no access to the system.")
            return {**none, "system": "all"}
        if scope.domain_id or scope.domain_name:
            stmt = select(Domain).where(Domain.id == scope.domain_id if scope.domain_id else Domain.name == scope.domain_name)
            domain = await s.scalar(stmt)
            if domain is None:
                raise errors.Unauthorized(f"Could not find domain: {scope.domain_id or scope.domain_name}.")
            if not domain.enabled:
                raise errors.Unauthorized(f"Domain is disabled: {domain.id}.")
            if not await self.roles.effective_role_ids(s, user.id, domain_id=domain.id):
                raise errors.Unauthorized(f"User {user.id} has no access to domain {domain.id}.")
            return {**none, "domain_id": domain.id}
        project = None
        if scope.project_id:
            project = await s.get(Project, scope.project_id)
        elif scope.project_name:
            domain_id = scope.project_domain_id
            if domain_id is None and scope.project_domain_name:
                domain_id = await s.scalar(select(Domain.id).where(Domain.name == scope.project_domain_name))
            if domain_id is None:
                raise errors.ValidationError("A project given by name needs its domain (id or name).")
            project = await s.scalar(select(Project).where(Project.name == scope.project_name,
                                                          Project.domain_id == domain_id))
        elif not scope.unscoped and user.default_project_id:
            project = await s.get(Project, user.default_project_id)
            if project is None or not project.enabled or not await self.roles.effective_role_ids(
                    s, user.id, project_id=project.id):
                return none  # Keystone falls back to an unscoped token here
        else:
            return none
        if project is None:
            raise errors.Unauthorized(f"Could not find project: {scope.project_id or scope.project_name}.")
        await self._check_project_usable(s, project)
        if not await self.roles.effective_role_ids(s, user.id, project_id=project.id):
            raise errors.Unauthorized(f"User {user.id} has no access to project {project.id}.")
        return {**none, "project_id": project.id}

    async def _check_project_usable(self, s: AsyncSession, project: Project) -> None:
        domain = await s.get(Domain, project.domain_id)
        if not project.enabled or domain is None or not domain.enabled:
            raise errors.Unauthorized(f"Project {project.id} is disabled.")

    # -- validate ------------------------------------------------------------------
    async def validate(self, token: str) -> AuthContext:
        payload = self.codec.decode(token)
        if payload.expires_at <= utcnow():
            raise errors.NotFound("The token has expired.")
        async with self.store.db.session() as s:
            return await self._context(s, token, payload)

    async def _context(self, s: AsyncSession, token: str, p: TokenPayload) -> AuthContext:
        invalid = errors.NotFound(f"Could not find token: {token[:16]}...")
        if await self._is_revoked(s, p):
            raise invalid
        user = await s.get(User, p.user_id)
        user_domain = await s.get(Domain, user.domain_id) if user else None
        if user is None or not user.enabled or user_domain is None or not user_domain.enabled:
            raise invalid
        extra: dict[str, object] = {}
        if p.project_id:
            project = await s.get(Project, p.project_id)
            pdomain = await s.get(Domain, project.domain_id) if project else None
            if project is None or pdomain is None or not project.enabled or not pdomain.enabled:
                raise invalid
            extra.update(project_id=project.id, project_name=project.name, project_domain_id=pdomain.id,
                         project_domain_name=pdomain.name)
            role_ids = await self.roles.effective_role_ids(s, user.id, project_id=project.id)
        elif p.domain_id:
            domain = await s.get(Domain, p.domain_id)
            if domain is None or not domain.enabled:
                raise invalid
            extra.update(domain_id=domain.id, domain_name=domain.name)
            role_ids = await self.roles.effective_role_ids(s, user.id, domain_id=domain.id)
        elif p.system:
            extra.update(system_scope=p.system)
            role_ids = await self.roles.effective_role_ids(s, user.id, system=p.system)
        else:
            role_ids = set()
        if p.app_cred_id:
            cred = await s.get(ApplicationCredential, p.app_cred_id)
            if cred is None:
                raise invalid
            role_ids = await self.roles._implied_closure(s, set(cred.role_ids) & role_ids) if role_ids else set()
            extra.update(app_cred_id=cred.id, app_cred_name=cred.name, app_cred_restricted=not cred.unrestricted)
        if (p.project_id or p.domain_id or p.system) and not role_ids:
            raise invalid  # the role the token relied on is gone
        roles: list[Role] = await self.roles.roles_by_ids(s, role_ids)
        password = await self.users.current_password(s, user.id)
        return AuthContext(
            token=token, user_id=user.id, user_name=user.name, user_domain_id=user_domain.id,
            user_domain_name=user_domain.name, methods=p.methods, roles=tuple(r.name for r in roles),
            role_ids=tuple(r.id for r in roles), expires_at=p.expires_at, issued_at=p.issued_at,
            audit_ids=p.audit_ids, password_expires_at=password.expires_at if password else None,
            **extra)  # type: ignore[arg-type]

    async def _is_revoked(self, s: AsyncSession, p: TokenPayload) -> bool:
        clauses = [RevocationEvent.audit_id.in_(p.audit_ids), RevocationEvent.user_id == p.user_id]
        if p.project_id:
            clauses.append(RevocationEvent.project_id == p.project_id)
        if p.app_cred_id:
            clauses.append(RevocationEvent.app_cred_id == p.app_cred_id)
        events = await s.scalars(select(RevocationEvent).where(or_(*clauses)))
        for ev in events:
            if p.issued_at > ev.issued_before:
                continue
            if ev.audit_id is not None and ev.audit_id not in p.audit_ids:
                continue
            if ev.user_id is not None and ev.user_id != p.user_id:
                continue
            if ev.project_id is not None and ev.project_id != p.project_id:
                continue
            if ev.domain_id is not None and ev.domain_id != p.domain_id:
                continue
            if ev.app_cred_id is not None and ev.app_cred_id != p.app_cred_id:
                continue
            return True
        return False

    # -- revoke ----------------------------------------------------------------------
    async def revoke(self, token: str) -> None:
        """``DELETE /v3/auth/tokens``: revoke this token (and tokens rescoped from it)."""
        ctx = await self.validate(token)
        async with self.store.db.session() as s:
            s.add(RevocationEvent(audit_id=ctx.audit_ids[0], issued_before=utcnow()))
            await self.store.bump_revision(s)
        await self.store.changed()
