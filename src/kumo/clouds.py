"""The files users point their OpenStack clients at: clouds.yaml and openrc.

Written into the state directory with mode 0600 (they hold the admin
password); ``kumo up`` prints how to use them.
"""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path

import yaml


def admin_password(state_dir: Path, configured: str = "") -> str:
    """The bootstrap admin password: configured, else generated once and kept."""
    return _kept_secret(state_dir / "admin-password", configured)


def service_password(state_dir: Path, configured: str = "") -> str:
    """The password of Kumo's service user (``kumo``): configured, else generated once and kept.

    Every node that acts as the service (compute agents binding ports) needs
    the same one: split deployments configure ``identity.service_password``.
    """
    return _kept_secret(state_dir / "service-password", configured)


def _kept_secret(path: Path, configured: str) -> str:
    if configured:
        return configured
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(18)
    _write_private(path, password + "\n")
    return password


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_client_files(state_dir: Path, auth_url: str, password: str, region: str) -> tuple[Path, Path]:
    """Write ``clouds.yaml`` (clouds ``kumo`` and ``kumo-system``) and ``openrc``."""
    auth = {"auth_url": auth_url, "username": "admin", "password": password, "user_domain_name": "Default"}
    clouds = {
        "clouds": {
            "kumo": {"auth": {**auth, "project_name": "admin", "project_domain_name": "Default"},
                     "region_name": region, "interface": "public", "identity_api_version": 3},
            "kumo-system": {"auth": {**auth, "system_scope": "all"},
                            "region_name": region, "interface": "public", "identity_api_version": 3},
        }
    }
    clouds_path = state_dir / "clouds.yaml"
    _write_private(clouds_path, yaml.safe_dump(clouds, sort_keys=False))
    env = {
        "OS_AUTH_URL": auth_url, "OS_USERNAME": "admin", "OS_PASSWORD": password, "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": region,
        "OS_IDENTITY_API_VERSION": "3", "OS_INTERFACE": "public",
    }
    openrc_path = state_dir / "openrc"
    lines = ["# Kumo admin credentials: source this file, then run `openstack ...`"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    _write_private(openrc_path, "\n".join(lines) + "\n")
    return clouds_path, openrc_path
