"""The agents the hosts report (``/v2.0/agents``), with Neutron's ``alive`` rule."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kumo.core.db import Database, utcnow
from kumo.network.common import isotime
from kumo.network.errors import NotFound
from kumo.network.models import Agent


class AgentService:
    def __init__(self, db: Database, agent_down_time: float) -> None:
        self.db = db
        self.agent_down_time = agent_down_time

    def view(self, row: Agent) -> dict[str, Any]:
        alive = (utcnow() - row.heartbeat_timestamp).total_seconds() < self.agent_down_time
        return {"id": row.id, "agent_type": row.agent_type, "binary": row.binary, "host": row.host,
                "topic": row.topic, "admin_state_up": row.admin_state_up, "alive": alive,
                "availability_zone": row.availability_zone if row.agent_type in ("DHCP agent", "L3 agent") else None,
                "configurations": dict(row.configurations or {}), "created_at": isotime(row.created_at),
                "started_at": isotime(row.started_at), "heartbeat_timestamp": isotime(row.heartbeat_timestamp),
                "description": row.description, "resources_synced": None}

    async def list(self) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            rows = await s.scalars(select(Agent).order_by(Agent.host, Agent.agent_type))
            return [self.view(r) for r in rows]

    async def get(self, agent_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await s.get(Agent, agent_id)
            if row is None:
                raise NotFound("Agent", agent_id)
            return self.view(row)
