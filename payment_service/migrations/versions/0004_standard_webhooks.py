"""notify secrets in whsec_ form, the previous secret kept while rotating; forward_attempts on the shared
attempt columns

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:00:00
"""

import sqlalchemy as sa
from alembic import op

import shared.db
from shared.webhooks.secret_migration import convert_secrets, to_plain, to_whsec

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# What each recorded attempt was, as far as the rows tell: 2xx delivered, the last of a failed forward given
# up (or refused: the rows cannot tell which), any other a retry.
_OUTCOME = """
UPDATE forward_attempts SET outcome = CASE
    WHEN status_code BETWEEN 200 AND 299 THEN 'delivered'
    WHEN EXISTS (
        SELECT 1 FROM order_forwards
        WHERE order_forwards.id = forward_attempts.forward_id
          AND order_forwards.status = 'failed'
          AND order_forwards.attempts = forward_attempts.attempt
    ) THEN 'gave_up'
    ELSE 'retry'
END
"""


def upgrade():
    op.add_column("tenants", sa.Column("previous_notify_secret", sa.String(length=100), nullable=True))
    op.add_column(
        "tenants",
        sa.Column("previous_notify_secret_expires_at", shared.db.UTCDateTime(timezone=True), nullable=True),
    )
    convert_secrets("tenants", "notify_secret", to_whsec, max_length=100)

    with op.batch_alter_table("forward_attempts") as batch_op:
        batch_op.drop_constraint("uq_forward_attempts_forward_id_number", type_="unique")
        batch_op.alter_column("number", new_column_name="attempt")
        batch_op.alter_column("at", new_column_name="attempted_at")
        batch_op.alter_column("http_status", new_column_name="status_code")
        batch_op.add_column(sa.Column("outcome", sa.String(length=12), nullable=True))
    op.execute(_OUTCOME)
    with op.batch_alter_table("forward_attempts") as batch_op:
        batch_op.alter_column("outcome", existing_type=sa.String(length=12), nullable=False)
        batch_op.create_unique_constraint("uq_forward_attempts_forward_id_attempt", ["forward_id", "attempt"])


def downgrade():
    with op.batch_alter_table("forward_attempts") as batch_op:
        batch_op.drop_constraint("uq_forward_attempts_forward_id_attempt", type_="unique")
        batch_op.drop_column("outcome")
        batch_op.alter_column("status_code", new_column_name="http_status")
        batch_op.alter_column("attempted_at", new_column_name="at")
        batch_op.alter_column("attempt", new_column_name="number")
        batch_op.create_unique_constraint("uq_forward_attempts_forward_id_number", ["forward_id", "number"])

    # A secret made in whsec_ form has random key bytes the plain scheme cannot spell: it stays whsec_.
    convert_secrets("tenants", "notify_secret", to_plain, max_length=100)
    op.drop_column("tenants", "previous_notify_secret_expires_at")
    op.drop_column("tenants", "previous_notify_secret")
