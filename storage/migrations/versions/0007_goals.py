"""goals, milestones, progress updates and integration tokens

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 20:45:41.272918
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('integration_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('goal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('start_value', sa.Float(), nullable=True),
    sa.Column('target_value', sa.Float(), nullable=True),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('committed', sa.Boolean(), nullable=False),
    sa.Column('learning', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('rag', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('nudges_off', sa.Boolean(), nullable=False),
    sa.Column('snoozed_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['owner_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['parent_id'], ['goal.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goal_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_goal_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_goal_team_id'), ['team_id'], unique=False)

    op.create_table('goal_milestone',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('goal_id', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('done_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['goal_id'], ['goal.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('goal_milestone', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goal_milestone_goal_id'), ['goal_id'], unique=False)

    op.create_table('goal_update',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('goal_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('expected', sa.Float(), nullable=False),
    sa.Column('rag', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['goal_id'], ['goal.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('goal_update', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goal_update_goal_id'), ['goal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_goal_update_recorded_at'), ['recorded_at'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('goal_update', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_goal_update_recorded_at'))
        batch_op.drop_index(batch_op.f('ix_goal_update_goal_id'))

    op.drop_table('goal_update')
    with op.batch_alter_table('goal_milestone', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_goal_milestone_goal_id'))

    op.drop_table('goal_milestone')
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_goal_team_id'))
        batch_op.drop_index(batch_op.f('ix_goal_parent_id'))
        batch_op.drop_index(batch_op.f('ix_goal_owner_id'))

    op.drop_table('goal')
    op.drop_table('integration_token')

