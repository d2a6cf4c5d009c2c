"""template categories, billed segments of each message

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "templates",
        sa.Column("category", sa.String(length=20), nullable=False, server_default="notification"),
    )
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column("messages", sa.Column("segments", sa.SmallInteger(), nullable=False, server_default="1"))


def downgrade():
    op.drop_column("messages", "segments")
    op.drop_column("templates", "category")
