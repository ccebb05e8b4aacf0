"""Policy engine: who may call which API action, in the spirit of oslo.policy.

Every OpenStack service asks ``enforcer.enforce("identity:get_user", creds,
target)`` before it acts, and operators tune the answers in a policy file.
Kumo keeps that contract (rule language, action names, an override file
merged over shipped defaults) with a small engine written from scratch: rules
are parsed once, at load time, into closures, so a request costs a few calls.

Rule language (one string per action), as oslo.policy:

* ``role:admin``: the caller holds the role (case-insensitive, as Keystone).
* ``<attr>:<value>``: credential ``attr`` (``user_id``, ``project_id``,
  ``domain_id``, ``system_scope``, or any other key of the credentials) equals
  ``value``; a list-valued credential matches when it contains ``value``.
* ``value`` is a literal (``admin``, ``'quoted'``) or contains ``%(path)s``
  substitutions looked up in the target: first as a flat key
  (``{"target.user.id": ...}``), then by walking nested dicts
  (``{"target": {"user": {"id": ...}}}``). A missing key makes the check
  False, never an error.
* ``rule:name`` evaluates another rule; ``@``/``True``/``""`` always pass,
  ``!``/``False`` never; ``not`` > ``and`` > ``or``, with parentheses.

Deliberate deviations from oslo.policy, all towards denying: a syntax error,
an undefined ``rule:`` reference or a reference loop raises ``ValueError`` at
load time (oslo logs and denies at run time), and ``None`` on either side of a
comparison never matches (oslo compares ``"None" == "None"``, which lets an
unscoped token pass ``project_id:%(project_id)s`` for a target without one).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from kumo.core.errors import PolicyDenied

LOG = logging.getLogger(__name__)

#: The policy file shipped with Kumo, holding every service's defaults.
DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "policy.yaml"

_SUBST = re.compile(r"%\(([^)]*)\)s")
_MISSING = object()


# ---------------------------------------------------------------- compiled form
# A rule compiles to a closure ``check(creds, roles, target) -> bool`` where
# ``roles`` is the caller's lower-cased role set, computed once per call.

Check = Callable[[Mapping[str, Any], frozenset[str], Mapping[str, Any]], bool]


def _const(value: bool) -> Check:
    return lambda creds, roles, target: value


def _not(child: Check) -> Check:
    return lambda creds, roles, target: not child(creds, roles, target)


def _and(children: list[Check]) -> Check:
    first, *rest = children
    nxt = rest[0] if len(rest) == 1 else _and(rest)  # binary chain: no generator per call
    return lambda creds, roles, target: first(creds, roles, target) and nxt(creds, roles, target)


def _or(children: list[Check]) -> Check:
    first, *rest = children
    nxt = rest[0] if len(rest) == 1 else _or(rest)
    return lambda creds, roles, target: first(creds, roles, target) or nxt(creds, roles, target)


def _match(kind: str, value: str) -> Check:
    """``kind:value``: role membership for ``role``, else a credential comparison."""
    paths = [(p, p.split(".")) for p in _SUBST.findall(value)]
    whole = _SUBST.fullmatch(value) is not None

    def expected(target: Mapping[str, Any]) -> str | None:
        if not paths:
            return value
        found = [_lookup(target, flat, parts) for flat, parts in paths]
        if any(f is _MISSING or f is None for f in found):
            return None
        if whole:
            return str(found[0])
        rest = iter(found)
        return _SUBST.sub(lambda m: str(next(rest)), value)

    def check(creds: Mapping[str, Any], roles: frozenset[str], target: Mapping[str, Any]) -> bool:
        want = expected(target)
        if want is None:
            return False
        if kind == "role":
            return want.lower() in roles
        actual = creds.get(kind)
        if isinstance(actual, (list, tuple, set, frozenset)):
            return any(v is not None and str(v) == want for v in actual)
        return actual is not None and str(actual) == want

    return check


def _lookup(target: Mapping[str, Any], flat: str, parts: list[str]) -> Any:
    """Flat key first, then a walk through nested mappings; ``_MISSING`` if absent."""
    if flat in target:
        return target[flat]
    node: Any = target
    for part in parts:
        try:
            node = node[part]
        except (KeyError, TypeError, IndexError):  # absent, or not a mapping
            return _MISSING
    return node


# ------------------------------------------------------------------------ parser

# A token is "(", ")" or a run of anything else, where %(...) and quoted text
# may contain spaces and parentheses.
_TOKEN = re.compile(r"""\s*(?:([()])|((?:%\([^)]*\)|'[^']*'|"[^"]*"|[^\s()'"])+))\s*""")


def _tokenize(text: str) -> list[str]:
    """Split into ``(``, ``)``, operators and checks; ``%(...)`` stays inside its check."""
    tokens: list[str] = []
    pos, text = 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot parse {text[pos:]!r}")
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    return tokens


class _Parser:
    """Recursive descent: ``or`` of ``and`` of (``not``)* atoms."""

    def __init__(self, text: str, compiled: Mapping[str, Check]) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.compiled = compiled  # every rule, filled in by Enforcer; read at call time
        self.refs: list[str] = []

    def parse(self) -> Check:
        node = self._or() if self.tokens else _const(True)  # "" allows, as oslo.policy
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.pos]!r}")
        return node

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _keyword(self, word: str) -> bool:
        if (self._peek() or "").lower() != word:
            return False
        self.pos += 1
        return True

    def _chain(self, word: str, operand: Callable[[], Check], combine: Callable[[list[Check]], Check]) -> Check:
        children = [operand()]
        while self._keyword(word):
            children.append(operand())
        return children[0] if len(children) == 1 else combine(children)

    def _or(self) -> Check:
        return self._chain("or", self._and, _or)

    def _and(self) -> Check:
        return self._chain("and", self._not, _and)

    def _not(self) -> Check:
        if self._keyword("not"):
            return _not(self._not())
        return self._atom()

    def _atom(self) -> Check:
        tok = self._peek()
        if tok is None:
            raise ValueError("rule ends where a check was expected")
        self.pos += 1
        if tok == "(":
            node = self._or()
            if self._peek() != ")":
                raise ValueError("missing ')'")
            self.pos += 1
            return node
        if tok == ")" or tok.lower() in ("and", "or", "not"):
            raise ValueError(f"unexpected {tok!r} where a check was expected")
        return self._check(tok)

    def _check(self, tok: str) -> Check:
        if tok in ("@", "True", "true"):
            return _const(True)
        if tok in ("!", "False", "false"):
            return _const(False)
        kind, sep, value = tok.partition(":")
        if not sep or not kind or not value:
            raise ValueError(f"malformed check {tok!r}, expected 'kind:value'")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if kind == "rule":
            self.refs.append(value)
            compiled = self.compiled
            return lambda creds, roles, target: compiled[value](creds, roles, target)
        return _match(kind, value)


# ---------------------------------------------------------------------- enforcer


class Enforcer:
    """Compiled policy rules; ``enforce`` raises ``PolicyDenied``, ``check`` returns a bool.

    An action without a rule is denied unless a rule named ``default``
    exists (oslo.policy's ``policy_default_rule``).
    """

    def __init__(self, rules: Mapping[str, str]) -> None:
        self._sources: dict[str, str] = {}
        compiled: dict[str, Check] = {}
        deps: dict[str, list[str]] = {}
        for name, text in rules.items():
            if isinstance(text, bool):  # YAML reads an unquoted True/False as a bool
                text = str(text)
            if not isinstance(text, str):
                raise ValueError(f"policy rule {name!r} must be a string, got {type(text).__name__}")
            try:
                parser = _Parser(text, compiled)
                compiled[name] = parser.parse()
            except ValueError as exc:
                raise ValueError(f"policy rule {name!r} ({text!r}): {exc}") from None
            self._sources[name] = text
            deps[name] = parser.refs
        _check_references(deps)
        self._rules = compiled
        self._default = compiled.get("default")

    @classmethod
    def from_files(cls, default_path: Path, override_path: Path | None = None) -> Enforcer:
        """Load shipped defaults, then merge an operator's override file if it exists."""
        rules = _load_yaml(default_path)
        if override_path is not None and Path(override_path).exists():
            overrides = _load_yaml(Path(override_path))
            for name in overrides:
                if name not in rules:
                    LOG.warning("policy override %s defines unknown rule %r", override_path, name)
            rules.update(overrides)
        return cls(rules)

    @property
    def rules(self) -> Mapping[str, str]:
        """Rule source text by name, after overrides (a copy)."""
        return dict(self._sources)

    def check(self, action: str, creds: Mapping[str, Any], target: Mapping[str, Any] | None = None) -> bool:
        """True when ``creds`` may perform ``action`` on ``target``."""
        node = self._rules.get(action, self._default)
        if node is None:
            return False
        roles = frozenset([str(r).lower() for r in creds.get("roles") or ()])
        return node(creds, roles, target or {})

    def enforce(self, action: str, creds: Mapping[str, Any], target: Mapping[str, Any] | None = None) -> None:
        """Raise ``PolicyDenied(action)`` unless ``check`` allows it."""
        if not self.check(action, creds, target):
            LOG.debug("policy denied %s for user %s", action, creds.get("user_id"))
            raise PolicyDenied(action)


def _check_references(deps: Mapping[str, list[str]]) -> None:
    """Depth-first search over ``rule:`` references: undefined names and cycles are errors."""
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            raise ValueError(f"policy rule reference loop: {' -> '.join(stack[stack.index(name):] + [name])}")
        if name not in done:
            for ref in deps[name]:
                if ref not in deps:
                    raise ValueError(f"policy rule {name!r} refers to undefined rule {ref!r}")
                visit(ref, stack + [name])
            done.add(name)

    for name in deps:
        visit(name, [])


def _load_yaml(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}  # an empty (all comments) file overrides nothing
    if not isinstance(data, dict):
        raise ValueError(f"policy file {path} must hold a mapping of rule name to rule")
    return {str(k): v for k, v in data.items()}
