"""slack installations from the OAuth flow

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 20:29:49.264490
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('slack_installation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('installed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('slack_installation', schema=None) as batch_op:
        batch_op.create_index('ix_slack_installation_lookup', ['enterprise_id', 'team_id', 'installed_at'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('slack_installation', schema=None) as batch_op:
        batch_op.drop_index('ix_slack_installation_lookup')

    op.drop_table('slack_installation')

