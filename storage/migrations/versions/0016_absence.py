"""absence nobody has to type: leave sources, calendar feeds, overrides, team holidays

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 08:00:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('leave') as batch:
        batch.add_column(sa.Column('source', sa.String(length=16), nullable=False, server_default='typed'))
    with op.batch_alter_table('team') as batch:
        batch.add_column(sa.Column('holidays', sa.String(length=16), nullable=True))
    op.create_table(
        'calendar_feed',
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('sealed_url', sa.Text(), nullable=False),
        sa.Column('checked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('ok_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('problem', sa.String(length=32), nullable=True),
        sa.Column('told_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('person_id'),
    )
    op.create_table(
        'away_override',
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('person_id', 'day'),
    )


def downgrade() -> None:
    op.drop_table('away_override')
    op.drop_table('calendar_feed')
    with op.batch_alter_table('team') as batch:
        batch.drop_column('holidays')
    with op.batch_alter_table('leave') as batch:
        batch.drop_column('source')
