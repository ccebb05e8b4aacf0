"""The real ``openstack`` CLI against a live ``kumo up``: identity.

Each client process costs ~1.5 s of start-up, so related commands run in
one process (``kumo.osc_batch``); commands whose failure is the point, or
that need another cloud entry, run on their own (``kumo.osc``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import KumoProcess, OscResult, concurrently, unique, write_clouds_yaml

pytestmark = pytest.mark.e2e


def by(rows: list[dict], key: str, value: str) -> dict:
    matches = [r for r in rows if r[key] == value]
    assert len(matches) == 1, f"{key}={value!r}: {matches} in {rows}"
    return matches[0]


def names(rows: list[dict], key: str = "Name") -> set[str]:
    return {r[key] for r in rows}


def assert_failed(result: OscResult, *needles: str) -> None:
    assert result.returncode != 0, str(result)
    for needle in needles:
        assert needle in result.stderr, str(result)


@dataclass
class Member:
    """A non-admin user with the member role on its own project, and a clouds.yaml holding its cloud."""

    name: str
    password: str
    project: str
    project_id: str
    user_id: str
    clouds_yaml: Path
    cloud: str = "member"


def member_cloud(kumo: KumoProcess, path: Path, user: str, password: str, project: str, cloud: str = "member") -> Path:
    return write_clouds_yaml(path, {cloud: {
        "auth": {"auth_url": kumo.auth_url, "username": user, "password": password, "user_domain_name": "Default",
                 "project_name": project, "project_domain_name": "Default"},
        "region_name": "RegionOne", "interface": "public", "identity_api_version": 3}})


@pytest.fixture(scope="module")
def members(kumo: KumoProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Member]:
    """Two members of one new project: ``alice`` (read-only checks) and ``bob`` (changes his password)."""
    project = unique("e2e-members")
    alice, bob = unique("alice"), unique("bob")
    out = kumo.osc_batch(
        ["project", "create", "--description", "e2e-members", project],
        ["user", "create", "--password", "alice-pw-1", "--project", project, alice],
        ["user", "create", "--password", "bob-pw-1", "--project", project, bob],
        ["role", "add", "--user", alice, "--project", project, "member"],
        ["role", "add", "--user", bob, "--project", project, "member"],
    )
    tmp = tmp_path_factory.mktemp("members")
    return {
        "alice": Member(alice, "alice-pw-1", project, out[0]["id"], out[1]["id"],
                        member_cloud(kumo, tmp / "alice.yaml", alice, "alice-pw-1", project)),
        "bob": Member(bob, "bob-pw-1", project, out[0]["id"], out[2]["id"],
                      member_cloud(kumo, tmp / "bob.yaml", bob, "bob-pw-1", project)),
    }


def test_token_issue(kumo: KumoProcess) -> None:
    token = kumo.osc("token", "issue")
    assert token["id"].startswith("gAAAAA")  # a Fernet token
    assert token["expires"] and len(token["user_id"]) == 32 and len(token["project_id"]) == 32


def test_project_lifecycle(kumo: KumoProcess) -> None:
    name = unique("e2e-proj")
    created, listed, shown, _, disabled, _, enabled, _, after = kumo.osc_batch(
        ["project", "create", "--description", "first-words", name],
        ["project", "list"],
        ["project", "show", name],
        ["project", "set", "--description", "second-words", "--disable", name],
        ["project", "show", name],
        ["project", "set", "--enable", name],
        ["project", "show", name],
        ["project", "delete", name],
        ["project", "list"],
    )
    assert created["name"] == name and created["description"] == "first-words"
    assert created["enabled"] is True and created["domain_id"] == "default" and created["is_domain"] is False
    assert by(listed, "Name", name)["ID"] == created["id"]
    assert {"admin", "service"} <= names(listed)
    assert shown["id"] == created["id"] and shown["description"] == "first-words"
    assert disabled["enabled"] is False and disabled["description"] == "second-words"
    assert enabled["enabled"] is True and enabled["description"] == "second-words"
    assert name not in names(after)


def test_user_lifecycle(kumo: KumoProcess) -> None:
    project, name = unique("e2e-uproj"), unique("e2e-user")
    proj, created, listed, shown, _, changed, _, after, _ = kumo.osc_batch(
        ["project", "create", project],
        ["user", "create", "--password", "pw-one", "--project", project, "--email", "u@example.com",
         "--description", "a-user", name],
        ["user", "list"],
        ["user", "show", name],
        ["user", "set", "--email", "v@example.com", "--description", "changed", "--disable", name],
        ["user", "show", name],
        ["user", "delete", name],
        ["user", "list"],
        ["project", "delete", project],
    )
    assert created["name"] == name and created["domain_id"] == "default" and created["enabled"] is True
    assert created["default_project_id"] == proj["id"] and created["email"] == "u@example.com"
    assert "password" not in created
    assert by(listed, "Name", name)["ID"] == created["id"]
    assert "admin" in names(listed)
    assert shown["id"] == created["id"] and shown["description"] == "a-user"
    assert changed["email"] == "v@example.com" and changed["description"] == "changed"
    assert changed["enabled"] is False
    assert name not in names(after)


def test_group_lifecycle_and_membership(kumo: KumoProcess) -> None:
    group, renamed, user = unique("e2e-group"), unique("e2e-group2"), unique("e2e-guser")
    (created_user, created, listed, shown, _, renamed_shown, _, contains, members, _, members_after,
     _, _, after) = kumo.osc_batch(
        ["user", "create", "--password", "pw", user],
        ["group", "create", "--description", "a-group", group],
        ["group", "list"],
        ["group", "show", group],
        ["group", "set", "--name", renamed, "--description", "renamed-group", group],
        ["group", "show", renamed],
        ["group", "add", "user", renamed, user],
        ["group", "contains", "user", renamed, user],
        ["user", "list", "--group", renamed],
        ["group", "remove", "user", renamed, user],
        ["user", "list", "--group", renamed],
        ["group", "delete", renamed],
        ["user", "delete", user],
        ["group", "list"],
    )
    assert created["name"] == group and created["description"] == "a-group" and created["domain_id"] == "default"
    assert by(listed, "Name", group)["ID"] == created["id"]
    assert shown["id"] == created["id"]
    assert renamed_shown["id"] == created["id"] and renamed_shown["description"] == "renamed-group"
    assert contains == f"{user} in group {renamed}"
    assert [m["ID"] for m in members] == [created_user["id"]]
    assert members_after == []
    assert renamed not in names(after) and group not in names(after)


def test_role_lifecycle(kumo: KumoProcess) -> None:
    role, renamed = unique("e2e-role"), unique("e2e-role2")
    created, listed, shown, _, renamed_shown, _, after, implied = kumo.osc_batch(
        ["role", "create", "--description", "a-role", role],
        ["role", "list"],
        ["role", "show", role],
        ["role", "set", "--name", renamed, role],
        ["role", "show", renamed],
        ["role", "delete", renamed],
        ["role", "list"],
        ["implied", "role", "list"],
    )
    assert created["name"] == role and created["description"] == "a-role" and created["domain_id"] is None
    assert by(listed, "Name", role)["ID"] == created["id"]
    assert {"admin", "member", "reader"} <= names(listed)
    assert shown["id"] == created["id"]
    assert renamed_shown["id"] == created["id"] and renamed_shown["name"] == renamed
    assert not {role, renamed} & names(after)
    # Bootstrap's inference rules, as Keystone's: admin implies member implies reader.
    pairs = {(r["Prior Role Name"], r["Implied Role Name"]) for r in implied}
    assert {("admin", "member"), ("member", "reader")} <= pairs


def test_role_assignments(kumo: KumoProcess) -> None:
    project, user, group, role = unique("e2e-aproj"), unique("e2e-auser"), unique("e2e-agroup"), unique("e2e-arole")
    out = kumo.osc_batch(
        ["project", "create", project],
        ["user", "create", "--password", "pw", user],
        ["group", "create", group],
        ["role", "create", role],
        ["group", "add", "user", group, user],
        ["role", "add", "--user", user, "--project", project, "member"],
        ["role", "add", "--group", group, "--project", project, role],
        ["role", "assignment", "list", "--names", "--user", user],
        ["role", "assignment", "list", "--effective", "--names", "--user", user],
        ["role", "assignment", "list", "--names", "--project", project],
        ["role", "assignment", "list", "--effective", "--names"],
        ["role", "remove", "--user", user, "--project", project, "member"],
        ["role", "assignment", "list", "--user", user],
        ["user", "delete", user],
        ["group", "delete", group],
        ["role", "delete", role],
        ["project", "delete", project],
    )
    direct, effective, on_project, everything, after_remove = out[7], out[8], out[9], out[10], out[12]
    assert direct == [{"Role": "member", "User": f"{user}@Default", "Group": "", "Project": f"{project}@Default",
                       "Domain": "", "System": "", "Inherited": False}]
    # Effective: the direct grant, the role it implies, and the group's grant, all as the user's.
    assert sorted((r["Role"], r["User"], r["Group"], r["Project"]) for r in effective) == sorted([
        ("member", f"{user}@Default", "", f"{project}@Default"),
        ("reader", f"{user}@Default", "", f"{project}@Default"),
        (role, f"{user}@Default", "", f"{project}@Default"),
    ])
    assert sorted((r["Role"], r["User"], r["Group"]) for r in on_project) == sorted([
        ("member", f"{user}@Default", ""), (role, "", f"{group}@Default")])
    admin_rows = {(r["Role"], r["Project"], r["System"]) for r in everything if r["User"] == "admin@Default"}
    assert {("admin", "admin@Default", ""), ("member", "admin@Default", ""), ("reader", "admin@Default", ""),
            ("admin", "", "all")} <= admin_rows
    assert all(r["Group"] == "" for r in everything), "effective assignments name users, never groups"
    assert after_remove == []


def test_catalog_endpoints_services_regions(kumo: KumoProcess) -> None:
    catalog, endpoints, services, regions = kumo.osc_batch(
        ["catalog", "list"], ["endpoint", "list"], ["service", "list"], ["region", "list"])
    identity = by(catalog, "Type", "identity")
    assert identity["Name"] == "keystone"
    assert {e["interface"] for e in identity["Endpoints"]} == {"public", "internal", "admin"}
    assert all(e["url"] == kumo.auth_url and e["region"] == "RegionOne" for e in identity["Endpoints"])
    ident_eps = [e for e in endpoints if e["Service Type"] == "identity"]
    assert len(ident_eps) == 3
    assert {e["Interface"] for e in ident_eps} == {"public", "internal", "admin"}
    assert all(e["URL"] == kumo.auth_url and e["Region"] == "RegionOne" and e["Enabled"] for e in ident_eps)
    assert by(services, "Type", "identity")["Name"] == "keystone"
    assert "RegionOne" in names(regions, "Region")


def test_non_admin_cannot_create_user(kumo: KumoProcess, members: dict[str, Member]) -> None:
    alice = members["alice"]
    result = kumo.osc("user", "create", "--password", "x", unique("e2e-nope"), cloud=alice.cloud,
                      config=alice.clouds_yaml, check=False)
    assert_failed(result, "You are not authorized")
    assert "403" in result.stderr


def test_application_credential(kumo: KumoProcess, members: dict[str, Member], tmp_path: Path) -> None:
    alice, name = members["alice"], unique("e2e-appcred")
    cred = kumo.osc("application", "credential", "create", "--description", "for e2e", name,
                    cloud=alice.cloud, config=alice.clouds_yaml)
    assert cred["Name"] == name and cred["Description"] == "for e2e"
    assert cred["Secret"] and len(cred["Secret"]) >= 16  # shown once, at creation
    assert cred["Project ID"] == alice.project_id and "member" in str(cred["Roles"])
    config = write_clouds_yaml(tmp_path / "appcred.yaml", {"kumo-appcred": {
        "auth_type": "v3applicationcredential",
        "auth": {"auth_url": kumo.auth_url, "application_credential_id": cred["ID"],
                 "application_credential_secret": cred["Secret"]},
        "region_name": "RegionOne", "interface": "public", "identity_api_version": 3}})
    bad = tmp_path / "bad.yaml"  # the same credential with a wrong secret
    bad.write_text(config.read_text().replace(cred["Secret"], "not-the-secret"))
    (token, project), refused = concurrently(
        lambda: kumo.osc_batch(["token", "issue"], ["project", "show", alice.project_id],
                               cloud="kumo-appcred", config=config),
        lambda: kumo.osc("token", "issue", cloud="kumo-appcred", config=bad, check=False))
    assert token["user_id"] == alice.user_id and token["project_id"] == alice.project_id
    assert project["name"] == alice.project
    assert_failed(refused, "401")


def test_token_revoke(kumo: KumoProcess, tmp_path: Path) -> None:
    token = kumo.osc("token", "issue")["id"]
    config = write_clouds_yaml(tmp_path / "token.yaml", {"by-token": {
        "auth_type": "admin_token", "auth": {"endpoint": kumo.auth_url, "token": token},
        "region_name": "RegionOne", "identity_api_version": 3}})
    projects, _ = kumo.osc_batch(["project", "list"], ["token", "revoke", token], cloud="by-token", config=config)
    assert "admin" in names(projects)
    assert_failed(kumo.osc("project", "list", cloud="by-token", config=config, check=False), "401")


def test_user_changes_own_password(kumo: KumoProcess, members: dict[str, Member], tmp_path: Path) -> None:
    bob = members["bob"]
    kumo.osc("user", "password", "set", "--password", "bob-pw-2", "--original-password", bob.password,
             cloud=bob.cloud, config=bob.clouds_yaml)
    new = member_cloud(kumo, tmp_path / "new.yaml", bob.name, "bob-pw-2", bob.project)
    with_new, with_old = concurrently(
        lambda: kumo.osc("token", "issue", cloud="member", config=new),
        lambda: kumo.osc("token", "issue", cloud=bob.cloud, config=bob.clouds_yaml, check=False))
    assert with_new["user_id"] == bob.user_id and with_new["project_id"] == bob.project_id
    assert_failed(with_old, "401")
