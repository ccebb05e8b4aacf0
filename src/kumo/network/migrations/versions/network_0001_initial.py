"""network initial

Revision ID: network_0001
Revises: 
Create Date: 2026-12-04 16:06:14.926210
"""

from alembic import op
import sqlalchemy as sa

from kumo.core.db import UTCDateTime


revision = 'network_0001'
down_revision = None
branch_labels = ('network',)
depends_on = None


def upgrade() -> None:
    op.create_table('network_networks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('external', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('mtu', sa.Integer(), nullable=False),
    sa.Column('port_security_enabled', sa.Boolean(), nullable=False),
    sa.Column('network_type', sa.String(length=32), nullable=False),
    sa.Column('physical_network', sa.String(length=64), nullable=True),
    sa.Column('segmentation_id', sa.Integer(), nullable=True),
    sa.Column('availability_zone_hints', sa.JSON(), nullable=False),
    sa.Column('dns_domain', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_networks'))
    )
    with op.batch_alter_table('network_networks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_networks_external'), ['external'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_networks_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_networks_shared'), ['shared'], unique=False)

    op.create_table('network_quotas',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'resource', name=op.f('pk_network_quotas'))
    )
    op.create_table('network_security_groups',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('stateful', sa.Boolean(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_security_groups'))
    )
    with op.batch_alter_table('network_security_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_security_groups_project_id'), ['project_id'], unique=False)

    op.create_table('network_tags',
    sa.Column('resource_type', sa.String(length=32), nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('resource_type', 'resource_id', 'tag', name=op.f('pk_network_tags'))
    )
    with op.batch_alter_table('network_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_tags_tag'), ['tag'], unique=False)

    op.create_table('network_default_security_groups',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['security_group_id'], ['network_security_groups.id'], name=op.f('fk_network_default_security_groups_security_group_id_network_security_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_network_default_security_groups')),
    sa.UniqueConstraint('security_group_id', name=op.f('uq_network_default_security_groups_security_group_id'))
    )
    op.create_table('network_ports',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('mac_address', sa.String(length=32), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('device_id', sa.String(length=255), nullable=False),
    sa.Column('device_owner', sa.String(length=255), nullable=False),
    sa.Column('port_security_enabled', sa.Boolean(), nullable=False),
    sa.Column('allowed_address_pairs', sa.JSON(), nullable=False),
    sa.Column('extra_dhcp_opts', sa.JSON(), nullable=False),
    sa.Column('binding_host_id', sa.String(length=255), nullable=False),
    sa.Column('binding_vif_type', sa.String(length=64), nullable=False),
    sa.Column('binding_vnic_type', sa.String(length=64), nullable=False),
    sa.Column('binding_profile', sa.JSON(), nullable=False),
    sa.Column('binding_vif_details', sa.JSON(), nullable=False),
    sa.Column('dns_name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_networks.id'], name=op.f('fk_network_ports_network_id_network_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_ports')),
    sa.UniqueConstraint('network_id', 'mac_address', name=op.f('uq_network_ports_network_id_mac_address'))
    )
    with op.batch_alter_table('network_ports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_ports_binding_host_id'), ['binding_host_id'], unique=False)
        batch_op.create_index('ix_network_ports_device', ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_ports_device_owner'), ['device_owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_ports_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_ports_project_id'), ['project_id'], unique=False)

    op.create_table('network_security_group_rules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('ethertype', sa.String(length=16), nullable=False),
    sa.Column('protocol', sa.String(length=40), nullable=True),
    sa.Column('port_range_min', sa.Integer(), nullable=True),
    sa.Column('port_range_max', sa.Integer(), nullable=True),
    sa.Column('remote_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('remote_group_id', sa.String(length=36), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['remote_group_id'], ['network_security_groups.id'], name=op.f('fk_network_security_group_rules_remote_group_id_network_security_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['security_group_id'], ['network_security_groups.id'], name=op.f('fk_network_security_group_rules_security_group_id_network_security_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_security_group_rules'))
    )
    with op.batch_alter_table('network_security_group_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_security_group_rules_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_security_group_rules_remote_group_id'), ['remote_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_security_group_rules_security_group_id'), ['security_group_id'], unique=False)

    op.create_table('network_segment_allocations',
    sa.Column('network_type', sa.String(length=32), nullable=False),
    sa.Column('physical_network', sa.String(length=64), nullable=False),
    sa.Column('segmentation_id', sa.Integer(), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_networks.id'], name=op.f('fk_network_segment_allocations_network_id_network_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_type', 'physical_network', 'segmentation_id', name=op.f('pk_network_segment_allocations'))
    )
    with op.batch_alter_table('network_segment_allocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_segment_allocations_network_id'), ['network_id'], unique=False)

    op.create_table('network_subnets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.Column('gateway_ip', sa.String(length=64), nullable=True),
    sa.Column('enable_dhcp', sa.Boolean(), nullable=False),
    sa.Column('ipv6_ra_mode', sa.String(length=32), nullable=True),
    sa.Column('ipv6_address_mode', sa.String(length=32), nullable=True),
    sa.Column('allocation_pools', sa.JSON(), nullable=False),
    sa.Column('dns_nameservers', sa.JSON(), nullable=False),
    sa.Column('host_routes', sa.JSON(), nullable=False),
    sa.Column('service_types', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_networks.id'], name=op.f('fk_network_subnets_network_id_network_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_subnets'))
    )
    with op.batch_alter_table('network_subnets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_subnets_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_subnets_project_id'), ['project_id'], unique=False)

    op.create_table('network_ip_allocations',
    sa.Column('subnet_id', sa.String(length=36), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['network_ports.id'], name=op.f('fk_network_ip_allocations_port_id_network_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subnet_id'], ['network_subnets.id'], name=op.f('fk_network_ip_allocations_subnet_id_network_subnets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subnet_id', 'ip_address', name=op.f('pk_network_ip_allocations'))
    )
    with op.batch_alter_table('network_ip_allocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_ip_allocations_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_ip_allocations_port_id'), ['port_id'], unique=False)

    op.create_table('network_port_security_groups',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['network_ports.id'], name=op.f('fk_network_port_security_groups_port_id_network_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['security_group_id'], ['network_security_groups.id'], name=op.f('fk_network_port_security_groups_security_group_id_network_security_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', 'security_group_id', name=op.f('pk_network_port_security_groups'))
    )
    with op.batch_alter_table('network_port_security_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_port_security_groups_security_group_id'), ['security_group_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('network_port_security_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_port_security_groups_security_group_id'))

    op.drop_table('network_port_security_groups')
    with op.batch_alter_table('network_ip_allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_ip_allocations_port_id'))
        batch_op.drop_index(batch_op.f('ix_network_ip_allocations_network_id'))

    op.drop_table('network_ip_allocations')
    with op.batch_alter_table('network_subnets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_subnets_project_id'))
        batch_op.drop_index(batch_op.f('ix_network_subnets_network_id'))

    op.drop_table('network_subnets')
    with op.batch_alter_table('network_segment_allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_segment_allocations_network_id'))

    op.drop_table('network_segment_allocations')
    with op.batch_alter_table('network_security_group_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_security_group_rules_security_group_id'))
        batch_op.drop_index(batch_op.f('ix_network_security_group_rules_remote_group_id'))
        batch_op.drop_index(batch_op.f('ix_network_security_group_rules_project_id'))

    op.drop_table('network_security_group_rules')
    with op.batch_alter_table('network_ports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_ports_project_id'))
        batch_op.drop_index(batch_op.f('ix_network_ports_network_id'))
        batch_op.drop_index(batch_op.f('ix_network_ports_device_owner'))
        batch_op.drop_index('ix_network_ports_device')
        batch_op.drop_index(batch_op.f('ix_network_ports_binding_host_id'))

    op.drop_table('network_ports')
    op.drop_table('network_default_security_groups')
    with op.batch_alter_table('network_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_tags_tag'))

    op.drop_table('network_tags')
    with op.batch_alter_table('network_security_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_security_groups_project_id'))

    op.drop_table('network_security_groups')
    op.drop_table('network_quotas')
    with op.batch_alter_table('network_networks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_networks_shared'))
        batch_op.drop_index(batch_op.f('ix_network_networks_project_id'))
        batch_op.drop_index(batch_op.f('ix_network_networks_external'))

    op.drop_table('network_networks')
