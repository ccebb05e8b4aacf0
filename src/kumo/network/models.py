"""Network (Neutron) tables. Only :mod:`kumo.network` may import this module.

Neutron's "standard attributes" (description, created_at, updated_at,
revision_number) are columns of every resource table here instead of one
shared table. Tags live in one table for every resource type, as Neutron's.
Fixed IPs are rows with the subnet and address as their primary key: two
ports can never hold one address, whatever the concurrency, because the
database refuses the second INSERT (the IPAM then tries the next address).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kumo.core.db import Base, UTCDateTime, utcnow

ID = String(36)
PROJECT = String(255)


class StandardAttrs:
    """Neutron's standard attributes, on every resource."""

    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=1)


class Network(StandardAttrs, Base):
    __tablename__ = "network_networks"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    external: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    network_type: Mapped[str] = mapped_column(String(32))
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    dns_domain: Mapped[str] = mapped_column(String(255), default="")


class SegmentAllocation(Base):
    """A VXLAN VNI or a flat physical network in use; the primary key keeps each to one network."""

    __tablename__ = "network_segment_allocations"

    network_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    physical_network: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" for vxlan
    segmentation_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0 for flat
    network_id: Mapped[str] = mapped_column(ID, ForeignKey("network_networks.id", ondelete="CASCADE"), index=True)


class SubnetPool(StandardAttrs, Base):
    """Prefixes that subnets are carved from; ``prefixes`` is kept merged (Neutron's compacted list)."""

    __tablename__ = "network_subnetpools"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Subnet(StandardAttrs, Base):
    __tablename__ = "network_subnets"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    network_id: Mapped[str] = mapped_column(ID, ForeignKey("network_networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    service_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    subnetpool_id: Mapped[str | None] = mapped_column(ID, ForeignKey("network_subnetpools.id"), nullable=True,
                                                      index=True)


class Port(StandardAttrs, Base):
    __tablename__ = "network_ports"
    __table_args__ = (UniqueConstraint("network_id", "mac_address"), Index("ix_network_ports_device", "device_id"))

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    network_id: Mapped[str] = mapped_column(ID, ForeignKey("network_networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(String(255), default="")
    device_owner: Mapped[str] = mapped_column(String(255), default="", index=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    allowed_address_pairs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    extra_dhcp_opts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    binding_host_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    binding_vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    binding_vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    binding_vif_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dns_name: Mapped[str] = mapped_column(String(255), default="")


class IPAllocation(Base):
    """One fixed IP of a port. The primary key makes an address impossible to hand out twice."""

    __tablename__ = "network_ip_allocations"

    subnet_id: Mapped[str] = mapped_column(ID, ForeignKey("network_subnets.id", ondelete="CASCADE"),
                                           primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ID, ForeignKey("network_ports.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(ID, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # the order fixed_ips were given in


class SecurityGroup(StandardAttrs, Base):
    __tablename__ = "network_security_groups"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)


class DefaultSecurityGroup(Base):
    """Which group is a project's ``default``; the primary key keeps it to one, even when made concurrently."""

    __tablename__ = "network_default_security_groups"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_security_groups.id", ondelete="CASCADE"), unique=True)


class SecurityGroupRule(StandardAttrs, Base):
    __tablename__ = "network_security_group_rules"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_security_groups.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(16))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("network_security_groups.id", ondelete="CASCADE"), nullable=True, index=True)


class PortSecurityGroup(Base):
    __tablename__ = "network_port_security_groups"

    port_id: Mapped[str] = mapped_column(ID, ForeignKey("network_ports.id", ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_security_groups.id", ondelete="CASCADE"), primary_key=True, index=True)


class Tag(Base):
    """Neutron's ``standard-attr-tag``: tags of any resource, by type and id."""

    __tablename__ = "network_tags"

    resource_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class Quota(Base):
    """A project's limit for one resource, when it differs from the default."""

    __tablename__ = "network_quotas"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class Router(StandardAttrs, Base):
    """A router; its interfaces and gateway are ports whose ``device_id`` is the router (as Neutron's)."""

    __tablename__ = "network_routers"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(ID, ForeignKey("network_ports.id", ondelete="SET NULL"),
                                                   nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)


class FloatingIP(StandardAttrs, Base):
    """A floating IP: an address of an external network (held by its own port), maybe mapped to a fixed IP."""

    __tablename__ = "network_floating_ips"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    floating_network_id: Mapped[str] = mapped_column(ID, ForeignKey("network_networks.id"), index=True)
    floating_port_id: Mapped[str] = mapped_column(ID, ForeignKey("network_ports.id", ondelete="CASCADE"),
                                                  unique=True)
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    fixed_port_id: Mapped[str | None] = mapped_column(ID, ForeignKey("network_ports.id", ondelete="SET NULL"),
                                                      nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(ID, ForeignKey("network_routers.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")

    __table_args__ = (UniqueConstraint("floating_network_id", "fixed_port_id", "fixed_ip_address"),)


class Agent(Base):
    """A network agent of one host (Neutron's ``agents`` table): what ``/v2.0/agents`` lists.

    Kumo's one agent process per host reports up to four rows, one per role it
    plays (Linux bridge, DHCP, L3, metadata), as Neutron's separate agents do;
    ``configurations`` carries what the other hosts need (the tunnel address).
    """

    __tablename__ = "network_agents"
    __table_args__ = (UniqueConstraint("agent_type", "host"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255), index=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    configurations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
