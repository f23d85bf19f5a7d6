"""submissions.launch_claim and launch_claim_until: one launch at a time, renewed while it works

Revision ID: 6d2c8e4a1f35
Revises: 3b9d6e1f0a27
Create Date: 2026-12-06 09:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6d2c8e4a1f35'
down_revision = '3b9d6e1f0a27'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('launch_claim', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('launch_claim_until', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('launch_claim_until')
        batch_op.drop_column('launch_claim')
