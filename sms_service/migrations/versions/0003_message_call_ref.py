"""message_call_ref

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 01:11:09.275322
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("messages", sa.Column("call_ref", sa.String(length=100), nullable=True))


def downgrade():
    op.drop_column("messages", "call_ref")
