"""submissions.flow_note: what the tasks run when it is less than the whole real flow

Revision ID: 8a3f1c2d4e5b
Revises: 5c1e2a7d9b40
Create Date: 2026-12-06 07:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8a3f1c2d4e5b'
down_revision = '5c1e2a7d9b40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flow_note', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('flow_note')
