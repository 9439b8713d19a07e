"""check-ins: team rhythm, templates, runs, answers, leave

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 20:12:30.372259
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkin_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id')
    )
    op.create_table('checkin_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('snoozed_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('snoozes', sa.Integer(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('answered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('person_id', 'period')
    )
    with op.batch_alter_table('checkin_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkin_run_period'), ['period'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkin_run_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkin_run_team_id'), ['team_id'], unique=False)

    op.create_table('leave',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('start', sa.Date(), nullable=False),
    sa.Column('end', sa.Date(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('leave', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leave_person_id'), ['person_id'], unique=False)

    op.create_table('checkin_answer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('number', sa.Float(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['checkin_run.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'question_id')
    )
    with op.batch_alter_table('checkin_answer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkin_answer_run_id'), ['run_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_topic'), ['topic'], unique=False)

    with op.batch_alter_table('team', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkin_weekday', sa.Integer(), nullable=False, server_default='4'))
        batch_op.add_column(sa.Column('checkin_time', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False, server_default='16:00'))
        batch_op.add_column(sa.Column('reminder_count', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('reminder_after_minutes', sa.Integer(), nullable=False, server_default='120'))
        batch_op.add_column(sa.Column('digest_weekday', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('digest_time', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False, server_default='09:00'))
        batch_op.add_column(sa.Column('broadcast', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('broadcast_address', sa.JSON(), nullable=False, server_default='{}'))



def downgrade() -> None:
    with op.batch_alter_table('team', schema=None) as batch_op:
        batch_op.drop_column('broadcast_address')
        batch_op.drop_column('broadcast')
        batch_op.drop_column('digest_time')
        batch_op.drop_column('digest_weekday')
        batch_op.drop_column('reminder_after_minutes')
        batch_op.drop_column('reminder_count')
        batch_op.drop_column('checkin_time')
        batch_op.drop_column('checkin_weekday')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_topic'))
        batch_op.drop_column('topic')

    with op.batch_alter_table('checkin_answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkin_answer_run_id'))

    op.drop_table('checkin_answer')
    with op.batch_alter_table('leave', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leave_person_id'))

    op.drop_table('leave')
    with op.batch_alter_table('checkin_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkin_run_team_id'))
        batch_op.drop_index(batch_op.f('ix_checkin_run_person_id'))
        batch_op.drop_index(batch_op.f('ix_checkin_run_period'))

    op.drop_table('checkin_run')
    op.drop_table('checkin_template')
