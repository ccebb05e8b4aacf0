"""identity: initial schema

Revision ID: identity_0001
Revises: 
Create Date: 2026-11-22 03:28:50.489572
"""

from alembic import op
import sqlalchemy as sa

from kumo.core.db import UTCDateTime


revision = 'identity_0001'
down_revision = None
branch_labels = ('identity',)
depends_on = None


def upgrade() -> None:

    op.create_table('identity_domains',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_domains')),
    sa.UniqueConstraint('name', name=op.f('uq_identity_domains_name'))
    )
    op.create_table('identity_regions',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('parent_region_id', sa.String(length=255), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_regions'))
    )
    op.create_table('identity_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_revision'))
    )
    op.create_table('identity_revocation_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('audit_id', sa.String(length=32), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('domain_id', sa.String(length=64), nullable=True),
    sa.Column('app_cred_id', sa.String(length=64), nullable=True),
    sa.Column('issued_before', UTCDateTime(), nullable=False),
    sa.Column('revoked_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_revocation_events'))
    )
    with op.batch_alter_table('identity_revocation_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_revocation_events_audit_id'), ['audit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_revocation_events_revoked_at'), ['revoked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_revocation_events_user_id'), ['user_id'], unique=False)

    op.create_table('identity_roles',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_roles')),
    sa.UniqueConstraint('domain_id', 'name', name=op.f('uq_identity_roles_domain_id_name'))
    )
    op.create_table('identity_services',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_services'))
    )
    op.create_table('identity_assignments',
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('role_id', sa.String(length=64), nullable=False),
    sa.Column('inherited', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['identity_roles.id'], name=op.f('fk_identity_assignments_role_id_identity_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('type', 'actor_id', 'target_id', 'role_id', 'inherited', name=op.f('pk_identity_assignments'))
    )
    with op.batch_alter_table('identity_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_assignments_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_assignments_target_id'), ['target_id'], unique=False)

    op.create_table('identity_endpoints',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('interface', sa.String(length=8), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('region_id', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['identity_services.id'], name=op.f('fk_identity_endpoints_service_id_identity_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_endpoints'))
    )
    with op.batch_alter_table('identity_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_endpoints_service_id'), ['service_id'], unique=False)

    op.create_table('identity_groups',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domains.id'], name=op.f('fk_identity_groups_domain_id_identity_domains')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_groups')),
    sa.UniqueConstraint('domain_id', 'name', name=op.f('uq_identity_groups_domain_id_name'))
    )
    with op.batch_alter_table('identity_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_groups_domain_id'), ['domain_id'], unique=False)

    op.create_table('identity_implied_roles',
    sa.Column('prior_role_id', sa.String(length=64), nullable=False),
    sa.Column('implied_role_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['implied_role_id'], ['identity_roles.id'], name=op.f('fk_identity_implied_roles_implied_role_id_identity_roles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['prior_role_id'], ['identity_roles.id'], name=op.f('fk_identity_implied_roles_prior_role_id_identity_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('prior_role_id', 'implied_role_id', name=op.f('pk_identity_implied_roles'))
    )
    op.create_table('identity_projects',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('parent_id', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domains.id'], name=op.f('fk_identity_projects_domain_id_identity_domains')),
    sa.ForeignKeyConstraint(['parent_id'], ['identity_projects.id'], name=op.f('fk_identity_projects_parent_id_identity_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_projects')),
    sa.UniqueConstraint('domain_id', 'name', name=op.f('uq_identity_projects_domain_id_name'))
    )
    with op.batch_alter_table('identity_projects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_projects_domain_id'), ['domain_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_projects_parent_id'), ['parent_id'], unique=False)

    op.create_table('identity_users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('default_project_id', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('failed_auth_count', sa.Integer(), nullable=False),
    sa.Column('failed_auth_at', UTCDateTime(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('last_active_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domains.id'], name=op.f('fk_identity_users_domain_id_identity_domains')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_users')),
    sa.UniqueConstraint('domain_id', 'name', name=op.f('uq_identity_users_domain_id_name'))
    )
    with op.batch_alter_table('identity_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_users_domain_id'), ['domain_id'], unique=False)

    op.create_table('identity_application_credentials',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('system', sa.String(length=16), nullable=True),
    sa.Column('secret_hash', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('expires_at', UTCDateTime(), nullable=True),
    sa.Column('unrestricted', sa.Boolean(), nullable=False),
    sa.Column('role_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['identity_users.id'], name=op.f('fk_identity_application_credentials_user_id_identity_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_application_credentials')),
    sa.UniqueConstraint('user_id', 'name', name=op.f('uq_identity_application_credentials_user_id_name'))
    )
    with op.batch_alter_table('identity_application_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_application_credentials_user_id'), ['user_id'], unique=False)

    op.create_table('identity_memberships',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['identity_groups.id'], name=op.f('fk_identity_memberships_group_id_identity_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['identity_users.id'], name=op.f('fk_identity_memberships_user_id_identity_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'group_id', name=op.f('pk_identity_memberships'))
    )
    op.create_table('identity_passwords',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=True),
    sa.Column('self_service', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['identity_users.id'], name=op.f('fk_identity_passwords_user_id_identity_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_passwords'))
    )
    with op.batch_alter_table('identity_passwords', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_passwords_user_id'), ['user_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('identity_passwords', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_passwords_user_id'))

    op.drop_table('identity_passwords')
    op.drop_table('identity_memberships')
    with op.batch_alter_table('identity_application_credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_application_credentials_user_id'))

    op.drop_table('identity_application_credentials')
    with op.batch_alter_table('identity_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_users_domain_id'))

    op.drop_table('identity_users')
    with op.batch_alter_table('identity_projects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_projects_parent_id'))
        batch_op.drop_index(batch_op.f('ix_identity_projects_domain_id'))

    op.drop_table('identity_projects')
    op.drop_table('identity_implied_roles')
    with op.batch_alter_table('identity_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_groups_domain_id'))

    op.drop_table('identity_groups')
    with op.batch_alter_table('identity_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_endpoints_service_id'))

    op.drop_table('identity_endpoints')
    with op.batch_alter_table('identity_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_assignments_target_id'))
        batch_op.drop_index(batch_op.f('ix_identity_assignments_actor_id'))

    op.drop_table('identity_assignments')
    op.drop_table('identity_services')
    op.drop_table('identity_roles')
    with op.batch_alter_table('identity_revocation_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_revocation_events_user_id'))
        batch_op.drop_index(batch_op.f('ix_identity_revocation_events_revoked_at'))
        batch_op.drop_index(batch_op.f('ix_identity_revocation_events_audit_id'))

    op.drop_table('identity_revocation_events')
    op.drop_table('identity_revision')
    op.drop_table('identity_regions')
    op.drop_table('identity_domains')

