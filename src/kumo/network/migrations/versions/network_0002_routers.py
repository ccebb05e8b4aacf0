"""routers

Revision ID: network_0002
Revises: network_0001
Create Date: 2026-12-04 16:27:54.119459
"""

from alembic import op
import sqlalchemy as sa

from kumo.core.db import UTCDateTime


revision = 'network_0002'
down_revision = 'network_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_routers',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('gw_port_id', sa.String(length=36), nullable=True),
    sa.Column('enable_snat', sa.Boolean(), nullable=False),
    sa.Column('routes', sa.JSON(), nullable=False),
    sa.Column('availability_zone_hints', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['gw_port_id'], ['network_ports.id'], name=op.f('fk_network_routers_gw_port_id_network_ports'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_routers'))
    )
    with op.batch_alter_table('network_routers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_routers_project_id'), ['project_id'], unique=False)

    op.create_table('network_floating_ips',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('floating_network_id', sa.String(length=36), nullable=False),
    sa.Column('floating_port_id', sa.String(length=36), nullable=False),
    sa.Column('floating_ip_address', sa.String(length=64), nullable=False),
    sa.Column('fixed_port_id', sa.String(length=36), nullable=True),
    sa.Column('fixed_ip_address', sa.String(length=64), nullable=True),
    sa.Column('router_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['fixed_port_id'], ['network_ports.id'], name=op.f('fk_network_floating_ips_fixed_port_id_network_ports'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['floating_network_id'], ['network_networks.id'], name=op.f('fk_network_floating_ips_floating_network_id_network_networks')),
    sa.ForeignKeyConstraint(['floating_port_id'], ['network_ports.id'], name=op.f('fk_network_floating_ips_floating_port_id_network_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['network_routers.id'], name=op.f('fk_network_floating_ips_router_id_network_routers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_floating_ips')),
    sa.UniqueConstraint('floating_network_id', 'fixed_port_id', 'fixed_ip_address', name=op.f('uq_network_floating_ips_floating_network_id_fixed_port_id_fixed_ip_address')),
    sa.UniqueConstraint('floating_port_id', name=op.f('uq_network_floating_ips_floating_port_id'))
    )
    with op.batch_alter_table('network_floating_ips', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_floating_ips_fixed_port_id'), ['fixed_port_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_floating_ips_floating_network_id'), ['floating_network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_floating_ips_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_floating_ips_router_id'), ['router_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('network_floating_ips', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_floating_ips_router_id'))
        batch_op.drop_index(batch_op.f('ix_network_floating_ips_project_id'))
        batch_op.drop_index(batch_op.f('ix_network_floating_ips_floating_network_id'))
        batch_op.drop_index(batch_op.f('ix_network_floating_ips_fixed_port_id'))

    op.drop_table('network_floating_ips')
    with op.batch_alter_table('network_routers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_routers_project_id'))

    op.drop_table('network_routers')
