"""test keys: keys, batches and messages marked as test traffic

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    # Constant defaults: PostgreSQL adds the columns without rewriting the tables.
    for table in ("api_keys", "batches", "messages"):
        op.add_column(table, sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()))
    # A test key's records page: only test rows are in it, so live traffic costs it nothing.
    op.create_index(
        "ix_messages_tenant_id_created_at_test",
        "messages",
        ["tenant_id", "created_at"],
        postgresql_where=sa.text("test"),
        sqlite_where=sa.text("test"),
    )


def downgrade():
    op.drop_index("ix_messages_tenant_id_created_at_test", table_name="messages")
    for table in ("messages", "batches", "api_keys"):
        op.drop_column(table, "test")
