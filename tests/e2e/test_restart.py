"""``kumo up`` stopped with Ctrl-C and started again on the same state directory.

Data survives, the admin password and Fernet keys are kept (tokens issued
before the restart still validate) and bootstrap creates nothing twice.
Uses its own server (not the session one) and plain HTTP for speed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_support import KumoProcess, unique

pytestmark = pytest.mark.e2e


def login(kumo: KumoProcess, password: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    r = httpx.post(f"{kumo.auth_url}/auth/tokens", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def snapshot(kumo: KumoProcess, token: str) -> dict[str, Any]:
    """What bootstrap creates, as the API lists it (sorted, ids included, so duplicates show)."""
    h = {"X-Auth-Token": token}

    def get(path: str, key: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{kumo.auth_url}{path}", headers=h, timeout=10)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        return r.json()[key]

    return {
        "domains": sorted((d["id"], d["name"]) for d in get("/domains", "domains")),
        "projects": sorted((p["id"], p["name"]) for p in get("/projects", "projects")),
        "users": sorted((u["id"], u["name"]) for u in get("/users", "users")),
        "roles": sorted((r["id"], r["name"]) for r in get("/roles", "roles")),
        "inferences": sorted((i["prior_role"]["name"], sorted(r["name"] for r in i["implies"]))
                             for i in get("/role_inferences", "role_inferences")),
        "assignments": sorted(repr({k: v for k, v in a.items() if k != "links"})
                              for a in get("/role_assignments", "role_assignments")),
        "services": sorted((s["id"], s["type"], s["name"]) for s in get("/services", "services")),
        "endpoints": sorted((e["id"], e["interface"], e["url"], e["region_id"]) for e in get("/endpoints", "endpoints")),
        "regions": sorted(r["id"] for r in get("/regions", "regions")),
    }


def test_restart_keeps_data_and_bootstraps_once(tmp_path: Path) -> None:
    kumo = KumoProcess(tmp_path / "state")
    try:
        kumo.start()
        password = kumo.admin_password
        clouds = yaml.safe_load(kumo.clouds_yaml.read_text())
        assert clouds["clouds"]["kumo"]["auth"]["password"] == password
        token = login(kumo, password)
        project = unique("survivor")
        r = httpx.post(f"{kumo.auth_url}/projects", headers={"X-Auth-Token": token}, timeout=10,
                       json={"project": {"name": project, "description": "made before the restart"}})
        assert r.status_code == 201, r.text
        project_id = r.json()["project"]["id"]
        before = snapshot(kumo, token)
        assert kumo.stop() == 0 and not kumo.killed, kumo.log()[-3000:]
        first_log = kumo.log()
        assert "kumo: stopped" in first_log
        assert "bootstrap: created user admin" in first_log

        kumo.start()
        second_log = kumo.log()[len(first_log):]
        assert "Kumo is up" in second_log
        assert "bootstrap: created" not in second_log and "bootstrap: registered" not in second_log, second_log
        assert kumo.admin_password == password
        assert yaml.safe_load(kumo.clouds_yaml.read_text()) == clouds
        # Fernet keys were kept: the token issued before the restart is still good.
        r = httpx.get(f"{kumo.auth_url}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token},
                      timeout=10)
        assert r.status_code == 200, r.text
        after = snapshot(kumo, login(kumo, password))
        assert after == before
        assert (project_id, project) in after["projects"]
        assert [n for _, n in after["users"]].count("admin") == 1
        assert sorted(n for _, n in after["roles"]) == ["admin", "member", "reader", "service"]
        assert sorted(n for _, n in after["projects"]) == sorted(["admin", "service", project])
        assert len(after["endpoints"]) == 4 * 3  # identity, image, compute, network; public/internal/admin each
    finally:
        if kumo.proc is not None:
            code = kumo.stop()
            assert kumo.proc.poll() is not None, "leaked a `kumo up` process"
    assert code == 0 and not kumo.killed, kumo.log()[-3000:]
