"""opt-outs: mobiles that stopped a tenant's marketing messages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:20:00
"""

import sqlalchemy as sa
from alembic import op

import shared.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "opt_outs",
        sa.Column("tenant_id", sa.String(length=40), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("mobile", sa.String(length=11), primary_key=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table("opt_outs")
