"""Improvement ideas: the idea, its thread, and anonymous submissions on their way (sealed)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 12:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'idea',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('signed_by_id', sa.Integer(), nullable=True),
        sa.Column('relay', sa.Text(), nullable=True),
        sa.Column('relay_pending', sa.Integer(), nullable=False),
        sa.Column('relay_on', sa.Date(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('decision', sa.String(length=16), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('result', sa.Text(), nullable=True),
        sa.Column('received_on', sa.Date(), nullable=False),
        sa.Column('acknowledged_on', sa.Date(), nullable=True),
        sa.Column('decided_on', sa.Date(), nullable=True),
        sa.Column('done_on', sa.Date(), nullable=True),
        sa.Column('result_on', sa.Date(), nullable=True),
        sa.Column('nudged_on', sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(['owner_id'], ['person.id']),
        sa.ForeignKeyConstraint(['team_id'], ['team.id']),
        sa.ForeignKeyConstraint(['signed_by_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_idea_owner_id', 'idea', ['owner_id'])
    op.create_index('ix_idea_team_id', 'idea', ['team_id'])
    op.create_index('ix_idea_signed_by_id', 'idea', ['signed_by_id'])
    op.create_table(
        'idea_message',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('idea_id', sa.String(length=32), nullable=False),
        sa.Column('from_owner', sa.Boolean(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('written_on', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['idea_id'], ['idea.id']),
        sa.PrimaryKeyConstraint('id'),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_idea_message_idea_id', 'idea_message', ['idea_id'])
    op.create_table(
        'idea_submission',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('sealed', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table('idea_submission')
    op.drop_index('ix_idea_message_idea_id', table_name='idea_message')
    op.drop_table('idea_message')
    op.drop_index('ix_idea_signed_by_id', table_name='idea')
    op.drop_index('ix_idea_team_id', table_name='idea')
    op.drop_index('ix_idea_owner_id', table_name='idea')
    op.drop_table('idea')
