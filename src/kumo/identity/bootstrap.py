"""First-start setup of identity, safe to run on every start.

Creates what Keystone's ``keystone-manage bootstrap`` creates — the
``Default`` domain, ``admin``/``member``/``reader`` roles (admin implies
member implies reader), the ``admin`` and ``service`` projects, the
``admin`` user with the admin role on the admin project and the system,
region ``RegionOne`` — plus catalog entries for each service this node
runs. Anything that already exists is left alone (endpoint URLs are
corrected if the node's address changed), so restarts bootstrap nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from kumo.identity.models import CatalogService, Domain, Endpoint, ImpliedRole, Project, Region, Role, User
from kumo.identity.resources import DEFAULT_DOMAIN_ID
from kumo.identity.roles import SYSTEM_TARGET
from kumo.identity.service import IdentityService

log = logging.getLogger("kumo.bootstrap")


@dataclass(frozen=True)
class CatalogEntry:
    type: str
    name: str
    url: str


@dataclass(frozen=True)
class BootstrapResult:
    admin_user_id: str
    admin_project_id: str
    created_admin: bool


SERVICE_USER = "kumo"
SERVICE_PROJECT = "service"
#: Options that keep Kumo's own users (admin, the service user) from being locked out by rules meant for people.
MACHINE_USER_OPTIONS = {"ignore_change_password_upon_first_use": True, "ignore_password_expiry": True,
                        "ignore_lockout_failure_attempts": True}


async def bootstrap_identity(identity: IdentityService, admin_password: str, region: str,
                             entries: list[CatalogEntry], service_password: str | None = None) -> BootstrapResult:
    store = identity.store
    async with store.db.session() as s:
        if await s.get(Domain, DEFAULT_DOMAIN_ID) is None:
            s.add(Domain(id=DEFAULT_DOMAIN_ID, name="Default", description="The default domain", enabled=True,
                         extra={}))
            log.info("bootstrap: created domain Default")
        roles: dict[str, Role] = {}
        for name in ("admin", "member", "reader", "service"):
            role = await s.scalar(select(Role).where(Role.name == name, Role.domain_id == ""))
            if role is None:
                role = Role(name=name, domain_id="", options={"immutable": True})
                s.add(role)
                log.info("bootstrap: created role %s", name)
            roles[name] = role
        await s.flush()
        for prior, implied in (("admin", "member"), ("member", "reader")):
            if await s.get(ImpliedRole, (roles[prior].id, roles[implied].id)) is None:
                s.add(ImpliedRole(prior_role_id=roles[prior].id, implied_role_id=roles[implied].id))
        projects: dict[str, Project] = {}
        for name in ("admin", "service"):
            project = await s.scalar(select(Project).where(Project.name == name,
                                                           Project.domain_id == DEFAULT_DOMAIN_ID))
            if project is None:
                project = Project(name=name, domain_id=DEFAULT_DOMAIN_ID, description=f"Bootstrap project {name}",
                                  enabled=True, tags=[], extra={})
                s.add(project)
                log.info("bootstrap: created project %s", name)
            projects[name] = project
        if await s.get(Region, region) is None:
            s.add(Region(id=region, description="", extra={}))
        await s.flush()
        admin = await s.scalar(select(User).where(User.name == "admin", User.domain_id == DEFAULT_DOMAIN_ID))
        service_user = await s.scalar(select(User).where(User.name == SERVICE_USER,
                                                         User.domain_id == DEFAULT_DOMAIN_ID))
        await _sync_catalog(s, region, entries)
        await store.bump_revision(s)
        admin_project_id = projects["admin"].id
    created = admin is None
    if admin is None:
        # The cloud's own admin must never be locked out by security-compliance
        # rules meant for people (Keystone's docs advise the same options).
        user = await identity.users.create({"name": "admin", "password": admin_password, "domain_id": DEFAULT_DOMAIN_ID,
                                            "default_project_id": admin_project_id,
                                            "options": dict(MACHINE_USER_OPTIONS)})
        admin_id = user["id"]
        log.info("bootstrap: created user admin")
    else:
        admin_id = admin.id
    await identity.roles.grant("user", admin_id, "project", admin_project_id, roles["admin"].id)
    await identity.roles.grant("user", admin_id, "system", SYSTEM_TARGET, roles["admin"].id)
    if service_password is not None:
        await _service_user(identity, service_user, service_password, projects[SERVICE_PROJECT].id,
                            [roles["admin"].id, roles["service"].id])
    await store.changed()
    return BootstrapResult(admin_user_id=admin_id, admin_project_id=admin_project_id, created_admin=created)


async def _service_user(identity: IdentityService, existing: User | None, password: str, project_id: str,
                        role_ids: list[str]) -> None:
    """Kumo's service user (devstack's ``nova``/``neutron`` users): admin and service on the ``service`` project.

    Its password follows the configuration, so a changed ``service_password``
    takes effect at the next start.
    """
    if existing is None:
        user = await identity.users.create({"name": SERVICE_USER, "password": password,
                                            "domain_id": DEFAULT_DOMAIN_ID, "default_project_id": project_id,
                                            "options": dict(MACHINE_USER_OPTIONS)})
        user_id = user["id"]
        log.info("bootstrap: created service user %s", SERVICE_USER)
    else:
        user_id = existing.id
        async with identity.store.db.session() as s:
            current = await identity.users.current_password(s, user_id)
        if current is None or not await identity.store.hasher.verify(current.hash, password):
            await identity.users.update(user_id, {"password": password})
    for role_id in role_ids:
        await identity.roles.grant("user", user_id, "project", project_id, role_id)


async def _sync_catalog(s, region: str, entries: list[CatalogEntry]) -> None:  # type: ignore[no-untyped-def]
    for entry in entries:
        service = await s.scalar(select(CatalogService).where(CatalogService.type == entry.type))
        if service is None:
            service = CatalogService(type=entry.type, name=entry.name, description="", enabled=True, extra={})
            s.add(service)
            await s.flush()
            log.info("bootstrap: registered service %s (%s)", entry.name, entry.type)
        for interface in ("public", "internal", "admin"):
            endpoint = await s.scalar(select(Endpoint).where(Endpoint.service_id == service.id,
                                                             Endpoint.interface == interface,
                                                             Endpoint.region_id == region))
            if endpoint is None:
                s.add(Endpoint(service_id=service.id, interface=interface, url=entry.url, region_id=region,
                               enabled=True, extra={}))
            elif endpoint.url != entry.url:
                endpoint.url = entry.url
