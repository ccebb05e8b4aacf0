"""network agents

Revision ID: network_0003
Revises: network_0002
Create Date: 2026-12-04 18:20:00
"""

from alembic import op
import sqlalchemy as sa

from kumo.core.db import UTCDateTime


revision = 'network_0003'
down_revision = 'network_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_agents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('agent_type', sa.String(length=255), nullable=False),
    sa.Column('binary', sa.String(length=255), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('configurations', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('heartbeat_timestamp', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_agents')),
    sa.UniqueConstraint('agent_type', 'host', name=op.f('uq_network_agents_agent_type_host'))
    )
    with op.batch_alter_table('network_agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_agents_host'), ['host'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('network_agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_agents_host'))
    op.drop_table('network_agents')
