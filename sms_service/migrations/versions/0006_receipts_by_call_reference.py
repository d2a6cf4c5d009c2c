"""receipts_by_call_reference: find a sending message by its call reference and mobile; hold the
receipts that match no message yet

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SENDING_ONLY = sa.text("status = 'sending'")


def upgrade():
    op.create_index(
        "ix_messages_call_ref_mobile_sending",
        "messages",
        ["call_ref", "mobile"],
        postgresql_where=SENDING_ONLY,
        sqlite_where=SENDING_ONLY,
    )
    op.create_table(
        "held_receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("mobile", sa.String(length=11), nullable=False),
        sa.Column("biz_id", sa.String(length=100), nullable=True),
        sa.Column("reference", sa.String(length=256), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.String(length=500), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_receipts")),
    )
    op.create_index(
        "ix_held_receipts_provider_biz_id_mobile", "held_receipts", ["provider", "biz_id", "mobile"]
    )
    op.create_index(op.f("ix_held_receipts_received_at"), "held_receipts", ["received_at"])


def downgrade():
    op.drop_table("held_receipts")
    op.drop_index("ix_messages_call_ref_mobile_sending", table_name="messages")
