"""What a guest learns about itself: the OpenStack and EC2 metadata trees (Nova's ``api/metadata/base.py``).

One :class:`InstanceMetadata` is built from an instance row and serves two
readers with the same content, as in Nova:

* the metadata API (``/openstack/<version>/meta_data.json``,
  ``/latest/meta-data/hostname`` ...), through :meth:`lookup`;
* the config drive (a ``config-2`` filesystem), through
  :meth:`config_drive_files`.

Versions follow Nova's: a file or key appears from the version that
introduced it (``keys`` and ``random_seed`` from 2013-04-04, ``project_id``
from 2015-10-15, ``devices`` from 2016-06-30, ``dedicated_cpus`` from
2020-10-14). Network facts (``network_data.json``, ``local-ipv4``,
``public-ipv4``) come from the instance's ``network_info`` (its ports).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import posixpath
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from kumo.compute.models import Instance

#: The EC2 API versions Nova answers (``VERSIONS``); ``latest`` is the newest.
EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
                "2008-09-01", "2009-04-04")
#: Nova's ``OPENSTACK_VERSIONS`` (Folsom ... Epoxy).
OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
                      "2017-02-22", "2018-08-27", "2020-10-14", "2025-04-04")
GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, VICTORIA = (
    "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06", "2020-10-14")

MD_JSON, UD_NAME, PASS_NAME = "meta_data.json", "user_data", "password"
VD_JSON, NW_JSON, VD2_JSON = "vendor_data.json", "network_data.json", "vendor_data2.json"
RANDOM_SEED_BYTES = 512


class MetadataNotFound(LookupError):
    """No such path in the metadata tree (the API answers 404)."""


def _at_least(version: str, since: str) -> bool:
    return version == "latest" or version >= since


def ec2_id(kind: str, uuid: str | None) -> str:
    """An EC2-style id (``i-0a1b2c3d``) derived from a uuid; Nova maps uuids to integers in a table instead."""
    if not uuid:
        return ""
    return f"{kind}-{zlib.crc32(uuid.encode()):08x}"


@dataclass(frozen=True)
class InstanceMetadata:
    """The metadata of one instance, independent of how it is delivered."""

    uuid: str
    name: str
    hostname: str
    project_id: str
    launch_index: int = 0
    availability_zone: str | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    key_name: str | None = None
    key_data: str | None = None
    user_data: bytes | None = None
    reservation_id: str = ""
    flavor_name: str = ""
    image_id: str | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    security_groups: tuple[str, ...] = ()
    local_ipv4: str = ""
    public_ipv4: str = ""
    network_data: Mapping[str, Any] = field(default_factory=dict)  # Nova's {} for an instance without ports
    vendor_data: Mapping[str, Any] = field(default_factory=dict)
    password: str = ""

    @classmethod
    def from_instance(cls, row: Instance, *, default_zone: str = "nova", dhcp_domain: str = "novalocal",
                      vendor_data: Mapping[str, Any] | None = None) -> InstanceMetadata:
        """The metadata of ``row``; the hostname gets Nova's ``dhcp_domain`` (``vm1.novalocal``) when one is set."""
        sysmeta = row.system_metadata or {}
        user_data = None
        if row.user_data:
            try:
                user_data = base64.b64decode(row.user_data)
            except ValueError:
                user_data = None
        return cls(
            uuid=row.uuid, name=row.display_name or "",
            hostname=f"{row.hostname or row.uuid}.{dhcp_domain}" if dhcp_domain else (row.hostname or row.uuid),
            project_id=row.project_id, launch_index=row.launch_index or 0,
            availability_zone=row.availability_zone or default_zone, meta=dict(row.metadata_ or {}),
            key_name=row.key_name, key_data=row.key_data, user_data=user_data,
            reservation_id=row.reservation_id or "", flavor_name=str((row.flavor or {}).get("name") or ""),
            image_id=row.image_ref, kernel_id=sysmeta.get("kernel_id") or None,
            ramdisk_id=sysmeta.get("ramdisk_id") or None, vendor_data=dict(vendor_data or {}),
            password="".join(str(sysmeta.get(f"password_{i}") or "") for i in range(4)),
            network_data=network_data(row.network_info or []),
            local_ipv4=_first_address(row.network_info or [], "fixed"),
            public_ipv4=_first_address(row.network_info or [], "floating"))

    # -- the OpenStack tree

    def openstack_files(self, version: str) -> list[str]:
        """The names listed under ``/openstack/<version>/``, in Nova's order."""
        names = [MD_JSON]
        if self.user_data is not None:
            names.append(UD_NAME)
        if _at_least(version, GRIZZLY):
            names.append(PASS_NAME)
        if _at_least(version, HAVANA):
            names.append(VD_JSON)
        if _at_least(version, LIBERTY):
            names.append(NW_JSON)
        if _at_least(version, NEWTON_TWO):
            names.append(VD2_JSON)
        return names

    def meta_data(self, version: str) -> dict[str, Any]:
        """``meta_data.json``, keys in Nova's order."""
        data: dict[str, Any] = {"uuid": self.uuid}
        if self.meta:
            data["meta"] = dict(self.meta)
        if self.key_name and self.key_data:
            data["public_keys"] = {self.key_name: self.key_data}
            if _at_least(version, GRIZZLY):
                data["keys"] = [{"name": self.key_name, "type": _key_type(self.key_data), "data": self.key_data}]
        data.update(hostname=self.hostname, name=self.name, launch_index=self.launch_index,
                    availability_zone=self.availability_zone)
        if _at_least(version, GRIZZLY):
            data["random_seed"] = base64.b64encode(os.urandom(RANDOM_SEED_BYTES)).decode()
        if _at_least(version, LIBERTY):
            data["project_id"] = self.project_id
        if _at_least(version, NEWTON_ONE):
            data["devices"] = []
        if _at_least(version, VICTORIA):
            data["dedicated_cpus"] = []
        return data

    def openstack_file(self, version: str, name: str) -> bytes:
        if name not in self.openstack_files(version):
            raise MetadataNotFound(name)
        if name == MD_JSON:
            return orjson.dumps(self.meta_data(version))
        if name == UD_NAME:
            return self.user_data or b""
        if name == PASS_NAME:
            return self.password.encode()
        if name == VD_JSON:
            return orjson.dumps(dict(self.vendor_data))
        if name == NW_JSON:
            return orjson.dumps(dict(self.network_data))
        return orjson.dumps({"static": {}})  # vendor_data2.json: Nova's StaticJSON provider, nothing configured

    # -- the EC2 tree

    def ec2_meta_data(self, version: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ami-id": ec2_id("ami", self.image_id), "ami-launch-index": str(self.launch_index),
            "ami-manifest-path": "FIXME", "instance-id": ec2_id("i", self.uuid), "hostname": self.hostname,
            "local-ipv4": self.local_ipv4, "reservation-id": self.reservation_id,
            "security-groups": "\n".join(self.security_groups),
        }
        if self.key_name and self.key_data:
            data["public-keys"] = {"0": {"_name": f"0={self.key_name}", "openssh-key": self.key_data}}
        if _at_least(version, "2007-01-19"):
            data.update({"local-hostname": self.hostname, "public-hostname": self.hostname,
                         "public-ipv4": self.public_ipv4})
        if _at_least(version, "2007-08-29"):
            data["instance-type"] = self.flavor_name
        if _at_least(version, "2007-12-15"):
            data["block-device-mapping"] = {"ami": "vda", "root": "/dev/vda"}
            if self.kernel_id:
                data["kernel-id"] = ec2_id("aki", self.kernel_id)
            if self.ramdisk_id:
                data["ramdisk-id"] = ec2_id("ari", self.ramdisk_id)
        if _at_least(version, "2008-02-01"):
            data["placement"] = {"availability-zone": self.availability_zone or ""}
        if _at_least(version, "2008-09-01"):
            data["instance-action"] = "none"
        return data

    def ec2_tree(self, version: str) -> dict[str, Any]:
        tree: dict[str, Any] = {"meta-data": self.ec2_meta_data(version)}
        if self.user_data is not None:
            tree["user-data"] = self.user_data
        return tree

    # -- HTTP lookup (the metadata API)

    def lookup(self, path: str) -> bytes:
        """The body for ``GET path`` (a listing or a leaf), Nova's ``InstanceMetadata.lookup``.

        ``/ec2/<version>/...`` is the same as ``/<version>/...``, as in Nova.
        """
        parts = [p for p in posixpath.normpath("/" + path.lstrip("/")).split("/") if p]
        if parts and parts[0] == "ec2":
            parts = parts[1:]
        if not parts:
            return "\n".join((*EC2_VERSIONS, "latest")).encode()
        if parts[0] == "openstack":
            if len(parts) == 1:
                return "\n".join((*OPENSTACK_VERSIONS, "latest")).encode()
            version = parts[1]
            if version != "latest" and version not in OPENSTACK_VERSIONS:
                raise MetadataNotFound(path)
            if len(parts) == 2:
                return "\n".join(self.openstack_files(version)).encode()
            if len(parts) == 3:
                return self.openstack_file(version, parts[2])
            raise MetadataNotFound(path)
        version = parts[0]
        if version != "latest" and version not in EC2_VERSIONS:
            raise MetadataNotFound(path)
        node: Any = self.ec2_tree(version)
        for part in parts[1:]:
            if not isinstance(node, dict):
                raise MetadataNotFound(path)
            if part not in node:
                raise MetadataNotFound(path)
            node = node[part]
        return _render(node)

    # -- the config drive

    def config_drive_files(self) -> dict[str, bytes]:
        """Every file of the config drive (Nova's ``metadata_for_config_drive``), by relative path."""
        files: dict[str, bytes] = {}
        for version in (*EC2_VERSIONS, "latest"):
            files[f"ec2/{version}/meta-data.json"] = orjson.dumps(self.ec2_meta_data(version))
            if self.user_data is not None:
                files[f"ec2/{version}/user-data"] = self.user_data
        for version in (*OPENSTACK_VERSIONS, "latest"):
            for name in self.openstack_files(version):
                if name != PASS_NAME:  # the password is posted by the guest, never on the drive
                    files[f"openstack/{version}/{name}"] = self.openstack_file(version, name)
        return files


def _render(node: Any) -> bytes:
    """A leaf as its bytes; a directory as its entries, sub-directories with a trailing ``/``."""
    if isinstance(node, bytes):
        return node
    if isinstance(node, dict):
        lines = []
        for key, value in sorted(node.items()):
            if key == "_name":
                continue
            if isinstance(value, dict) and "_name" in value:
                lines.append(str(value["_name"]))
            elif isinstance(value, dict):
                lines.append(f"{key}/")
            else:
                lines.append(key)
        return "\n".join(lines).encode()
    return str(node).encode()


def _key_type(key_data: str) -> str:
    return "x509" if key_data.lstrip().startswith("-----BEGIN CERTIFICATE") else "ssh"


def network_data(network_info: list[dict[str, Any]]) -> dict[str, Any]:
    """Nova's ``network_data.json`` (``netutils.get_network_metadata``): links, networks and DNS services."""
    if not network_info:
        return {}
    links, networks, services = [], [], []
    for vif in network_info:
        link = vif.get("devname") or f"tap{vif['id'][:11]}"
        links.append({"id": link, "vif_id": vif["id"], "type": vif.get("type") or "bridge",
                      "mtu": vif["network"].get("mtu"), "ethernet_mac_address": vif["address"]})
        for subnet in vif["network"]["subnets"]:
            for ip in subnet["ips"]:
                networks.append(_network_entry(len(networks), link, vif, subnet, ip["address"]))
            for dns in subnet.get("dns") or ():
                entry = {"type": "dns", "address": dns}
                if entry not in services:
                    services.append(entry)
    return {"links": links, "networks": networks, "services": services}


def _network_entry(index: int, link: str, vif: dict[str, Any], subnet: dict[str, Any], address: str
                   ) -> dict[str, Any]:
    net = ipaddress.ip_network(subnet["cidr"]) if subnet.get("cidr") else None
    version = int(subnet.get("version") or ipaddress.ip_address(address).version)
    entry: dict[str, Any] = {"id": f"network{index}", "link": link, "network_id": vif["network"]["id"]}
    if version == 4 and subnet.get("dhcp", True):
        entry["type"] = "ipv4_dhcp"
    elif version == 6 and subnet.get("ipv6_address_mode"):
        entry["type"] = f"ipv6_{subnet['ipv6_address_mode']}"
    else:
        entry["type"] = f"ipv{version}"
    if not entry["type"].endswith("_dhcp") and net is not None:
        entry["ip_address"] = address
        entry["netmask"] = str(net.netmask) if version == 4 else str(net.prefixlen)
        routes = []
        if subnet.get("gateway"):
            routes.append({"network": "0.0.0.0" if version == 4 else "::",
                           "netmask": "0.0.0.0" if version == 4 else "0", "gateway": subnet["gateway"]})
        for route in subnet.get("routes") or ():
            dest = ipaddress.ip_network(route["destination"])
            routes.append({"network": str(dest.network_address),
                           "netmask": str(dest.netmask) if version == 4 else str(dest.prefixlen),
                           "gateway": route["nexthop"]})
        entry["routes"] = routes
        entry["services"] = [{"type": "dns", "address": d} for d in subnet.get("dns") or ()]
    return entry


def _first_address(network_info: list[dict[str, Any]], kind: str) -> str:
    for vif in network_info:
        for subnet in vif["network"]["subnets"]:
            for ip in subnet["ips"]:
                if kind == "fixed" and ipaddress.ip_address(ip["address"]).version == 4:
                    return str(ip["address"])
                if kind == "floating" and ip.get("floating_ips"):
                    return str(ip["floating_ips"][0])
    return ""
