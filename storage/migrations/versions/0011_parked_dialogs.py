"""parked conversations: a command typed mid-dialog sets the dialog aside instead of trapping the person

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 22:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dialog_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parked', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('dialog_state', schema=None) as batch_op:
        batch_op.drop_column('parked')
