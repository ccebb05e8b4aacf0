"""Authentication and tokens: issue, validate, revoke.

Issue: prove who you are (password, an existing token, or an application
credential), pick a scope (project, domain, system, or none), and get a
Fernet token. Validate: decrypt, check expiry, then check that the user,
scope and roles still hold and that no revocation event matches. Both read
the identity :class:`~kumo.identity.graph.Graph` (an in-memory snapshot per
identity revision) rather than the database; a freshly issued token's
context is put straight into the validation cache.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.db import utcnow
from kumo.identity.appcreds import AppCredService
from kumo.identity.graph import Graph, GraphCache, UserInfo
from kumo.identity.models import ApplicationCredential, RevocationEvent, User
from kumo.identity.store import IdentityStore
from kumo.identity.tokens import TokenCodec, TokenPayload, new_audit_id

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
    def __init__(self, store: IdentityStore, appcreds: AppCredService, codec: TokenCodec,
                 graphs: GraphCache) -> None:
        self.store = store
        self.appcreds = appcreds
        self.codec = codec
        self.graphs = graphs

    # -- issue -------------------------------------------------------------------
    async def issue(self, request: AuthRequest) -> tuple[str, AuthContext]:
        """Authenticate, scope, and return the new token with its context."""
        for method in request.methods:
            if method not in ("password", "token", "application_credential"):
                raise errors.Unauthorized(f"Attempted to authenticate with an unsupported method: {method}.")
        if "application_credential" in request.methods:
            payload, user = await self._auth_app_cred(request)
        elif "password" in request.methods:
            payload, user = await self._auth_password(request)
        elif "token" in request.methods:
            payload, user = await self._auth_token(request)
        else:
            raise errors.ValidationError("'methods' must name at least one authentication method.")
        token = self.codec.encode(payload)
        graph = await self.graphs.get()
        app_cred = await self._app_cred(payload.app_cred_id) if payload.app_cred_id else None
        ctx = self._context(graph, token, payload, user, app_cred)
        if ctx is None:
            raise errors.Unauthorized(UNAUTHORIZED)
        return token, ctx

    async def _find_user(self, ref: UserRef, *, fresh: bool = False) -> UserInfo | None:
        if ref.id:
            return await self.graphs.user(user_id=ref.id, fresh=fresh)
        graph = await self.graphs.get()
        domain_id = ref.domain_id
        if domain_id is None and ref.domain_name:
            domain_id = graph.domain_ids.get(ref.domain_name) or (await self.graphs.refresh()).domain_ids.get(
                ref.domain_name)
        if not ref.name or domain_id is None:
            return None
        return await self.graphs.user(name=ref.name, domain_id=domain_id, fresh=fresh)

    async def _auth_password(self, request: AuthRequest) -> tuple[TokenPayload, UserInfo]:
        if request.password_user is None or request.password is None:
            raise errors.ValidationError("'password' method needs a user and a password.")
        rules = self.store.settings.identity.security_compliance
        lockout = rules.lockout_failure_attempts > 0
        user = await self._find_user(request.password_user, fresh=lockout)  # counters must be current
        options = user.options if user else {}
        if user is not None and lockout and not options.get("ignore_lockout_failure_attempts"):
            if (user.failed_auth_count >= rules.lockout_failure_attempts and user.failed_auth_at is not None
                    and user.failed_auth_at + dt.timedelta(seconds=rules.lockout_duration) > utcnow()):
                raise errors.Unauthorized(f"The account is locked for user: {user.id}.")
        if not await self.store.hasher.verify(user.password_hash if user else None, request.password) or user is None:
            if user is not None and lockout:
                await self._record_failure(user.id, rules.lockout_duration)
            raise errors.Unauthorized(UNAUTHORIZED)
        graph = await self.graphs.get()
        self._check_user_enabled(graph, user)
        if (user.password_expires_at is not None and user.password_expires_at <= utcnow()
                and not options.get("ignore_password_expiry")):
            raise errors.Unauthorized(f"The password is expired and needs to be changed for user: {user.id}.")
        if user.failed_auth_count:
            await self._reset_failures(user.id)
        scope = await self._resolve_scope(user, request.scope)
        now = utcnow()
        return TokenPayload(user_id=user.id, methods=("password",), audit_ids=(new_audit_id(),), issued_at=now,
                            expires_at=now + dt.timedelta(seconds=self.store.settings.identity.token_expiration),
                            **scope), user

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

    async def _reset_failures(self, user_id: str) -> None:
        async with self.store.db.session() as s:
            user = await s.get(User, user_id)
            if user is not None:
                user.failed_auth_count = 0
                user.failed_auth_at = None

    async def _auth_token(self, request: AuthRequest) -> tuple[TokenPayload, UserInfo]:
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
        user = await self.graphs.user(user_id=ctx.user_id)
        if user is None:
            raise errors.Unauthorized(UNAUTHORIZED)
        if request.scope.given:
            scope = await self._resolve_scope(user, request.scope)
        else:
            scope = {"project_id": ctx.project_id, "domain_id": ctx.domain_id, "system": ctx.system_scope}
        methods = tuple(dict.fromkeys((*ctx.methods, "token")))
        return TokenPayload(user_id=user.id, methods=methods, expires_at=ctx.expires_at,
                            audit_ids=(new_audit_id(), ctx.audit_ids[-1]), issued_at=utcnow(), **scope), user

    async def _app_cred(self, cred_id: str) -> ApplicationCredential | None:
        async with self.store.db.session() as s:
            return await s.get(ApplicationCredential, cred_id)

    async def _auth_app_cred(self, request: AuthRequest) -> tuple[TokenPayload, UserInfo]:
        user_id = None
        if request.app_cred_user is not None:
            owner = await self._find_user(request.app_cred_user)
            user_id = owner.id if owner else None
        async with self.store.db.session() as s:
            cred = await self.appcreds.lookup(s, cred_id=request.app_cred_id, name=request.app_cred_name,
                                              user_id=user_id)
        if cred is None or not await self.store.hasher.verify(cred.secret_hash, request.app_cred_secret or ""):
            if cred is None:
                await self.store.hasher.verify(None, request.app_cred_secret or "")
            raise errors.Unauthorized(UNAUTHORIZED)
        if cred.expires_at is not None and cred.expires_at <= utcnow():
            raise errors.Unauthorized("Application credential has expired.")
        if request.scope.given and request.scope.project_id not in (None, cred.project_id):
            raise errors.Forbidden("Application credentials cannot request a scope.")
        user = await self.graphs.user(user_id=cred.user_id)
        if user is None:
            raise errors.Unauthorized(UNAUTHORIZED)
        self._check_user_enabled(await self.graphs.get(), user)
        now = utcnow()
        expires = now + dt.timedelta(seconds=self.store.settings.identity.token_expiration)
        if cred.expires_at is not None:
            expires = min(expires, cred.expires_at)
        return TokenPayload(user_id=user.id, methods=("application_credential",), audit_ids=(new_audit_id(),),
                            issued_at=now, expires_at=expires, project_id=cred.project_id, system=cred.system,
                            app_cred_id=cred.id), user

    @staticmethod
    def _check_user_enabled(graph: Graph, user: UserInfo) -> None:
        domain = graph.domains.get(user.domain_id)
        if not user.enabled or domain is None or not domain.enabled:
            raise errors.Unauthorized(f"The account is disabled for user: {user.id}.")

    async def _resolve_scope(self, user: UserInfo, scope: ScopeRequest) -> dict[str, str | None]:
        """Turn a scope request into ids, checking it exists, is enabled, and the user has a role there."""
        none: dict[str, str | None] = {"project_id": None, "domain_id": None, "system": None}
        graph = await self.graphs.get()
        if scope.system:
            if scope.system != "all":
                raise errors.ValidationError("Only the 'all' system scope exists.")
            if not graph.effective_role_ids(user.id, system="all"):
                raise errors.Unauthorized(f"User {user.id} has no access to the system.")
            return {**none, "system": "all"}
        if scope.domain_id or scope.domain_name:
            domain_id = scope.domain_id or graph.domain_ids.get(scope.domain_name or "")
            if domain_id not in graph.domains:
                graph = await self.graphs.refresh()
                domain_id = scope.domain_id or graph.domain_ids.get(scope.domain_name or "")
            domain = graph.domains.get(domain_id or "")
            if domain is None:
                raise errors.Unauthorized(f"Could not find domain: {scope.domain_id or scope.domain_name}.")
            if not domain.enabled:
                raise errors.Unauthorized(f"Domain is disabled: {domain.id}.")
            if not graph.effective_role_ids(user.id, domain_id=domain.id):
                raise errors.Unauthorized(f"User {user.id} has no access to domain {domain.id}.")
            return {**none, "domain_id": domain.id}
        if scope.project_id or scope.project_name:
            project_id = self._project_id(graph, scope)
            if project_id not in graph.projects:
                graph = await self.graphs.refresh()
                project_id = self._project_id(graph, scope)
        elif not scope.unscoped and user.default_project_id:
            project = graph.projects.get(user.default_project_id)
            if project is None or not project.enabled or not graph.effective_role_ids(user.id, project_id=project.id):
                return none  # Keystone falls back to an unscoped token here
            project_id = project.id
        else:
            return none
        project = graph.projects.get(project_id or "")
        if project is None:
            raise errors.Unauthorized(f"Could not find project: {scope.project_id or scope.project_name}.")
        domain = graph.domains.get(project.domain_id)
        if not project.enabled or domain is None or not domain.enabled:
            raise errors.Unauthorized(f"Project {project.id} is disabled.")
        if not graph.effective_role_ids(user.id, project_id=project.id):
            raise errors.Unauthorized(f"User {user.id} has no access to project {project.id}.")
        return {**none, "project_id": project.id}

    @staticmethod
    def _project_id(graph: Graph, scope: ScopeRequest) -> str | None:
        if scope.project_id:
            return scope.project_id
        domain_id = scope.project_domain_id or graph.domain_ids.get(scope.project_domain_name or "")
        if domain_id is None:
            raise errors.ValidationError("A project given by name needs its domain (id or name).")
        return graph.project_ids.get((domain_id, scope.project_name or ""))

    # -- validate ------------------------------------------------------------------
    async def validate(self, token: str) -> AuthContext:
        payload = self.codec.decode(token)
        if payload.expires_at <= utcnow():
            raise errors.NotFound("The token has expired.")
        graph = await self.graphs.get()
        invalid = errors.NotFound(f"Could not find token: {token[:16]}...")
        if graph.is_revoked(payload):
            raise invalid
        user = await self.graphs.user(user_id=payload.user_id)
        app_cred = await self._app_cred(payload.app_cred_id) if payload.app_cred_id else None
        ctx = self._context(graph, token, payload, user, app_cred) if user is not None else None
        if ctx is None:
            raise invalid
        return ctx

    def _context(self, graph: Graph, token: str, p: TokenPayload, user: UserInfo,
                 cred: ApplicationCredential | None) -> AuthContext | None:
        """The token's context, or None when its user, scope or roles no longer hold."""
        user_domain = graph.domains.get(user.domain_id)
        if not user.enabled or user_domain is None or not user_domain.enabled:
            return None
        extra: dict[str, object] = {}
        role_ids: set[str] = set()
        if p.project_id:
            project = graph.projects.get(p.project_id)
            pdomain = graph.domains.get(project.domain_id) if project else None
            if project is None or pdomain is None or not project.enabled or not pdomain.enabled:
                return None
            extra.update(project_id=project.id, project_name=project.name, project_domain_id=pdomain.id,
                         project_domain_name=pdomain.name)
            role_ids = graph.effective_role_ids(user.id, project_id=project.id)
        elif p.domain_id:
            domain = graph.domains.get(p.domain_id)
            if domain is None or not domain.enabled:
                return None
            extra.update(domain_id=domain.id, domain_name=domain.name)
            role_ids = graph.effective_role_ids(user.id, domain_id=domain.id)
        elif p.system:
            extra.update(system_scope=p.system)
            role_ids = graph.effective_role_ids(user.id, system=p.system)
        if p.app_cred_id:
            if cred is None:
                return None
            role_ids = graph.closure(set(cred.role_ids) & role_ids) if role_ids else set()
            extra.update(app_cred_id=cred.id, app_cred_name=cred.name, app_cred_restricted=not cred.unrestricted)
        if (p.project_id or p.domain_id or p.system) and not role_ids:
            return None  # the role the token relied on is gone
        roles = sorted((graph.role_names[r], r) for r in role_ids if r in graph.role_names)
        return AuthContext(
            token=token, user_id=user.id, user_name=user.name, user_domain_id=user_domain.id,
            user_domain_name=user_domain.name, methods=p.methods, roles=tuple(n for n, _ in roles),
            role_ids=tuple(i for _, i in roles), expires_at=p.expires_at, issued_at=p.issued_at,
            audit_ids=p.audit_ids, password_expires_at=user.password_expires_at, **extra)  # type: ignore[arg-type]

    # -- revoke ----------------------------------------------------------------------
    async def revoke(self, token: str) -> None:
        """``DELETE /v3/auth/tokens``: revoke this token (and tokens rescoped from it)."""
        ctx = await self.validate(token)
        async with self.store.db.session() as s:
            s.add(RevocationEvent(audit_id=ctx.audit_ids[0], issued_before=utcnow()))
            await self.store.bump_revision(s)
        await self.store.changed()
