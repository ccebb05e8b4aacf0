"""compute console auth tokens

Revision ID: compute_0002
Revises: compute_0001
Create Date: 2026-12-04 14:00:00
"""

from alembic import op
import sqlalchemy as sa

from kumo.core.db import UTCDateTime


revision = 'compute_0002'
down_revision = 'compute_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('compute_console_auth_tokens',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=255), nullable=False),
    sa.Column('console_type', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('internal_access_path', sa.String(length=255), nullable=True),
    sa.Column('access_url_base', sa.String(length=255), nullable=True),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('expires', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['instance_uuid'], ['compute_instances.uuid'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_compute_console_auth_tokens_instance_uuid', 'compute_console_auth_tokens',
                    ['instance_uuid'], unique=False)
    op.create_index('ix_compute_console_auth_tokens_expires', 'compute_console_auth_tokens',
                    ['expires'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_compute_console_auth_tokens_expires', table_name='compute_console_auth_tokens')
    op.drop_index('ix_compute_console_auth_tokens_instance_uuid', table_name='compute_console_auth_tokens')
    op.drop_table('compute_console_auth_tokens')
