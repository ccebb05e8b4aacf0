"""The metadata trees (Nova's ``InstanceMetadata``): versions, keys, EC2 rendering, config drive files."""

from __future__ import annotations

import base64
import json

import pytest

from kumo.compute.metadata.content import (
    EC2_VERSIONS,
    OPENSTACK_VERSIONS,
    InstanceMetadata,
    MetadataNotFound,
    ec2_id,
)
from kumo.compute.models import Instance

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKumoTestKey test@kumo"


def md(**overrides: object) -> InstanceMetadata:
    values: dict[str, object] = {"uuid": "6a1b7c4e-0000-4000-8000-000000000001", "name": "web 1",
                                 "hostname": "web-1.novalocal", "project_id": "p1", "availability_zone": "nova",
                                 "key_name": "k", "key_data": KEY, "user_data": b"#!/bin/sh\necho hi\n",
                                 "reservation_id": "r-abcd1234", "flavor_name": "m1.nano", "image_id": "img-1",
                                 "kernel_id": "kern-1", "meta": {"role": "web"}}
    values.update(overrides)
    return InstanceMetadata(**values)  # type: ignore[arg-type]


def test_from_instance_takes_novas_hostname_and_decodes_user_data() -> None:
    row = Instance(uuid="u1", project_id="p", user_id="u", display_name="vm", hostname="vm", vm_state="active",
                   reservation_id="r-1", launch_index=2, availability_zone=None, flavor={"name": "m1.nano"},
                   image_ref="i", key_name="k", key_data=KEY, user_data=base64.b64encode(b"data").decode(),
                   metadata_={"a": "b"}, system_metadata={"kernel_id": "kk", "password_0": "sec", "password_1": "ret"})
    got = InstanceMetadata.from_instance(row)
    assert (got.hostname, got.user_data, got.availability_zone, got.launch_index) == ("vm.novalocal", b"data",
                                                                                      "nova", 2)
    assert got.password == "secret" and got.kernel_id == "kk"
    assert InstanceMetadata.from_instance(row, dhcp_domain="").hostname == "vm"


def test_meta_data_json_keys_in_novas_order() -> None:
    data = json.loads(md().lookup("/openstack/latest/meta_data.json"))
    assert list(data) == ["uuid", "meta", "public_keys", "keys", "hostname", "name", "launch_index",
                          "availability_zone", "random_seed", "project_id", "devices", "dedicated_cpus"]
    assert data["public_keys"] == {"k": KEY}
    assert data["keys"] == [{"name": "k", "type": "ssh", "data": KEY}]
    assert len(base64.b64decode(data["random_seed"])) == 512


def test_older_versions_have_fewer_keys() -> None:
    folsom = json.loads(md(meta={}).lookup("/openstack/2012-08-10/meta_data.json"))
    assert list(folsom) == ["uuid", "public_keys", "hostname", "name", "launch_index", "availability_zone"]
    liberty = json.loads(md().lookup("/openstack/2015-10-15/meta_data.json"))
    assert "project_id" in liberty and "devices" not in liberty


def test_listings() -> None:
    m = md()
    assert m.lookup("/").decode().split("\n") == [*EC2_VERSIONS, "latest"]
    assert m.lookup("/openstack").decode().split("\n") == [*OPENSTACK_VERSIONS, "latest"]
    assert m.lookup("/openstack/latest/").decode().split("\n") == [
        "meta_data.json", "user_data", "password", "vendor_data.json", "network_data.json", "vendor_data2.json"]
    assert md(user_data=None).lookup("/openstack/2012-08-10").decode() == "meta_data.json"


def test_files_and_defaults() -> None:
    m = md(key_name=None, key_data=None)
    assert m.lookup("/openstack/latest/user_data") == b"#!/bin/sh\necho hi\n"
    assert json.loads(m.lookup("/openstack/latest/vendor_data.json")) == {}
    assert json.loads(m.lookup("/openstack/latest/vendor_data2.json")) == {"static": {}}
    assert json.loads(m.lookup("/openstack/latest/network_data.json")) == {}
    assert "keys" not in json.loads(m.lookup("/openstack/latest/meta_data.json"))
    for missing in ("/openstack/latest/nope", "/openstack/1999-01-01/meta_data.json", "/2999-01-01/meta-data",
                    "/latest/meta-data/nope", "/latest/meta-data/hostname/deeper"):
        with pytest.raises(MetadataNotFound):
            m.lookup(missing)
    with pytest.raises(MetadataNotFound):
        md(user_data=None).lookup("/openstack/latest/user_data")


def test_ec2_tree_renders_like_nova() -> None:
    m = md()
    assert m.lookup("/latest").decode() == "meta-data/\nuser-data"
    listing = m.lookup("/latest/meta-data/").decode().split("\n")
    assert listing == sorted(listing) and "placement/" in listing and "public-keys/" in listing
    assert {"kernel-id", "hostname", "instance-id", "local-ipv4"} <= set(listing)
    assert m.lookup("/latest/meta-data/hostname") == b"web-1.novalocal"
    assert m.lookup("/latest/meta-data/instance-id").decode() == ec2_id("i", m.uuid)
    assert m.lookup("/latest/meta-data/instance-id").decode().startswith("i-")
    assert m.lookup("/latest/meta-data/public-keys") == b"0=k"
    assert m.lookup("/latest/meta-data/public-keys/0") == b"openssh-key"
    assert m.lookup("/latest/meta-data/public-keys/0/openssh-key").decode() == KEY
    assert m.lookup("/latest/meta-data/placement/availability-zone") == b"nova"
    assert m.lookup("/latest/user-data") == b"#!/bin/sh\necho hi\n"
    assert m.lookup("/ec2/latest/meta-data/hostname") == b"web-1.novalocal"  # Nova's /ec2 prefix
    assert "instance-type" not in m.lookup("/1.0/meta-data/").decode()


def test_config_drive_has_both_trees_and_no_password() -> None:
    files = md(password="p").config_drive_files()
    assert json.loads(files["openstack/latest/meta_data.json"])["hostname"] == "web-1.novalocal"
    assert files["openstack/latest/user_data"] == b"#!/bin/sh\necho hi\n"
    assert json.loads(files["ec2/latest/meta-data.json"])["hostname"] == "web-1.novalocal"
    assert all(f"openstack/{v}/meta_data.json" in files for v in OPENSTACK_VERSIONS)
    assert not any(name.endswith("/password") for name in files)
