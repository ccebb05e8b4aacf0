"""The identity service (Keystone): the Python API other code calls.

Composes the parts (resources, users, roles, catalog, application
credentials, authentication) over one store, and owns the token-validation
cache together with the three ways it learns that identity data changed:
writes in this process, a bus fanout from other processes, and a periodic
look at the revision counter in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import Any

import orjson

from kumo.core.auth import AuthContext, CachingValidator
from kumo.core.bus import Bus, Consumer
from kumo.core.config import Settings
from kumo.core.db import Database
from kumo.identity.views import token_body
from kumo.identity.appcreds import AppCredService
from kumo.identity.assignments import AssignmentQuery
from kumo.identity.authn import Authenticator, AuthRequest
from kumo.identity.graph import GraphCache
from kumo.identity.catalog import CatalogServiceLayer
from kumo.identity.passwords import Hasher
from kumo.identity.resources import DomainService, GroupService, ProjectService
from kumo.identity.roles import RoleService
from kumo.identity.store import IdentityStore
from kumo.identity.tokens import KeyRepository, TokenCodec
from kumo.identity.users import UserService

log = logging.getLogger("kumo.identity")

CHANGES_TOPIC = "identity.changes"


class IdentityService:
    def __init__(self, db: Database, settings: Settings, bus: Bus | None = None) -> None:
        self.settings = settings
        self.bus = bus
        opts = settings.identity
        self.keys = KeyRepository(settings.state_dir / "fernet-keys", opts.max_active_keys)
        self.hasher = Hasher(time_cost=opts.password_hash_time_cost, memory_kib=opts.password_hash_memory_kib)
        self.store = IdentityStore(db, settings, self.hasher)
        self.domains = DomainService(self.store)
        self.projects = ProjectService(self.store)
        self.groups = GroupService(self.store)
        self.users = UserService(self.store)
        self.roles = RoleService(self.store)
        self.catalog = CatalogServiceLayer(self.store)
        self.appcreds = AppCredService(self.store)
        self.assignments = AssignmentQuery(self.store)
        self.keys.ensure()
        self.codec = TokenCodec(self.keys.load())
        # The graph snapshot follows the validation cache's revision (read lazily: both drop together).
        self.graphs = GraphCache(self.store, lambda: self.validator.revision)
        self.auth = Authenticator(self.store, self.appcreds, self.codec, self.graphs)
        self.validator = CachingValidator(self.auth, ttl=opts.cache_ttl)
        self.revision = 0
        self.store.listeners.append(self._local_change)
        self._rendered: OrderedDict[tuple[str, bool], tuple[int, bytes]] = OrderedDict()
        self._consumer: Consumer | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self, poll_interval: float = 2.0) -> None:
        """Listen for changes made by other processes (bus fanout + DB revision poll)."""
        self.revision = await self.store.current_revision()
        if self.bus is not None:
            self._consumer = await self.bus.serve(CHANGES_TOPIC, _ChangeEndpoint(self), fanout=True)
        self._poller = asyncio.create_task(self._poll_revision(poll_interval), name="identity-revision-poll")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._consumer is not None:
            await self._consumer.stop()

    def reload_keys(self) -> None:
        """Pick up rotated Fernet keys (``kumo identity rotate-keys``)."""
        self.codec = TokenCodec(self.keys.load())
        self.auth.codec = self.codec

    async def _local_change(self) -> None:
        self.validator.invalidate()
        if self.bus is not None:
            try:
                await self.bus.fanout(CHANGES_TOPIC, "identity_changed", {})
            except Exception:  # noqa: BLE001 - the DB revision poll still catches up
                log.warning("could not announce an identity change on the bus", exc_info=True)

    async def _poll_revision(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                current = await self.store.current_revision()
            except Exception:  # noqa: BLE001 - a DB hiccup must not kill the poller
                log.warning("identity revision poll failed", exc_info=True)
                continue
            if current != self.revision:
                self.revision = current
                self.validator.invalidate()
                self.reload_keys()

    async def validate(self, token: str) -> AuthContext:
        return await self.validator.validate(token)

    async def projects_for_user(self, user_id: str) -> list[dict[str, Any]]:
        """Enabled projects the user holds any role on (``/v3/auth/projects``, ``/v3/users/{id}/projects``)."""
        grants = await self.assignments.list({"user.id": user_id, "effective": ""}, "")
        ids = {g["scope"]["project"]["id"] for g in grants if "project" in g["scope"]}
        if not ids:
            return []
        return [p for p in await self.projects.list({}, ids=ids) if p["enabled"]]

    async def domains_for_user(self, user_id: str) -> list[dict[str, Any]]:
        grants = await self.assignments.list({"user.id": user_id, "effective": ""}, "")
        ids = {g["scope"]["domain"]["id"] for g in grants if "domain" in g["scope"]}
        return [d for d in await self.domains.list({}) if d["id"] in ids and d["enabled"]]

    async def has_system_role(self, user_id: str) -> bool:
        return bool((await self.graphs.get()).effective_role_ids(user_id, system="all"))

    async def issue(self, request: AuthRequest) -> tuple[str, AuthContext]:
        """Issue a token and seed the validation cache with its context."""
        token, ctx = await self.auth.issue(request)
        self.validator.seed(token, ctx)
        return token, ctx

    async def catalog_for(self, ctx: AuthContext) -> list[dict[str, Any]]:
        return await self.catalog.catalog(self.validator.revision)

    async def token_json(self, ctx: AuthContext, include_catalog: bool) -> bytes:
        """The ``{"token": ...}`` body as bytes, cached: validation is the hottest call in the cloud."""
        key = (ctx.token, include_catalog)
        revision = self.validator.revision
        hit = self._rendered.get(key)
        if hit is not None and hit[0] == revision:
            return hit[1]
        catalog = await self.catalog_for(ctx) if include_catalog else None
        body = orjson.dumps(token_body(ctx, catalog))
        self._rendered[key] = (revision, body)
        if len(self._rendered) > 20_000:
            self._rendered.popitem(last=False)
        return body


class _ChangeEndpoint:
    """Bus endpoint: another process changed identity data."""

    def __init__(self, service: IdentityService) -> None:
        self.service = service

    async def identity_changed(self) -> None:
        self.service.validator.invalidate()
