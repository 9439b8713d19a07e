"""which tool helps: plans and outcomes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 20:31:04.814259
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('tool_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asked_by_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('gap', sa.Text(), nullable=False),
    sa.Column('influence', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('tool_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('signals', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('follow_up_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('outcome_note', sa.Text(), nullable=True),
    sa.Column('outcome_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['asked_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tool_plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tool_plan_asked_by_id'), ['asked_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tool_plan_follow_up_at'), ['follow_up_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tool_plan_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tool_plan_tool_id'), ['tool_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('tool_plan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tool_plan_tool_id'))
        batch_op.drop_index(batch_op.f('ix_tool_plan_person_id'))
        batch_op.drop_index(batch_op.f('ix_tool_plan_follow_up_at'))
        batch_op.drop_index(batch_op.f('ix_tool_plan_asked_by_id'))

    op.drop_table('tool_plan')

