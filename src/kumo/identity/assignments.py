"""``GET /v3/role_assignments``: list grants, optionally as their effect on users.

Matches Keystone's semantics: filters ``user.id``, ``group.id``, ``role.id``,
``scope.project.id``, ``scope.domain.id``, ``scope.system``,
``scope.OS-INHERIT:inherited_to``; ``effective`` expands group grants into
their members, inherited grants onto the projects they reach and roles into
the roles they imply; ``include_names`` adds names (what
``openstack role assignment list --names`` shows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core import errors
from kumo.identity.filters import parse_bool
from kumo.identity.models import Assignment, Domain, Group, ImpliedRole, Membership, Project, Role, User
from kumo.identity.store import IdentityStore


@dataclass(frozen=True)
class Grant:
    actor: str          # "user" | "group"
    actor_id: str
    target: str         # "project" | "domain" | "system"
    target_id: str
    role_id: str
    inherited: bool
    via_group: str | None = None
    prior_role: str | None = None
    source: str | None = None  # the grant's own path when this entry was derived from it

    def path(self) -> str:
        """The grant's API path, as Keystone's ``links.assignment`` shows it."""
        if self.source:
            return self.source
        target_path = "system" if self.target == "system" else f"{self.target}s/{self.target_id}"
        prefix, suffix = ("/OS-INHERIT", "/inherited_to_projects") if self.inherited else ("", "")
        return f"{prefix}/{target_path}/{self.actor}s/{self.actor_id}/roles/{self.role_id}{suffix}"


def _grant(row: Assignment) -> Grant:
    actor = "user" if row.type.startswith("User") else "group"
    target = row.type[len(actor):].lower()
    return Grant(actor, row.actor_id, target, row.target_id, row.role_id, row.inherited)


class AssignmentQuery:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    async def list(self, query: Mapping[str, str], base_url: str) -> list[dict[str, Any]]:
        effective = "effective" in query and parse_bool(query["effective"] or "true")
        include_names = "include_names" in query and parse_bool(query["include_names"] or "true")
        if effective and "group.id" in query:
            raise errors.ValidationError("Combining effective and group filter will always result in an empty list.")
        async with self.store.db.session() as s:
            grants = [_grant(r) for r in await s.scalars(select(Assignment))]
            if effective:
                grants = await self._effective(s, grants)
            grants = [g for g in grants if self._matches(g, query, effective)]
            names = await self._names(s) if include_names else None
        grants.sort(key=lambda g: (g.actor, g.actor_id, g.target, g.target_id, g.role_id))
        return [self._render(g, names, base_url) for g in grants]

    @staticmethod
    def _matches(g: Grant, query: Mapping[str, str], effective: bool) -> bool:
        if "user.id" in query and not (g.actor == "user" and g.actor_id == query["user.id"]):
            return False
        if "group.id" in query and not (g.actor == "group" and g.actor_id == query["group.id"]):
            return False
        if "role.id" in query and g.role_id != query["role.id"]:
            return False
        if "scope.project.id" in query and not (g.target == "project" and g.target_id == query["scope.project.id"]):
            return False
        if "scope.domain.id" in query and not (g.target == "domain" and g.target_id == query["scope.domain.id"]):
            return False
        if "scope.system" in query and g.target != "system":
            return False
        if "scope.OS-INHERIT:inherited_to" in query and not g.inherited:
            return False
        return True

    async def _effective(self, s: AsyncSession, grants: list[Grant]) -> list[Grant]:
        members: dict[str, list[str]] = {}
        for m in await s.scalars(select(Membership)):
            members.setdefault(m.group_id, []).append(m.user_id)
        projects = list(await s.scalars(select(Project)))
        children: dict[str, list[str]] = {}
        for p in projects:
            children.setdefault(p.parent_id or f"domain:{p.domain_id}", []).append(p.id)
        implies: dict[str, list[str]] = {}
        for rule in await s.scalars(select(ImpliedRole)):
            implies.setdefault(rule.prior_role_id, []).append(rule.implied_role_id)

        def below(key: str) -> list[str]:
            found, frontier = [], list(children.get(key, []))
            while frontier:
                pid = frontier.pop()
                found.append(pid)
                frontier.extend(children.get(pid, []))
            return found

        out: list[Grant] = []
        for g in grants:
            g = replace(g, source=g.path())
            expanded = [g]
            if g.inherited:
                key = f"domain:{g.target_id}" if g.target == "domain" else g.target_id
                expanded = [replace(g, target="project", target_id=pid, inherited=False) for pid in below(key)]
            if g.actor == "group":
                expanded = [replace(e, actor="user", actor_id=uid, via_group=g.actor_id)
                            for e in expanded for uid in members.get(g.actor_id, [])]
            for e in expanded:
                out.append(e)
                seen, frontier = {e.role_id}, [e.role_id]
                while frontier:
                    for implied in implies.get(frontier.pop(), []):
                        if implied not in seen:
                            seen.add(implied)
                            frontier.append(implied)
                            out.append(replace(e, role_id=implied, prior_role=e.role_id))
        return list(dict.fromkeys(out))

    async def _names(self, s: AsyncSession) -> dict[str, dict[str, Any]]:
        names: dict[str, dict[str, Any]] = {}
        domains = {d.id: d.name for d in await s.scalars(select(Domain))}
        for d_id, d_name in domains.items():
            names[f"domain:{d_id}"] = {"id": d_id, "name": d_name}
        for model, kind in ((User, "user"), (Group, "group"), (Project, "project")):
            for row in await s.scalars(select(model)):
                names[f"{kind}:{row.id}"] = {"id": row.id, "name": row.name,
                                             "domain": {"id": row.domain_id, "name": domains.get(row.domain_id)}}
        for role in await s.scalars(select(Role)):
            entry: dict[str, Any] = {"id": role.id, "name": role.name}
            if role.domain_id:
                entry["domain"] = {"id": role.domain_id, "name": domains.get(role.domain_id)}
            names[f"role:{role.id}"] = entry
        return names

    @staticmethod
    def _render(g: Grant, names: dict[str, dict[str, Any]] | None, base_url: str) -> dict[str, Any]:
        def ref(kind: str, ident: str) -> dict[str, Any]:
            if names is None:
                return {"id": ident}
            return names.get(f"{kind}:{ident}", {"id": ident})

        scope: dict[str, Any]
        if g.target == "system":
            scope = {"system": {"all": True}}
        else:
            scope = {g.target: ref(g.target, g.target_id)}
        if g.inherited:
            scope["OS-INHERIT:inherited_to"] = "projects"
        links: dict[str, str] = {"assignment": f"{base_url}/v3{g.path()}"}
        if g.via_group:
            links["membership"] = f"{base_url}/v3/groups/{g.via_group}/users/{g.actor_id}"
        if g.prior_role:
            links["prior_role"] = f"{base_url}/v3/roles/{g.prior_role}"
        entry: dict[str, Any] = {"role": ref("role", g.role_id), "scope": scope, "links": links,
                                 g.actor: ref(g.actor, g.actor_id)}
        return entry

