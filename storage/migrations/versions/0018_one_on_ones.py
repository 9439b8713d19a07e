"""1:1s: each manager–report pair's rhythm, its meetings, talking points, private notes and action items

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 10:30:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'one_on_one',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('manager_id', sa.Integer(), nullable=False),
        sa.Column('report_id', sa.Integer(), nullable=False),
        sa.Column('every_weeks', sa.Integer(), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=False),
        sa.Column('at', sa.String(length=5), nullable=False),
        sa.Column('anchor', sa.Date(), nullable=False),
        sa.Column('proposal', sa.JSON(), nullable=True),
        sa.Column('ask_report', sa.Boolean(), nullable=False),
        sa.Column('skipped_in_row', sa.Integer(), nullable=False),
        sa.Column('skips_told', sa.Boolean(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['manager_id'], ['person.id']),
        sa.ForeignKeyConstraint(['report_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('manager_id', 'report_id'),
    )
    op.create_index('ix_one_on_one_manager_id', 'one_on_one', ['manager_id'])
    op.create_index('ix_one_on_one_report_id', 'one_on_one', ['report_id'])
    op.create_table(
        'one_on_one_meeting',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pair_id', sa.Integer(), nullable=False),
        sa.Column('planned_at', UTC(), nullable=False),
        sa.Column('starts_at', UTC(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('moved', sa.String(length=16), nullable=True),
        sa.Column('shared_notes', sa.Text(), nullable=True),
        sa.Column('recorded_at', UTC(), nullable=True),
        sa.Column('agenda_at', UTC(), nullable=True),
        sa.Column('asked_at', UTC(), nullable=True),
        sa.Column('created_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['pair_id'], ['one_on_one.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('pair_id', 'planned_at'),
    )
    op.create_index('ix_one_on_one_meeting_pair_id', 'one_on_one_meeting', ['pair_id'])
    op.create_index('ix_one_on_one_meeting_starts_at', 'one_on_one_meeting', ['starts_at'])
    op.create_table(
        'talking_point',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pair_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('source', sa.String(length=24), nullable=False),
        sa.Column('ref', sa.String(length=64), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('discussed_at', UTC(), nullable=True),
        sa.Column('created_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['pair_id'], ['one_on_one.id']),
        sa.ForeignKeyConstraint(['author_id'], ['person.id']),
        sa.ForeignKeyConstraint(['meeting_id'], ['one_on_one_meeting.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_talking_point_pair_id', 'talking_point', ['pair_id'])
    op.create_index('ix_talking_point_meeting_id', 'talking_point', ['meeting_id'])
    op.create_table(
        'one_on_one_note',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['meeting_id'], ['one_on_one_meeting.id']),
        sa.ForeignKeyConstraint(['author_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_one_on_one_note_meeting_id', 'one_on_one_note', ['meeting_id'])
    op.create_index('ix_one_on_one_note_author_id', 'one_on_one_note', ['author_id'])
    op.create_table(
        'action_item',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('pair_id', sa.Integer(), nullable=True),
        sa.Column('meeting_id', sa.Integer(), nullable=True),
        sa.Column('done_at', UTC(), nullable=True),
        sa.Column('created_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['person.id']),
        sa.ForeignKeyConstraint(['created_by_id'], ['person.id']),
        sa.ForeignKeyConstraint(['pair_id'], ['one_on_one.id']),
        sa.ForeignKeyConstraint(['meeting_id'], ['one_on_one_meeting.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_action_item_owner_id', 'action_item', ['owner_id'])
    op.create_index('ix_action_item_pair_id', 'action_item', ['pair_id'])


def downgrade() -> None:
    op.drop_table('action_item')
    op.drop_table('one_on_one_note')
    op.drop_table('talking_point')
    op.drop_table('one_on_one_meeting')
    op.drop_table('one_on_one')
