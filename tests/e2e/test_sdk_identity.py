"""openstacksdk (in-process) against a live ``kumo up``: identity.

``conn`` is ``openstack.connect(cloud="kumo")`` with ``OS_CLIENT_CONFIG_FILE``
pointing at the clouds.yaml ``kumo up`` wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openstack
import openstack.exceptions
import pytest
from e2e_support import KumoProcess, unique

pytestmark = [
    pytest.mark.e2e,
    # openstacksdk warns about its own future removals on every call; they say nothing about Kumo.
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]


def connect_as(kumo: KumoProcess, **auth: Any) -> openstack.connection.Connection:
    """A connection from explicit auth arguments (no clouds.yaml)."""
    return openstack.connect(auth_url=kumo.auth_url, user_domain_name="Default", project_domain_name="Default",
                             region_name="RegionOne", interface="public", identity_api_version="3",
                             load_yaml_config=False, load_envvars=False, **auth)


@pytest.fixture(scope="module")
def member(kumo: KumoProcess, conn) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A user with only the member role on its own project."""
    project = conn.identity.create_project(name=unique("sdk-mproj"), domain_id="default")
    user = conn.identity.create_user(name=unique("sdk-member"), password="member-pw", domain_id="default",
                                     default_project_id=project.id)
    conn.identity.assign_project_role_to_user(project, user, conn.identity.find_role("member", ignore_missing=False))
    yield {"project": project, "user": user, "password": "member-pw"}
    conn.identity.delete_user(user)
    conn.identity.delete_project(project)


def test_auth_token_and_validate(conn) -> None:  # type: ignore[no-untyped-def]
    token = conn.auth_token
    assert token.startswith("gAAAAA")
    assert conn.current_project_id == conn.identity.find_project("admin", ignore_missing=False).id
    assert conn.identity.validate_token(token).user["name"] == "admin"


def test_project_crud(conn) -> None:  # type: ignore[no-untyped-def]
    name = unique("sdk-proj")
    project = conn.identity.create_project(name=name, description="from the sdk", domain_id="default")
    assert project.id and project.name == name and project.is_enabled is True and project.domain_id == "default"
    assert project.id in {p.id for p in conn.identity.projects()}
    assert [p.id for p in conn.identity.projects(name=name)] == [project.id]
    found = conn.identity.find_project(name, ignore_missing=False)
    assert found.id == project.id and found.description == "from the sdk"
    updated = conn.identity.update_project(project, description="changed", is_enabled=False)
    assert updated.description == "changed" and updated.is_enabled is False
    again = conn.identity.get_project(project.id)
    assert again.description == "changed" and again.is_enabled is False
    conn.identity.delete_project(project, ignore_missing=False)
    assert conn.identity.find_project(name) is None
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.identity.get_project(project.id)


def test_user_crud(conn) -> None:  # type: ignore[no-untyped-def]
    name = unique("sdk-user")
    user = conn.identity.create_user(name=name, password="pw-1", email="sdk@example.com", domain_id="default")
    assert user.id and user.name == name and user.is_enabled is True and user.email == "sdk@example.com"
    assert user.password is None or user.password == "pw-1"  # never echoed back by the server
    assert conn.identity.find_user(name, ignore_missing=False).id == user.id
    assert user.id in {u.id for u in conn.identity.users()}
    updated = conn.identity.update_user(user, email="new@example.com", is_enabled=False)
    assert updated.email == "new@example.com" and updated.is_enabled is False
    conn.identity.delete_user(user, ignore_missing=False)
    assert conn.identity.find_user(name) is None


def test_group_membership(conn) -> None:  # type: ignore[no-untyped-def]
    group = conn.identity.create_group(name=unique("sdk-group"), description="sdk", domain_id="default")
    user = conn.identity.create_user(name=unique("sdk-guser"), password="pw", domain_id="default")
    other = conn.identity.create_user(name=unique("sdk-other"), password="pw", domain_id="default")
    try:
        assert group.id in {g.id for g in conn.identity.groups()}
        conn.identity.add_user_to_group(user, group)
        assert conn.identity.check_user_in_group(user, group) is True
        assert conn.identity.check_user_in_group(other, group) is False
        assert [u.id for u in conn.identity.group_users(group)] == [user.id]
        conn.identity.remove_user_from_group(user, group)
        assert conn.identity.check_user_in_group(user, group) is False
    finally:
        conn.identity.delete_user(user)
        conn.identity.delete_user(other)
        conn.identity.delete_group(group)
    assert conn.identity.find_group(group.name) is None


def test_roles_and_assignments(conn) -> None:  # type: ignore[no-untyped-def]
    role = conn.identity.create_role(name=unique("sdk-role"), description="sdk role")
    project = conn.identity.create_project(name=unique("sdk-aproj"), domain_id="default")
    user = conn.identity.create_user(name=unique("sdk-auser"), password="pw", domain_id="default")
    try:
        assert role.id in {r.id for r in conn.identity.roles()}
        assert {"admin", "member", "reader"} <= {r.name for r in conn.identity.roles()}
        conn.identity.assign_project_role_to_user(project, user, role)
        member = conn.identity.find_role("member", ignore_missing=False)
        conn.grant_role(member.id, user=user.id, project=project.id)  # the cloud layer
        assert conn.identity.validate_user_has_project_role(project, user, role) is True
        rows = list(conn.identity.role_assignments(user_id=user.id))
        assert sorted((r.role["id"], r.scope["project"]["id"]) for r in rows) == sorted(
            [(role.id, project.id), (member.id, project.id)])
        assert all(r.user["id"] == user.id for r in rows)
        named = list(conn.identity.role_assignments(user_id=user.id, include_names=True))
        assert {r.role["name"] for r in named} == {role.name, "member"}
        assert all(r.user["name"] == user.name and r.scope["project"]["name"] == project.name for r in named)
        effective = list(conn.identity.role_assignments(user_id=user.id, effective=True))
        reader = conn.identity.find_role("reader", ignore_missing=False)
        assert {r.role["id"] for r in effective} == {role.id, member.id, reader.id}
        on_project = conn.list_role_assignments(filters={"project": project.id})
        assert {a.role["id"] for a in on_project} == {role.id, member.id}
        conn.identity.unassign_project_role_from_user(project, user, role)
        assert conn.identity.validate_user_has_project_role(project, user, role) is False
    finally:
        conn.identity.delete_user(user)
        conn.identity.delete_project(project)
        conn.identity.delete_role(role)
    assert conn.identity.find_role(role.name) is None


def test_catalog(conn, kumo: KumoProcess) -> None:  # type: ignore[no-untyped-def]
    services = list(conn.identity.services())
    identity = [s for s in services if s.type == "identity"]
    assert len(identity) == 1 and identity[0].name == "keystone"
    endpoints = [e for e in conn.identity.endpoints() if e.service_id == identity[0].id]
    assert sorted(e.interface for e in endpoints) == ["admin", "internal", "public"]
    assert all(e.url == kumo.auth_url and e.region_id == "RegionOne" and e.is_enabled for e in endpoints)
    assert "RegionOne" in {r.id for r in conn.identity.regions()}
    assert conn.endpoint_for("identity").rstrip("/") == kumo.auth_url


def test_application_credential(kumo: KumoProcess, member: dict[str, Any]) -> None:
    with connect_as(kumo, username=member["user"].name, password=member["password"],
                    project_name=member["project"].name) as mine:
        user_id = mine.current_user_id
        name = unique("sdk-appcred")
        cred = mine.identity.create_application_credential(user_id, name=name, description="sdk")
        assert cred.id and cred.name == name and cred.secret and cred.project_id == member["project"].id
        # Without explicit roles it gets the token's roles, implied ones included (as Keystone).
        assert {r["name"] for r in cred.roles} == {"member", "reader"}
        assert cred.id in {c.id for c in mine.identity.application_credentials(user_id)}
        shown = mine.identity.get_application_credential(user_id, cred.id)
        assert shown.secret is None  # shown once, at creation
    with openstack.connect(auth_type="v3applicationcredential", auth_url=kumo.auth_url,
                           application_credential_id=cred.id, application_credential_secret=cred.secret,
                           region_name="RegionOne", load_yaml_config=False, load_envvars=False) as by_cred:
        assert by_cred.auth_token
        assert by_cred.current_user_id == user_id and by_cred.current_project_id == member["project"].id
        assert by_cred.identity.get_project(member["project"].id).name == member["project"].name


def test_member_is_forbidden_to_create_users(kumo: KumoProcess, member: dict[str, Any]) -> None:
    with connect_as(kumo, username=member["user"].name, password=member["password"],
                    project_name=member["project"].name) as mine:
        with pytest.raises(openstack.exceptions.ForbiddenException) as caught:
            mine.identity.create_user(name=unique("sdk-nope"), password="x", domain_id="default")
        assert caught.value.status_code == 403
        assert "You are not authorized" in str(caught.value)


def test_bad_password_is_unauthorized(kumo: KumoProcess) -> None:
    with (connect_as(kumo, username="admin", password="not-the-password", project_name="admin") as bad,
          pytest.raises(openstack.exceptions.SDKException, match=r"HTTP 401")):
        bad.authorize()
