"""Tables shared by every service: the service registry that heartbeats fill.

Nova's ``services`` table in spirit: one row per (host, binary). Agents and
API processes heartbeat into it; ``kumo status`` and later
``os-services`` read it to tell up from down.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kumo.core.db import Base, UTCDateTime, new_id, utcnow


class ServiceRecord(Base):
    __tablename__ = "core_services"
    __table_args__ = (UniqueConstraint("host", "binary"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    host: Mapped[str] = mapped_column(String(255), index=True)
    binary: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(32), default="")
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
