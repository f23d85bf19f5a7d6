"""tasks.pending_reason: why Slurm keeps a pending task waiting (squeue's %r)

Revision ID: a47c3e9b2d16
Revises: 6d2c8e4a1f35
Create Date: 2026-12-08 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a47c3e9b2d16'
down_revision = '6d2c8e4a1f35'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_reason', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('pending_reason')
