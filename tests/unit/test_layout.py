"""Import boundaries and module sizes that keep the code base readable (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "kumo"
SERVICES = ("identity", "compute", "image", "network", "volume", "object", "dashboard")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "migrations" not in p.parts)


def test_api_layers_do_not_touch_sql_or_bus() -> None:
    for service in SERVICES:
        api = SRC / service / "api"
        if not api.is_dir():
            continue
        for path in modules(api):
            bad = {i for i in imports_of(path)
                   if i.startswith("sqlalchemy") or i.endswith(".models") or i.startswith("kumo.core.bus")
                   or i.endswith(".manager")}
            assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_no_service_imports_another_services_models() -> None:
    for service in SERVICES:
        root = SRC / service
        if not root.is_dir():
            continue
        for path in modules(root):
            for name in imports_of(path):
                parts = name.split(".")
                if len(parts) >= 3 and parts[0] == "kumo" and parts[1] in SERVICES and parts[1] != service:
                    assert parts[2] != "models", f"{path.relative_to(SRC)} imports {name}"


def test_core_does_not_depend_on_services() -> None:
    for path in modules(SRC / "core"):
        for name in imports_of(path):
            parts = name.split(".")
            assert not (len(parts) > 1 and parts[0] == "kumo" and parts[1] in SERVICES), \
                f"{path.relative_to(SRC)} imports {name}"


def test_modules_stay_readable() -> None:
    too_big = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
               if (n := len(p.read_text().splitlines())) > 800}
    assert not too_big, f"split these along a real seam: {too_big}"
