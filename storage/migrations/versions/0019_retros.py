"""Appreciative retros: the retro, who takes part, and what its close releases (themes, quotes, proposals)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-10 10:00:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'retro_policy',
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('members_may_start', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['team.id']),
        sa.PrimaryKeyConstraint('team_id'),
    )
    op.create_table(
        'retro',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('started_by_id', sa.Integer(), nullable=False),
        sa.Column('theme', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('threshold', sa.Integer(), nullable=False),
        sa.Column('opens_at', UTC(), nullable=False),
        sa.Column('closes_at', UTC(), nullable=False),
        sa.Column('vote_closes_at', UTC(), nullable=True),
        sa.Column('invited_at', UTC(), nullable=True),
        sa.Column('closed_on', sa.Date(), nullable=True),
        sa.Column('voted_on', sa.Date(), nullable=True),
        sa.Column('answered', sa.Integer(), nullable=False),
        sa.Column('voters', sa.Integer(), nullable=False),
        sa.Column('created_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['team.id']),
        sa.ForeignKeyConstraint(['started_by_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_retro_team_id', 'retro', ['team_id'])
    op.create_index('ix_retro_status', 'retro', ['status'])
    op.create_table(
        'retro_participant',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('retro_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('answered', sa.Boolean(), nullable=False),
        sa.Column('voted', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['retro_id'], ['retro.id']),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('retro_id', 'person_id'),
    )
    op.create_index('ix_retro_participant_retro_id', 'retro_participant', ['retro_id'])
    op.create_index('ix_retro_participant_person_id', 'retro_participant', ['person_id'])
    op.create_table(
        'retro_theme',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('retro_id', sa.Integer(), nullable=False),
        sa.Column('stage', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('people', sa.Integer(), nullable=False),
        sa.Column('written_on', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['retro_id'], ['retro.id']),
        sa.PrimaryKeyConstraint('id'),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_retro_theme_retro_id', 'retro_theme', ['retro_id'])
    op.create_table(
        'retro_quote',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('retro_id', sa.Integer(), nullable=False),
        sa.Column('theme_id', sa.String(length=32), nullable=True),
        sa.Column('stage', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('written_on', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['retro_id'], ['retro.id']),
        sa.ForeignKeyConstraint(['author_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_retro_quote_retro_id', 'retro_quote', ['retro_id'])
    op.create_index('ix_retro_quote_author_id', 'retro_quote', ['author_id'])
    op.create_table(
        'retro_proposal',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('retro_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('votes', sa.Integer(), nullable=True),
        sa.Column('chosen', sa.Boolean(), nullable=False),
        sa.Column('action_item_id', sa.Integer(), nullable=True),
        sa.Column('followed_up_at', UTC(), nullable=True),
        sa.Column('helped_yes', sa.Integer(), nullable=False),
        sa.Column('helped_partly', sa.Integer(), nullable=False),
        sa.Column('helped_no', sa.Integer(), nullable=False),
        sa.Column('helped_counted_on', sa.Date(), nullable=True),
        sa.Column('written_on', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['retro_id'], ['retro.id']),
        sa.ForeignKeyConstraint(['action_item_id'], ['action_item.id']),
        sa.PrimaryKeyConstraint('id'),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_retro_proposal_retro_id', 'retro_proposal', ['retro_id'])


def downgrade() -> None:
    for table in ('retro_proposal', 'retro_quote', 'retro_theme', 'retro_participant', 'retro', 'retro_policy'):
        op.drop_table(table)
