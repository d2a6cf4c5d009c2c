"""messages: no foreign keys, partial indexes for what inserts leave empty, batch pages from an index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 02:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FOREIGN_KEYS = {
    "fk_messages_tenant_id_tenants": ("tenant_id", "tenants"),
    "fk_messages_template_id_templates": ("template_id", "templates"),
    "fk_messages_batch_id_batches": ("batch_id", "batches"),
}


def _where(condition: str) -> dict:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade():
    with op.batch_alter_table("messages") as batch_op:
        for name in FOREIGN_KEYS:
            batch_op.drop_constraint(name, type_="foreignkey")
    op.drop_index("ix_messages_provider_biz_id", table_name="messages")
    op.create_index(
        "ix_messages_provider_biz_id", "messages", ["provider", "biz_id"], **_where("biz_id IS NOT NULL")
    )
    op.drop_index("ix_messages_callback_status_callback_next_at", table_name="messages")
    op.create_index(
        "ix_messages_callback_status_callback_next_at",
        "messages",
        ["callback_status", "callback_next_at"],
        **_where("callback_status = 'pending'"),
    )
    op.drop_index("ix_messages_batch_id", table_name="messages")
    op.create_index(
        "ix_messages_batch_id_created_at",
        "messages",
        ["batch_id", "created_at", "id"],
        postgresql_include=["status", "mobile"],
        **_where("batch_id IS NOT NULL"),
    )


def downgrade():
    op.drop_index("ix_messages_batch_id_created_at", table_name="messages")
    op.create_index("ix_messages_batch_id", "messages", ["batch_id"])
    op.drop_index("ix_messages_callback_status_callback_next_at", table_name="messages")
    op.create_index(
        "ix_messages_callback_status_callback_next_at", "messages", ["callback_status", "callback_next_at"]
    )
    op.drop_index("ix_messages_provider_biz_id", table_name="messages")
    op.create_index("ix_messages_provider_biz_id", "messages", ["provider", "biz_id"])
    with op.batch_alter_table("messages") as batch_op:
        for name, (column, table) in FOREIGN_KEYS.items():
            batch_op.create_foreign_key(name, table, [column], ["id"])
