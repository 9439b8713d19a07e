"""sealed anonymous answers: sealed_draft, and one sealed pool_360 row per submission

Rows pooled before this revision keep their plaintext columns (now nullable)
and are released at close like sealed ones.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sealed_draft',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('item', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('sealed', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('person_id', 'scope', 'item')
    )
    with op.batch_alter_table('sealed_draft', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sealed_draft_scope'), ['scope'], unique=False)
    with op.batch_alter_table('pool_360', schema=None, table_kwargs={'sqlite_with_rowid': False}) as batch_op:
        batch_op.add_column(sa.Column('sealed', sa.Text(), nullable=True))
        batch_op.alter_column('group', existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        batch_op.alter_column('question_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM pool_360 WHERE sealed IS NOT NULL")
    with op.batch_alter_table('pool_360', schema=None, table_kwargs={'sqlite_with_rowid': False}) as batch_op:
        batch_op.alter_column('question_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False)
        batch_op.alter_column('group', existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False)
        batch_op.drop_column('sealed')
    with op.batch_alter_table('sealed_draft', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sealed_draft_scope'))
    op.drop_table('sealed_draft')
