"""compute initial

Revision ID: compute_0001
Revises: 
Create Date: 2026-11-22 04:56:47.405127
"""

from alembic import op
import sqlalchemy as sa

from kumo.core.db import UTCDateTime


revision = 'compute_0001'
down_revision = None
branch_labels = ('compute',)
depends_on = None


def upgrade() -> None:
    op.create_table('compute_flavors',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('flavorid', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('root_gb', sa.Integer(), nullable=False),
    sa.Column('ephemeral_gb', sa.Integer(), nullable=False),
    sa.Column('swap', sa.Integer(), nullable=False),
    sa.Column('rxtx_factor', sa.Float(), nullable=False),
    sa.Column('vcpu_weight', sa.Integer(), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_flavors')),
    sa.UniqueConstraint('flavorid', name=op.f('uq_compute_flavors_flavorid')),
    sa.UniqueConstraint('name', name=op.f('uq_compute_flavors_name'))
    )
    with op.batch_alter_table('compute_flavors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_flavors_is_public'), ['is_public'], unique=False)

    op.create_table('compute_instances',
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('display_description', sa.Text(), nullable=True),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('vm_state', sa.String(length=255), nullable=False),
    sa.Column('task_state', sa.String(length=255), nullable=True),
    sa.Column('power_state', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('node', sa.String(length=255), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('flavor', sa.JSON(), nullable=False),
    sa.Column('image_ref', sa.String(length=255), nullable=True),
    sa.Column('key_name', sa.String(length=255), nullable=True),
    sa.Column('key_data', sa.Text(), nullable=True),
    sa.Column('user_data', sa.Text(), nullable=True),
    sa.Column('config_drive', sa.Boolean(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('system_metadata', sa.JSON(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('locked_by', sa.String(length=10), nullable=True),
    sa.Column('locked_reason', sa.Text(), nullable=True),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('access_ip_v4', sa.String(length=39), nullable=True),
    sa.Column('access_ip_v6', sa.String(length=39), nullable=True),
    sa.Column('reservation_id', sa.String(length=255), nullable=False),
    sa.Column('launch_index', sa.Integer(), nullable=False),
    sa.Column('launched_at', UTCDateTime(), nullable=True),
    sa.Column('terminated_at', UTCDateTime(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('uuid', name=op.f('pk_compute_instances'))
    )
    with op.batch_alter_table('compute_instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_instances_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instances_host'), ['host'], unique=False)
        batch_op.create_index('ix_compute_instances_project_id_deleted_at', ['project_id', 'deleted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instances_reservation_id'), ['reservation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instances_task_state'), ['task_state'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instances_updated_at'), ['updated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instances_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instances_vm_state'), ['vm_state'], unique=False)

    op.create_table('compute_keypairs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=10), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('fingerprint', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_keypairs')),
    sa.UniqueConstraint('user_id', 'name', name=op.f('uq_compute_keypairs_user_id_name'))
    )
    op.create_table('compute_nodes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('hypervisor_hostname', sa.String(length=255), nullable=False),
    sa.Column('hypervisor_type', sa.String(length=255), nullable=False),
    sa.Column('hypervisor_version', sa.Integer(), nullable=False),
    sa.Column('host_ip', sa.String(length=39), nullable=True),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('local_gb', sa.Integer(), nullable=False),
    sa.Column('vcpus_used', sa.Integer(), nullable=False),
    sa.Column('memory_mb_used', sa.Integer(), nullable=False),
    sa.Column('local_gb_used', sa.Integer(), nullable=False),
    sa.Column('running_vms', sa.Integer(), nullable=False),
    sa.Column('cpu_info', sa.JSON(), nullable=False),
    sa.Column('disk_available_least', sa.Integer(), nullable=True),
    sa.Column('cpu_allocation_ratio', sa.Float(), nullable=False),
    sa.Column('ram_allocation_ratio', sa.Float(), nullable=False),
    sa.Column('disk_allocation_ratio', sa.Float(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_nodes')),
    sa.UniqueConstraint('host', 'hypervisor_hostname', name=op.f('uq_compute_nodes_host_hypervisor_hostname')),
    sa.UniqueConstraint('uuid', name=op.f('uq_compute_nodes_uuid'))
    )
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_nodes_host'), ['host'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_nodes_updated_at'), ['updated_at'], unique=False)

    op.create_table('compute_quotas',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('resource', sa.String(length=255), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_quotas')),
    sa.UniqueConstraint('project_id', 'resource', name=op.f('uq_compute_quotas_project_id_resource'))
    )
    op.create_table('compute_server_groups',
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('policy', sa.String(length=255), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('uuid', name=op.f('pk_compute_server_groups'))
    )
    with op.batch_alter_table('compute_server_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_server_groups_project_id'), ['project_id'], unique=False)

    op.create_table('compute_flavor_extra_specs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('flavor_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['flavor_id'], ['compute_flavors.id'], name=op.f('fk_compute_flavor_extra_specs_flavor_id_compute_flavors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_flavor_extra_specs')),
    sa.UniqueConstraint('flavor_id', 'key', name=op.f('uq_compute_flavor_extra_specs_flavor_id_key'))
    )
    op.create_table('compute_flavor_projects',
    sa.Column('flavor_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['flavor_id'], ['compute_flavors.id'], name=op.f('fk_compute_flavor_projects_flavor_id_compute_flavors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('flavor_id', 'project_id', name=op.f('pk_compute_flavor_projects'))
    )
    with op.batch_alter_table('compute_flavor_projects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_flavor_projects_project_id'), ['project_id'], unique=False)

    op.create_table('compute_instance_actions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('action', sa.String(length=255), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('start_time', UTCDateTime(), nullable=False),
    sa.Column('finish_time', UTCDateTime(), nullable=True),
    sa.Column('message', sa.String(length=255), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['instance_uuid'], ['compute_instances.uuid'], name=op.f('fk_compute_instance_actions_instance_uuid_compute_instances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_instance_actions'))
    )
    with op.batch_alter_table('compute_instance_actions', schema=None) as batch_op:
        batch_op.create_index('ix_compute_instance_actions_instance_uuid_request_id', ['instance_uuid', 'request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instance_actions_updated_at'), ['updated_at'], unique=False)

    op.create_table('compute_instance_faults',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('code', sa.Integer(), nullable=False),
    sa.Column('message', sa.String(length=255), nullable=False),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['instance_uuid'], ['compute_instances.uuid'], name=op.f('fk_compute_instance_faults_instance_uuid_compute_instances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_instance_faults'))
    )
    with op.batch_alter_table('compute_instance_faults', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_instance_faults_instance_uuid'), ['instance_uuid'], unique=False)

    op.create_table('compute_server_group_members',
    sa.Column('group_uuid', sa.String(length=36), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['group_uuid'], ['compute_server_groups.uuid'], name=op.f('fk_compute_server_group_members_group_uuid_compute_server_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_uuid', 'instance_uuid', name=op.f('pk_compute_server_group_members'))
    )
    with op.batch_alter_table('compute_server_group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_server_group_members_instance_uuid'), ['instance_uuid'], unique=False)

    op.create_table('compute_instance_action_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('action_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=255), nullable=False),
    sa.Column('start_time', UTCDateTime(), nullable=False),
    sa.Column('finish_time', UTCDateTime(), nullable=True),
    sa.Column('result', sa.String(length=255), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['action_id'], ['compute_instance_actions.id'], name=op.f('fk_compute_instance_action_events_action_id_compute_instance_actions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_instance_action_events'))
    )
    with op.batch_alter_table('compute_instance_action_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_instance_action_events_action_id'), ['action_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('compute_instance_action_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_instance_action_events_action_id'))

    op.drop_table('compute_instance_action_events')
    with op.batch_alter_table('compute_server_group_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_server_group_members_instance_uuid'))

    op.drop_table('compute_server_group_members')
    with op.batch_alter_table('compute_instance_faults', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_instance_faults_instance_uuid'))

    op.drop_table('compute_instance_faults')
    with op.batch_alter_table('compute_instance_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_instance_actions_updated_at'))
        batch_op.drop_index('ix_compute_instance_actions_instance_uuid_request_id')

    op.drop_table('compute_instance_actions')
    with op.batch_alter_table('compute_flavor_projects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_flavor_projects_project_id'))

    op.drop_table('compute_flavor_projects')
    op.drop_table('compute_flavor_extra_specs')
    with op.batch_alter_table('compute_server_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_server_groups_project_id'))

    op.drop_table('compute_server_groups')
    op.drop_table('compute_quotas')
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_nodes_updated_at'))
        batch_op.drop_index(batch_op.f('ix_compute_nodes_host'))

    op.drop_table('compute_nodes')
    op.drop_table('compute_keypairs')
    with op.batch_alter_table('compute_instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_instances_vm_state'))
        batch_op.drop_index(batch_op.f('ix_compute_instances_user_id'))
        batch_op.drop_index(batch_op.f('ix_compute_instances_updated_at'))
        batch_op.drop_index(batch_op.f('ix_compute_instances_task_state'))
        batch_op.drop_index(batch_op.f('ix_compute_instances_reservation_id'))
        batch_op.drop_index('ix_compute_instances_project_id_deleted_at')
        batch_op.drop_index(batch_op.f('ix_compute_instances_host'))
        batch_op.drop_index(batch_op.f('ix_compute_instances_created_at'))

    op.drop_table('compute_instances')
    with op.batch_alter_table('compute_flavors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_flavors_is_public'))

    op.drop_table('compute_flavors')
