"""index tasks by submission and state (progress counts of the dashboard and the page)

Revision ID: 5c1e2a7d9b40
Revises: 2f65528170ae
Create Date: 2026-11-23 11:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5c1e2a7d9b40'
down_revision = '2f65528170ae'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_submission_state', ['submission_id', 'state'], unique=False)


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_submission_state')
