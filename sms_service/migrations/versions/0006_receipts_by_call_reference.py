"""receipts_by_call_reference: find a sending message by its call reference and mobile

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


def downgrade():
    op.drop_index("ix_messages_call_ref_mobile_sending", table_name="messages")
