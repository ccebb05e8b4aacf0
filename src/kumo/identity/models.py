"""Identity (Keystone) tables. Only :mod:`kumo.identity` may import this module."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kumo.core.db import Base, UTCDateTime, new_id, utcnow

ID = String(64)


class Domain(Base):
    __tablename__ = "identity_domains"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Project(Base):
    __tablename__ = "identity_projects"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_domains.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(ID, ForeignKey("identity_projects.id"), nullable=True, index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    __tablename__ = "identity_users"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_domains.id"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    failed_auth_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_auth_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_active_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Password(Base):
    """Password history: the newest row is the current password."""

    __tablename__ = "identity_passwords"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_users.id", ondelete="CASCADE"), index=True)
    hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    self_service: Mapped[bool] = mapped_column(Boolean, default=False)


class Group(Base):
    __tablename__ = "identity_groups"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_domains.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Membership(Base):
    __tablename__ = "identity_memberships"

    user_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_users.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_groups.id", ondelete="CASCADE"), primary_key=True)


class Role(Base):
    __tablename__ = "identity_roles"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    # "" for global roles (NULL would defeat the unique constraint).
    domain_id: Mapped[str] = mapped_column(ID, default="")
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ImpliedRole(Base):
    __tablename__ = "identity_implied_roles"

    prior_role_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True)
    implied_role_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True)


class Assignment(Base):
    """A role granted to an actor (user/group) on a target (project/domain/system)."""

    __tablename__ = "identity_assignments"

    type: Mapped[str] = mapped_column(String(16), primary_key=True)  # UserProject, GroupDomain, UserSystem...
    actor_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    target_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    role_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True)
    inherited: Mapped[bool] = mapped_column(Boolean, primary_key=True, default=False)


class Region(Base):
    __tablename__ = "identity_regions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    parent_region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CatalogService(Base):
    __tablename__ = "identity_services"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Endpoint(Base):
    __tablename__ = "identity_endpoints"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_services.id", ondelete="CASCADE"), index=True)
    interface: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ApplicationCredential(Base):
    __tablename__ = "identity_application_credentials"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("identity_users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    system: Mapped[str | None] = mapped_column(String(16), nullable=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RevocationEvent(Base):
    """Keystone-style revocation event: matches tokens issued before ``issued_before``.

    Every non-null field must match the token for the event to apply.
    """

    __tablename__ = "identity_revocation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    domain_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    app_cred_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    issued_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Revision(Base):
    """A counter bumped by every identity write that can change a token's validity.

    API processes compare it with the revision their validation cache was
    filled at, so a revocation made on one API node reaches the others even
    when a bus notification is missed.
    """

    __tablename__ = "identity_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
