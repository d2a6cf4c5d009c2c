"""usage statistics: a tenant's messages counted per Beijing day, template, provider and status

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 11:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The Beijing calendar day of a UTC instant (China keeps UTC+8 all year).
BEIJING_DAY = {
    "postgresql": "(created_at AT TIME ZONE 'Asia/Shanghai')::date",
    "sqlite": "date(created_at, '+8 hours')",
}

BACKFILL = """
INSERT INTO daily_usage (tenant_id, test, day, template_id, provider, status, messages, segments)
SELECT tenant_id, test, {day}, template_id, coalesce(provider, 'none'), status, count(*), sum(segments)
FROM messages
GROUP BY tenant_id, test, {day}, template_id, coalesce(provider, 'none'), status
"""


def upgrade():
    op.create_table(
        "daily_usage",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("segments", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "test", "day", "template_id", "provider", "status", name="pk_daily_usage"
        ),
    )
    # The messages stored before this revision, counted once; the periodic rebuild keeps the recent days.
    day = BEIJING_DAY.get(op.get_bind().dialect.name)
    if day is not None:
        op.execute(BACKFILL.format(day=day))


def downgrade():
    op.drop_table("daily_usage")
