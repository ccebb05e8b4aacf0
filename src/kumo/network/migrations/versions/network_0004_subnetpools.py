"""subnet pools

Revision ID: network_0004
Revises: network_0003
Create Date: 2026-12-07 23:20:00
"""

from alembic import op
import sqlalchemy as sa

from kumo.core.db import UTCDateTime


revision = 'network_0004'
down_revision = 'network_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_subnetpools',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('prefixes', sa.JSON(), nullable=False),
    sa.Column('default_prefixlen', sa.Integer(), nullable=False),
    sa.Column('min_prefixlen', sa.Integer(), nullable=False),
    sa.Column('max_prefixlen', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('default_quota', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_subnetpools'))
    )
    with op.batch_alter_table('network_subnetpools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_subnetpools_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_subnetpools_shared'), ['shared'], unique=False)
    with op.batch_alter_table('network_subnets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subnetpool_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_network_subnets_subnetpool_id'), ['subnetpool_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_network_subnets_subnetpool_id_network_subnetpools'),
                                    'network_subnetpools', ['subnetpool_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('network_subnets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_network_subnets_subnetpool_id_network_subnetpools'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_network_subnets_subnetpool_id'))
        batch_op.drop_column('subnetpool_id')
    with op.batch_alter_table('network_subnetpools', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_subnetpools_shared'))
        batch_op.drop_index(batch_op.f('ix_network_subnetpools_project_id'))
    op.drop_table('network_subnetpools')
