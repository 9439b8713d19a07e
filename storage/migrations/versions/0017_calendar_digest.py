"""calendar feeds remember what they last parsed, so an unchanged feed is not parsed again the same day

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 08:20:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calendar_feed') as batch:
        batch.add_column(sa.Column('digest', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('read_for', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('calendar_feed') as batch:
        batch.drop_column('read_for')
        batch.drop_column('digest')
