"""What accepting keeps only for a while: idempotency answers for a day, limit counters for their window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.transactions import atomic
from sms_service.accepting.limits import limit_store
from sms_service.models import IdempotencyRecord

IDEMPOTENCY_TTL = timedelta(days=1)


def purge_expired(session: Session) -> int:
    """Delete expired limit counters and idempotency records; the number of rows (or keys) removed."""
    with atomic(session):
        purged = limit_store().purge(session)
        result = session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - IDEMPOTENCY_TTL)
        )
    return purged + (result.rowcount or 0)
