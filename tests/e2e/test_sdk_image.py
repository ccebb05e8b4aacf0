"""openstacksdk (in-process) against a live ``kumo up``: images (Glance v2).

``conn`` is ``openstack.connect(cloud="kumo")`` (admin on the admin project);
the image is a real qcow2 made with ``qemu-img`` and ``qemu-io``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
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

MISSING_ID = "3f6a1f0e-9b7c-4d2e-8a51-0c7d2b9e4f10"


@pytest.fixture(scope="module")
def qcow2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert shutil.which("qemu-img"), "qemu-img is missing: run scripts/install-system-deps.sh (qemu-utils)"
    path = tmp_path_factory.mktemp("sdk-images") / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), "16M"], check=True, capture_output=True)
    if shutil.which("qemu-io"):
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xcd 0 1M", str(path)], check=True,
                       capture_output=True)
    return path


@pytest.fixture(scope="module")
def other(kumo: KumoProcess, conn) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Another project with a member user, and that user's connection."""
    project = conn.identity.create_project(name=unique("sdk-imgproj"), domain_id="default")
    user = conn.identity.create_user(name=unique("sdk-imguser"), password="img-pw", domain_id="default",
                                     default_project_id=project.id)
    conn.identity.assign_project_role_to_user(project, user, conn.identity.find_role("member", ignore_missing=False))
    conn2 = openstack.connect(auth_url=kumo.auth_url, username=user.name, password="img-pw",
                              project_name=project.name, user_domain_name="Default", project_domain_name="Default",
                              region_name="RegionOne", interface="public", identity_api_version="3",
                              load_yaml_config=False, load_envvars=False)
    try:
        yield {"project": project, "user": user, "conn": conn2}
    finally:
        conn2.close()
        conn.identity.delete_user(user)
        conn.identity.delete_project(project)


def test_image_create_list_get_update_download(conn, qcow2: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name, data = unique("sdk-img"), qcow2.read_bytes()
    image = conn.create_image(name, filename=str(qcow2), disk_format="qcow2", container_format="bare", wait=True)
    try:
        assert image.status == "active" and image.size == len(data)
        assert image.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert image.hash_algo == "sha512" and image.hash_value == hashlib.sha512(data).hexdigest()
        assert image.virtual_size == 16 * 1024 * 1024
        assert image.id in {i.id for i in conn.image.images()}
        assert [i.id for i in conn.image.images(name=name)] == [image.id]

        got = conn.image.get_image(image.id)
        assert got.name == name and got.disk_format == "qcow2" and got.container_format == "bare"
        assert got.owner == conn.current_project_id and got.visibility == "shared"

        updated = conn.image.update_image(got, some_prop="x")
        assert updated.properties["some_prop"] == "x"
        assert conn.image.get_image(image.id).properties["some_prop"] == "x"

        out = tmp_path / "downloaded.qcow2"
        conn.download_image(name, output_file=str(out))
        assert out.read_bytes() == data
        # In memory; openstacksdk checks the bytes against os_hash_value itself.
        assert conn.image.download_image(got).content == data
    finally:
        conn.image.delete_image(image, ignore_missing=False)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.get_image(image.id)


def test_image_members(conn, other: dict[str, Any], qcow2: Path) -> None:  # type: ignore[no-untyped-def]
    conn2, project = other["conn"], other["project"]
    image = conn.create_image(unique("sdk-shared"), filename=str(qcow2), disk_format="qcow2",
                              container_format="bare", wait=True)
    try:
        member = conn.image.add_member(image, member_id=project.id)
        assert member.member_id == project.id and member.status == "pending"
        assert image.id not in {i.id for i in conn2.image.images()}  # pending: not listed by default
        assert image.id in {i.id for i in conn2.image.images(member_status="pending")}

        accepted = conn2.image.update_member(member, image, status="accepted")
        assert accepted.status == "accepted"
        assert image.id in {i.id for i in conn2.image.images()}
        assert conn2.image.download_image(image.id).content == qcow2.read_bytes()
        assert [m.status for m in conn.image.members(image)] == ["accepted"]

        conn.image.remove_member(member, image)
        assert image.id not in {i.id for i in conn2.image.images()}
        with pytest.raises(openstack.exceptions.NotFoundException):
            conn2.image.get_image(image.id)
    finally:
        conn.image.delete_image(image, ignore_missing=False)


def test_stage_and_glance_direct_import(conn, qcow2: Path) -> None:  # type: ignore[no-untyped-def]
    info = conn.image.get_import_info()
    assert "glance-direct" in info.import_methods["value"]

    image = conn.image.create_image(name=unique("sdk-import"), disk_format="qcow2", container_format="bare")
    try:
        assert image.status == "queued"
        with qcow2.open("rb") as fh:
            image.data = fh
            conn.image.stage_image(image)
        assert conn.image.get_image(image.id).status == "uploading"
        conn.image.import_image(image, method="glance-direct")
        done = conn.image.wait_for_status(image, status="active", failures=["killed", "queued"], interval=0.2,
                                          wait=60)
        data = qcow2.read_bytes()
        assert done.size == len(data) and done.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert done.virtual_size == 16 * 1024 * 1024
    finally:
        conn.image.delete_image(image, ignore_missing=False)


def test_missing_image(conn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.get_image(MISSING_ID)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.delete_image(MISSING_ID, ignore_missing=False)
    assert conn.image.find_image(unique("sdk-nothing")) is None
