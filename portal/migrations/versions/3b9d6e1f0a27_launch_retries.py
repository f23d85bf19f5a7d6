"""submissions.launch_attempts and retry_at: a launch that failed for a passing cause is retried

Revision ID: 3b9d6e1f0a27
Revises: ee8a181b1784
Create Date: 2026-12-06 07:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3b9d6e1f0a27'
down_revision = 'ee8a181b1784'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('launch_attempts', sa.Integer(), nullable=False, server_default='0')
        )
        batch_op.add_column(sa.Column('retry_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('retry_at')
        batch_op.drop_column('launch_attempts')
