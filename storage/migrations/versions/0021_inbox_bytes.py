"""inbox: kept deliveries as raw sealed bytes, not base64 inside JSON

Every acknowledged delivery is written here before its turn, padded to one
size. As base64 text inside a JSON document it took 24 KB per message, was
encoded twice on the way in and parsed by PostgreSQL's json type; as bytes it
takes 18 KB and is stored as it is. Rows kept before this revision stay in
`inbound` and are read from there until they are replayed.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 19:30:00
"""
import base64

import sqlalchemy as sa
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sealed', sa.LargeBinary(), nullable=True))
        batch_op.alter_column('inbound', existing_type=sa.JSON(), nullable=True)
    if op.get_bind().dialect.name == 'postgresql':
        # Ciphertext does not compress: store it out of line as it is, without trying.
        op.execute('ALTER TABLE inbox ALTER COLUMN sealed SET STORAGE EXTERNAL')


def downgrade() -> None:
    # Kept deliveries go back to the old form (base64 text inside JSON), so none is lost on the way down.
    bind = op.get_bind()
    inbox = sa.table('inbox', sa.column('key', sa.String), sa.column('sealed', sa.LargeBinary), sa.column('inbound', sa.JSON))
    for key, sealed in bind.execute(sa.select(inbox.c.key, inbox.c.sealed).where(inbox.c.sealed.is_not(None))).all():
        text = base64.urlsafe_b64encode(sealed).decode()
        bind.execute(inbox.update().where(inbox.c.key == key).values(inbound={'sealed': text}))
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.alter_column('inbound', existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column('sealed')
