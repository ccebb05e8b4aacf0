"""image initial

Revision ID: image_0001
Revises: 
Create Date: 2026-11-22 04:03:05.551977
"""

from alembic import op
import sqlalchemy as sa

from kumo.core.db import UTCDateTime


revision = 'image_0001'
down_revision = None
branch_labels = ('image',)
depends_on = None


def upgrade() -> None:

    op.create_table('image_images',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('visibility', sa.String(length=20), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('disk_format', sa.String(length=20), nullable=True),
    sa.Column('container_format', sa.String(length=20), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('virtual_size', sa.BigInteger(), nullable=True),
    sa.Column('checksum', sa.String(length=32), nullable=True),
    sa.Column('os_hash_algo', sa.String(length=64), nullable=True),
    sa.Column('os_hash_value', sa.String(length=128), nullable=True),
    sa.Column('min_disk', sa.Integer(), nullable=False),
    sa.Column('min_ram', sa.Integer(), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('os_hidden', sa.Boolean(), nullable=False),
    sa.Column('properties', sa.JSON(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('location', sa.Text(), nullable=True),
    sa.Column('staged', sa.Text(), nullable=True),
    sa.Column('uploading_bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_images'))
    )
    with op.batch_alter_table('image_images', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_images_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_visibility'), ['visibility'], unique=False)

    op.create_table('image_members',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('member_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_images.id'], name=op.f('fk_image_members_image_id_image_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'member_id', name=op.f('pk_image_members'))
    )
    with op.batch_alter_table('image_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_members_member_id'), ['member_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('image_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_image_members_member_id'))

    op.drop_table('image_members')
    with op.batch_alter_table('image_images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_image_images_visibility'))
        batch_op.drop_index(batch_op.f('ix_image_images_status'))
        batch_op.drop_index(batch_op.f('ix_image_images_owner'))
        batch_op.drop_index(batch_op.f('ix_image_images_name'))

    op.drop_table('image_images')

