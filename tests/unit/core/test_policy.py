"""Unit tests for kumo.core.policy and the shipped policy.yaml."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kumo.core.errors import PolicyDenied
from kumo.core.policy import DEFAULT_POLICY_PATH, Enforcer


def creds(**kw):
    base = {"user_id": "u1", "project_id": "p1", "domain_id": None, "system_scope": None, "roles": []}
    base.update(kw)
    return base


def allowed(rule: str, c=None, target=None, **extra_rules) -> bool:
    return Enforcer({"act": rule, **extra_rules}).check("act", c or creds(), target)


# ----------------------------------------------------------------- language


@pytest.mark.parametrize(
    "rule,expected",
    [
        ("", True),
        ("   ", True),
        ("@", True),
        ("!", False),
        ("True", True),
        ("False", False),
        ("not @", False),
        ("not not @", True),
        # and binds tighter than or
        ("@ or ! and !", True),
        ("! and ! or @", True),
        ("(@ or !) and !", False),
        # not binds tighter than and
        ("not ! and @", True),
        ("not (! or @)", False),
        ("((@))", True),
        ("@ AND @", True),
    ],
)
def test_precedence_and_constants(rule, expected):
    assert allowed(rule) is expected


def test_role_check_is_case_insensitive():
    c = creds(roles=["Admin", "member"])
    assert allowed("role:admin", c)
    assert allowed("role:ADMIN", c)
    assert allowed("role:Member", c)
    assert not allowed("role:reader", c)
    assert not allowed("role:admin", creds(roles=None))


def test_generic_credential_checks():
    c = creds(system_scope="all", domain_id="d1", groups=["g1", "g2"])
    assert allowed("system_scope:all", c)
    assert allowed("domain_id:d1", c)
    assert allowed("user_id:u1 and project_id:p1", c)
    assert allowed("groups:g2", c)  # list-valued credential: membership
    assert not allowed("groups:g3", c)
    assert not allowed("project_id:p2", c)
    assert not allowed("unknown_attr:x", c)
    assert allowed("user_id:'u1'", c)  # quoted literal


def test_none_never_matches():
    # An unscoped token against a target without project must not pass.
    c = creds(project_id=None)
    assert not allowed("project_id:%(target.project_id)s", c, {"target": {"project_id": None}})
    assert not allowed("project_id:None", c)


def test_substitution_nested_and_flat():
    rule = "user_id:%(target.user.id)s"
    assert allowed(rule, target={"target": {"user": {"id": "u1"}}})
    assert allowed(rule, target={"target.user.id": "u1"})
    assert not allowed(rule, target={"target": {"user": {"id": "u2"}}})
    # flat key wins over the nested walk
    assert allowed(rule, target={"target.user.id": "u1", "target": {"user": {"id": "u2"}}})


def test_substitution_compares_as_strings_and_roles():
    assert allowed("project_id:%(n)s", creds(project_id="42"), {"n": 42})
    assert allowed("role:%(target.role)s", creds(roles=["member"]), {"target": {"role": "MEMBER"}})
    assert allowed("project_id:x-%(a)s", creds(project_id="x-1"), {"a": "1"})


@pytest.mark.parametrize(
    "target",
    [None, {}, {"target": {}}, {"target": {"user": "not-a-dict"}}, {"target": {"user": {}}}, {"target": None}],
)
def test_missing_target_key_is_false_not_error(target):
    assert not allowed("user_id:%(target.user.id)s", target=target)
    assert allowed("not user_id:%(target.user.id)s", target=target)


def test_substitution_with_parentheses_in_rule():
    rule = "(role:admin or user_id:%(target.user.id)s) and not role:banned"
    t = {"target": {"user": {"id": "u1"}}}
    assert allowed(rule, creds(), t)
    assert not allowed(rule, creds(roles=["banned"]), t)
    assert allowed(rule, creds(user_id="other", roles=["admin"]), t)


def test_rule_references():
    rules = {"a": "rule:b or rule:c", "b": "role:admin", "c": "user_id:%(owner)s"}
    e = Enforcer(rules)
    assert e.check("a", creds(roles=["admin"]))
    assert e.check("a", creds(), {"owner": "u1"})
    assert not e.check("a", creds(), {"owner": "u2"})


@pytest.mark.parametrize(
    "rules",
    [
        {"a": "rule:a"},
        {"a": "rule:b", "b": "rule:c", "c": "role:x or rule:a"},
    ],
)
def test_reference_loop_raises_at_load(rules):
    with pytest.raises(ValueError, match="loop"):
        Enforcer(rules)


def test_undefined_reference_raises_at_load():
    with pytest.raises(ValueError, match="undefined rule 'nope'"):
        Enforcer({"a": "rule:nope"})


@pytest.mark.parametrize(
    "text",
    [
        "role:admin and",
        "or role:admin",
        "(role:admin",
        "role:admin)",
        "role:admin role:member",
        "admin",
        "role:",
        ":admin",
        "not",
        "()",
        "user_id:%(target.user.id",
        "user_id:'u1",
    ],
)
def test_syntax_errors_raise_at_load_naming_the_rule(text):
    with pytest.raises(ValueError, match="my_rule"):
        Enforcer({"ok": "@", "my_rule": text})


def test_non_string_rule_rejected():
    with pytest.raises(ValueError, match="must be a string"):
        Enforcer({"a": 3})  # type: ignore[dict-item]


# ----------------------------------------------------------------- enforcer


def test_deny_by_default():
    e = Enforcer({"a": "@"})
    assert not e.check("unknown", creds())
    with pytest.raises(PolicyDenied) as exc:
        e.enforce("unknown", creds())
    assert exc.value.action == "unknown"
    assert exc.value.status == 403


def test_default_rule_applies_to_unknown_actions():
    e = Enforcer({"default": "role:admin"})
    assert e.check("anything", creds(roles=["admin"]))
    assert not e.check("anything", creds())


def test_enforce_allows_silently_and_denies_with_action():
    e = Enforcer({"a": "role:admin"})
    assert e.enforce("a", creds(roles=["admin"])) is None
    with pytest.raises(PolicyDenied, match="a"):
        e.enforce("a", creds(roles=["member"]))


def test_from_files_merges_overrides(tmp_path: Path, caplog):
    defaults = tmp_path / "policy.yaml"
    defaults.write_text(
        "# comment\n"
        'admin_required: "role:admin"\n'
        'svc:get_thing: "rule:admin_required"\n'
        'svc:delete_thing: "rule:admin_required"\n'
    )
    override = tmp_path / "override.yaml"
    override.write_text('svc:get_thing: "role:reader"\nsvc:brand_new: "@"\nsvc:flag: True\n')
    with caplog.at_level(logging.WARNING, logger="kumo.core.policy"):
        e = Enforcer.from_files(defaults, override)
    assert e.check("svc:get_thing", creds(roles=["reader"]))
    assert not e.check("svc:delete_thing", creds(roles=["reader"]))
    assert e.check("svc:brand_new", creds())
    assert e.check("svc:flag", creds())
    assert e.rules["svc:get_thing"] == "role:reader"
    assert "svc:brand_new" in caplog.text


def test_from_files_missing_or_empty_override(tmp_path: Path):
    defaults = tmp_path / "policy.yaml"
    defaults.write_text('a: "role:admin"\n')
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing overridden\n")
    for override in (None, tmp_path / "absent.yaml", empty):
        e = Enforcer.from_files(defaults, override)
        assert e.rules == {"a": "role:admin"}


def test_from_files_override_syntax_error(tmp_path: Path):
    defaults = tmp_path / "policy.yaml"
    defaults.write_text('a: "role:admin"\n')
    override = tmp_path / "override.yaml"
    override.write_text('a: "role:admin and"\n')
    with pytest.raises(ValueError, match="'a'"):
        Enforcer.from_files(defaults, override)


def test_from_files_rejects_non_mapping(tmp_path: Path):
    defaults = tmp_path / "policy.yaml"
    defaults.write_text("- role:admin\n")
    with pytest.raises(ValueError, match="mapping"):
        Enforcer.from_files(defaults)


# ------------------------------------------------------- shipped policy.yaml


@pytest.fixture(scope="module")
def shipped() -> Enforcer:
    return Enforcer.from_files(DEFAULT_POLICY_PATH)


ADMIN = creds(roles=["admin", "member", "reader"])
MEMBER = creds(roles=["member", "reader"])
READER = creds(roles=["reader"])
SYSTEM_READER = creds(project_id=None, system_scope="all", roles=["reader"])
SERVICE = creds(user_id="nova", roles=["service"])


def user_target(user_id: str) -> dict:
    return {"target": {"user": {"id": user_id}}}


EXPECTED_IDENTITY_ACTIONS = [
    f"identity:{verb}_{noun}"
    for noun in ("domain", "project", "user", "group", "role", "service", "endpoint", "region")
    for verb in ("get", "create", "update", "delete")
] + [
    f"identity:{name}"
    for name in (
        "list_domains list_projects list_users list_groups list_roles list_services list_endpoints list_regions "
        "create_implied_role get_implied_role list_implied_roles check_implied_role delete_implied_role "
        "list_role_inference_rules create_grant check_grant list_grants revoke_grant "
        "list_role_assignments list_role_assignments_for_tree get_application_credential "
        "list_application_credentials create_application_credential delete_application_credential "
        "validate_token check_token revoke_token list_user_projects list_projects_for_user "
        "get_auth_catalog get_auth_projects get_auth_domains get_auth_system list_groups_for_user "
        "list_users_in_group check_user_in_group add_user_to_group remove_user_from_group "
        "list_system_grants_for_user check_system_grant_for_user create_system_grant_for_user "
        "revoke_system_grant_for_user list_system_grants_for_group check_system_grant_for_group "
        "create_system_grant_for_group revoke_system_grant_for_group"
    ).split()
]


def test_shipped_policy_covers_identity_and_has_no_default_rule(shipped: Enforcer):
    assert "default" not in shipped.rules
    missing = [a for a in EXPECTED_IDENTITY_ACTIONS if a not in shipped.rules]
    assert missing == []
    base = ("admin_required", "reader", "system_reader", "cloud_reader", "owner", "project_member", "project_reader")
    assert all(name in shipped.rules for name in base)


def test_shipped_writes_are_admin_only(shipped: Enforcer):
    verbs = ("identity:create_", "identity:update_", "identity:delete_")
    writes = [a for a in shipped.rules if a.startswith(verbs)]
    writes.remove("identity:create_application_credential")
    writes.remove("identity:delete_application_credential")
    target = {"target": {"user": {"id": "someone-else"}}}
    for action in writes:
        assert shipped.check(action, ADMIN, target), action
        assert not shipped.check(action, MEMBER, target), action
        assert not shipped.check(action, SYSTEM_READER, target), action


def test_shipped_project_scoped_helpers(shipped: Enforcer):
    own = {"target": {"project_id": "p1"}}
    assert shipped.check("project_member", MEMBER, own)
    assert not shipped.check("project_member", READER, own)
    assert shipped.check("project_reader", READER, own)
    assert not shipped.check("project_reader", READER, {"target": {"project_id": "p2"}})


def test_shipped_create_user(shipped: Enforcer):
    assert shipped.check("identity:create_user", ADMIN)
    assert not shipped.check("identity:create_user", MEMBER)
    assert not shipped.check("identity:create_user", READER)
    assert not shipped.check("identity:create_user", SYSTEM_READER)
    with pytest.raises(PolicyDenied):
        shipped.enforce("identity:create_user", MEMBER)


def test_shipped_get_user_self_only(shipped: Enforcer):
    assert shipped.check("identity:get_user", MEMBER, user_target("u1"))
    assert not shipped.check("identity:get_user", MEMBER, user_target("u2"))
    assert shipped.check("identity:get_user", ADMIN, user_target("u2"))
    assert shipped.check("identity:get_user", SYSTEM_READER, user_target("u2"))


def test_shipped_list_users(shipped: Enforcer):
    assert shipped.check("identity:list_users", SYSTEM_READER)
    assert shipped.check("identity:list_users", ADMIN)
    assert not shipped.check("identity:list_users", READER)  # project-scoped reader
    assert not shipped.check("identity:list_users", MEMBER)


def test_shipped_projects_and_domains(shipped: Enforcer):
    own = {"target": {"project": {"id": "p1"}}}
    other = {"target": {"project": {"id": "p2"}}}
    assert shipped.check("identity:get_project", READER, own)
    assert not shipped.check("identity:get_project", READER, other)
    assert shipped.check("identity:list_user_projects", MEMBER, user_target("u1"))
    assert not shipped.check("identity:list_user_projects", MEMBER, user_target("u2"))
    dom = {"target": {"domain": {"id": "d1"}}}
    assert shipped.check("identity:get_domain", creds(project_domain_id="d1", roles=["reader"]), dom)
    assert shipped.check("identity:get_domain", creds(project_id=None, domain_id="d1", roles=["reader"]), dom)
    assert not shipped.check("identity:get_domain", creds(project_domain_id="d2", roles=["reader"]), dom)


def test_shipped_tokens_and_auth(shipped: Enforcer):
    tok = {"target": {"token": {"user_id": "u1"}}}
    assert shipped.check("identity:validate_token", MEMBER, tok)
    assert shipped.check("identity:validate_token", SERVICE, {"target": {"token": {"user_id": "u9"}}})
    assert not shipped.check("identity:check_token", MEMBER, {"target": {"token": {"user_id": "u9"}}})
    assert shipped.check("identity:revoke_token", ADMIN, {"target": {"token": {"user_id": "u9"}}})
    for action in ("get_auth_catalog", "get_auth_projects", "get_auth_domains", "get_auth_system", "list_regions"):
        assert shipped.check(f"identity:{action}", creds())


def test_shipped_application_credentials_and_password(shipped: Enforcer):
    assert shipped.check("identity:create_application_credential", MEMBER, user_target("u1"))
    assert not shipped.check("identity:create_application_credential", ADMIN, user_target("u2"))
    assert shipped.check("identity:delete_application_credential", ADMIN, user_target("u2"))
    assert not shipped.check("identity:list_application_credentials", MEMBER, user_target("u2"))
