"""The real ``openstack`` CLI against a live ``kumo up``: flavors and key pairs (Nova v2.1).

The client discovers the compute endpoint from the catalog (``/compute/v2.1``),
negotiates a microversion with it and uses Nova's wire format unchanged.
Related commands share one client process (``kumo.osc_batch``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from e2e_support import KumoProcess, OscResult, unique, write_clouds_yaml

pytestmark = pytest.mark.e2e


def by(rows: list[dict], key: str, value: str) -> dict:
    matches = [r for r in rows if r[key] == value]
    assert len(matches) == 1, f"{key}={value!r}: {matches} in {rows}"
    return matches[0]


def assert_failed(result: OscResult, *needles: str) -> None:
    assert result.returncode != 0, str(result)
    for needle in needles:
        assert needle in result.stderr, str(result)


def ed25519_public_key_file(path: Path) -> tuple[Path, str, str]:
    """A fresh ed25519 public key in OpenSSH format, with its MD5 fingerprint (as Nova computes it)."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    text = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    text += " e2e@kumo"
    path.write_text(text + "\n")
    digest = hashlib.md5(base64.b64decode(text.split()[1]), usedforsecurity=False).hexdigest()
    return path, text, ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def test_default_flavors(kumo: KumoProcess) -> None:
    rows = kumo.osc("flavor", "list")
    assert by(rows, "Name", "m1.tiny") == {"ID": "1", "Name": "m1.tiny", "RAM": 512, "Disk": 1, "Ephemeral": 0,
                                           "VCPUs": 1, "Is Public": True}
    assert by(rows, "Name", "m1.nano")["RAM"] == 128
    assert {"m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= {r["Name"] for r in rows}


def test_flavor_lifecycle(kumo: KumoProcess) -> None:
    name = unique("e2e-flavor")
    created, listed, shown, _, changed, _, after = kumo.osc_batch(
        ["flavor", "create", "--ram", "256", "--vcpus", "1", "--disk", "1", name],
        ["flavor", "list"],
        ["flavor", "show", name],
        ["flavor", "set", "--property", "k=v", "--property", "hw:cpu_policy=shared", name],
        ["flavor", "show", name],
        ["flavor", "delete", name],
        ["flavor", "list"],
    )
    assert created["name"] == name and created["ram"] == 256 and created["vcpus"] == 1 and created["disk"] == 1
    assert created["os-flavor-access:is_public"] is True and created["properties"] == {}
    row = by(listed, "Name", name)
    assert row["ID"] == created["id"] and row["RAM"] == 256 and row["VCPUs"] == 1
    assert shown["id"] == created["id"] and shown["swap"] == 0 and shown["OS-FLV-EXT-DATA:ephemeral"] == 0
    assert changed["properties"] == {"k": "v", "hw:cpu_policy": "shared"}
    assert name not in {r["Name"] for r in after}
    assert_failed(kumo.osc("flavor", "show", name, check=False), f"No Flavor found for {name}")


def test_private_flavor_with_description(kumo: KumoProcess) -> None:
    name, project = unique("e2e-private"), unique("e2e-flvproj")
    proj, created = kumo.osc_batch(
        ["project", "create", project],
        ["flavor", "create", "--ram", "128", "--vcpus", "1", "--disk", "0", "--private", "--description",
         "private-flavor", "--project", project, name],
    )
    try:
        assert created["os-flavor-access:is_public"] is False and created["description"] == "private-flavor"
        shown = kumo.osc("flavor", "show", name)
        assert shown["access_project_ids"] == [proj["id"]]
        assert name not in {r["Name"] for r in kumo.osc("flavor", "list")}  # public ones only, by default
        assert name in {r["Name"] for r in kumo.osc("flavor", "list", "--private")}
    finally:
        kumo.osc_batch(["flavor", "delete", name], ["project", "delete", project])


def test_members_cannot_manage_flavors(kumo: KumoProcess, tmp_path: Path) -> None:
    project, user = unique("e2e-flvmember"), unique("e2e-flvuser")
    kumo.osc_batch(
        ["project", "create", project],
        ["user", "create", "--password", "flv-pw-1", "--project", project, user],
        ["role", "add", "--user", user, "--project", project, "member"],
    )
    other = write_clouds_yaml(tmp_path / "member.yaml", {"member": {
        "auth": {"auth_url": kumo.auth_url, "username": user, "password": "flv-pw-1", "user_domain_name": "Default",
                 "project_name": project, "project_domain_name": "Default"},
        "region_name": "RegionOne", "interface": "public", "identity_api_version": 3}})
    try:
        refused = kumo.osc("flavor", "create", "--ram", "64", "--vcpus", "1", "--disk", "0", unique("e2e-nope"),
                           check=False, cloud="member", config=other)
        assert_failed(refused, "403")
        assert by(kumo.osc("flavor", "list", cloud="member", config=other), "Name", "m1.tiny")["ID"] == "1"
    finally:
        kumo.osc_batch(["user", "delete", user], ["project", "delete", project])


def test_keypair_lifecycle(kumo: KumoProcess, tmp_path: Path) -> None:
    name = unique("e2e-key")
    key_file, public, fingerprint = ed25519_public_key_file(tmp_path / "id_ed25519.pub")
    created, listed, shown, _, after = kumo.osc_batch(
        ["keypair", "create", "--public-key", str(key_file), name],
        ["keypair", "list"],
        ["keypair", "show", name],
        ["keypair", "delete", name],
        ["keypair", "list"],
    )
    assert created["name"] == name and created["fingerprint"] == fingerprint and created["type"] == "ssh"
    assert by(listed, "Name", name) == {"Name": name, "Fingerprint": fingerprint, "Type": "ssh"}
    assert shown["name"] == name and shown["fingerprint"] == fingerprint and shown["user_id"]
    assert name not in {r["Name"] for r in after}
    assert_failed(kumo.osc("keypair", "show", name, check=False), name)
    # the stored key is the one sent, byte for byte
    again = unique("e2e-key")
    kumo.osc("keypair", "create", "--public-key", str(key_file), again)
    try:
        assert kumo.osc("keypair", "show", "--public-key", again, json=False) == public
    finally:
        kumo.osc("keypair", "delete", again)


def test_duplicate_keypair_is_refused(kumo: KumoProcess, tmp_path: Path) -> None:
    name = unique("e2e-dupkey")
    key_file, _, _ = ed25519_public_key_file(tmp_path / "dup.pub")
    kumo.osc("keypair", "create", "--public-key", str(key_file), name)
    try:
        assert_failed(kumo.osc("keypair", "create", "--public-key", str(key_file), name, check=False),
                      "already exists")
    finally:
        kumo.osc("keypair", "delete", name)
