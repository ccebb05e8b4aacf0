"""compute host aggregates

Revision ID: compute_0003
Revises: compute_0002
Create Date: 2026-12-06 10:00:00
"""

from alembic import op
import sqlalchemy as sa

from kumo.core.db import UTCDateTime


revision = 'compute_0003'
down_revision = 'compute_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('compute_aggregates',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_aggregates')),
    sa.UniqueConstraint('uuid', name=op.f('uq_compute_aggregates_uuid')),
    sa.UniqueConstraint('name', name=op.f('uq_compute_aggregates_name'))
    )
    op.create_table('compute_aggregate_hosts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('aggregate_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['aggregate_id'], ['compute_aggregates.id'], ondelete='CASCADE',
                            name=op.f('fk_compute_aggregate_hosts_aggregate_id_compute_aggregates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_aggregate_hosts')),
    sa.UniqueConstraint('aggregate_id', 'host', name=op.f('uq_compute_aggregate_hosts_aggregate_id_host'))
    )
    op.create_index(op.f('ix_compute_aggregate_hosts_host'), 'compute_aggregate_hosts', ['host'], unique=False)
    op.create_table('compute_aggregate_metadata',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('aggregate_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['aggregate_id'], ['compute_aggregates.id'], ondelete='CASCADE',
                            name=op.f('fk_compute_aggregate_metadata_aggregate_id_compute_aggregates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_aggregate_metadata')),
    sa.UniqueConstraint('aggregate_id', 'key', name=op.f('uq_compute_aggregate_metadata_aggregate_id_key'))
    )
    op.create_index(op.f('ix_compute_aggregate_metadata_key'), 'compute_aggregate_metadata', ['key'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_compute_aggregate_metadata_key'), table_name='compute_aggregate_metadata')
    op.drop_table('compute_aggregate_metadata')
    op.drop_index(op.f('ix_compute_aggregate_hosts_host'), table_name='compute_aggregate_hosts')
    op.drop_table('compute_aggregate_hosts')
    op.drop_table('compute_aggregates')
