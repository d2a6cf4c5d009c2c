"""callback secrets in whsec_ form, the previous secret kept while rotating

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 09:00:00
"""

import sqlalchemy as sa
from alembic import op

import shared.db
from shared.webhooks.secret_migration import convert_secrets, to_plain, to_whsec

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("tenants", sa.Column("previous_callback_secret", sa.String(length=100), nullable=True))
    op.add_column(
        "tenants",
        sa.Column("previous_callback_secret_expires_at", shared.db.UTCDateTime(timezone=True), nullable=True),
    )
    convert_secrets("tenants", "callback_secret", to_whsec, max_length=100)


def downgrade():
    # A secret made in whsec_ form has random key bytes the plain scheme cannot spell: it stays whsec_.
    convert_secrets("tenants", "callback_secret", to_plain, max_length=100)
    op.drop_column("tenants", "previous_callback_secret_expires_at")
    op.drop_column("tenants", "previous_callback_secret")
