"""feedback, kudos and anonymous 360s

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 20:36:07.962755
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('campaign_360',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('comment_threshold', sa.Integer(), nullable=False),
    sa.Column('opens_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('closes_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['subject_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('campaign_360', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_360_closes_at'), ['closes_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_360_subject_id'), ['subject_id'], unique=False)

    op.create_table('feedback_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('responder_id', sa.Integer(), nullable=False),
    sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('deadline', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reminded', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['requester_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['responder_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feedback_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_request_requester_id'), ['requester_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_request_responder_id'), ['responder_id'], unique=False)

    op.create_table('answer_360',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('group', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('question_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('written_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign_360.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('answer_360', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_answer_360_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('feedback_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('from_id', sa.Integer(), nullable=False),
    sa.Column('to_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('thanked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['from_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['feedback_request.id'], ),
    sa.ForeignKeyConstraint(['to_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feedback_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_entry_from_id'), ['from_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_entry_to_id'), ['to_id'], unique=False)

    op.create_table('pool_360',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('group', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('question_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign_360.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('pool_360', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pool_360_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('rater_360',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('rater_id', sa.Integer(), nullable=False),
    sa.Column('group', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('answered', sa.Boolean(), nullable=False),
    sa.Column('declined', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign_360.id'], ),
    sa.ForeignKeyConstraint(['rater_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'rater_id')
    )
    with op.batch_alter_table('rater_360', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rater_360_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rater_360_rater_id'), ['rater_id'], unique=False)

    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recognition', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))

    with op.batch_alter_table('team', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feedback_after_checkin', sa.Boolean(), nullable=False, server_default=sa.true()))




def downgrade() -> None:

    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('recognition')

    with op.batch_alter_table('team', schema=None) as batch_op:
        batch_op.drop_column('feedback_after_checkin')

    with op.batch_alter_table('rater_360', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rater_360_rater_id'))
        batch_op.drop_index(batch_op.f('ix_rater_360_campaign_id'))

    op.drop_table('rater_360')
    with op.batch_alter_table('pool_360', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pool_360_campaign_id'))

    op.drop_table('pool_360')
    with op.batch_alter_table('feedback_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_entry_to_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_entry_from_id'))

    op.drop_table('feedback_entry')
    with op.batch_alter_table('answer_360', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_answer_360_campaign_id'))

    op.drop_table('answer_360')
    with op.batch_alter_table('feedback_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_request_responder_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_request_requester_id'))

    op.drop_table('feedback_request')
    with op.batch_alter_table('campaign_360', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_360_subject_id'))
        batch_op.drop_index(batch_op.f('ix_campaign_360_closes_at'))

    op.drop_table('campaign_360')

