"""compute instances' network info cache

Revision ID: compute_0004
Revises: compute_0003
Create Date: 2026-12-04 18:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = 'compute_0004'
down_revision = 'compute_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('compute_instances') as batch:
        batch.add_column(sa.Column('network_info', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('compute_instances') as batch:
        batch.drop_column('network_info')
