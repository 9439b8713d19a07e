"""tool plans about a whole team, and the facts a diagnosis established

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 01:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tool_plan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.create_foreign_key('fk_tool_plan_team_id_team', 'team', ['team_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('tool_plan', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tool_plan_team_id_team', type_='foreignkey')
        batch_op.drop_column('facts')
        batch_op.drop_column('team_id')
