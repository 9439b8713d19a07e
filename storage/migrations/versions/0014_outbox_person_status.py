"""an index for the claim's per-person order check

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 02:55:00
"""
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_person_status', 'outbox', ['person_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_person_status', table_name='outbox')
