"""replies: texts mobiles sent back through the upstreams, and the tenants each is attributed to

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 11:40:00
"""

import sqlalchemy as sa
from alembic import op

import shared.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "replies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("mobile", sa.String(length=11), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sign_name", sa.String(length=40), nullable=True),
        sa.Column("extension", sa.String(length=40), nullable=True),
        sa.Column("upstream_id", sa.String(length=64), nullable=True),
        sa.Column("replied_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_replies_dedupe_key"),
    )
    op.create_table(
        "reply_tenants",
        sa.Column("reply_id", sa.Integer(), sa.ForeignKey("replies.id"), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), sa.ForeignKey("tenants.id"), primary_key=True),
    )
    op.create_index("ix_reply_tenants_tenant_id_reply_id", "reply_tenants", ["tenant_id", "reply_id"])


def downgrade():
    op.drop_index("ix_reply_tenants_tenant_id_reply_id", table_name="reply_tenants")
    op.drop_table("reply_tenants")
    op.drop_table("replies")
