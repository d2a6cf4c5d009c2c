"""The guarded status changes of a message: each UPDATE names the states it may leave, so a retried task, a
duplicate delivery or a late receipt can never move a message backwards.

Reaching success or failed also makes its result callback due (when the message has a callback URL).
Each runs in the caller's transaction: the operation that calls it commits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from shared.db import utcnow
from sms_service.metrics import count_messages
from sms_service.models import CALLBACK_PENDING, FAILED, SENDING, SUBMITTED, Message


def finish(
    session: Session,
    message_ids: Iterable[str],
    status: str,
    *,
    from_statuses: tuple[str, ...] = (SENDING, SUBMITTED),
    error_code: str | None = None,
    error_message: str | None = None,
    completed_at: datetime | None = None,
    **fields,
) -> list[tuple[str, bool]]:
    """Move messages to ``success`` or ``failed``; returns ``(id, has_callback)`` of those that moved."""
    ids = list(message_ids)
    if not ids:
        return []
    now = utcnow()
    statement = (
        update(Message)
        .where(Message.id.in_(ids), Message.status.in_(from_statuses))
        .values(
            status=status,
            error_code=error_code if status == FAILED else None,
            error_message=(error_message or "")[:500] or None if status == FAILED else None,
            completed_at=completed_at or now,
            updated_at=now,
            outcome_unknown=False,
            callback_status=case((Message.callback_url.is_not(None), CALLBACK_PENDING), else_=None),
            callback_next_at=case((Message.callback_url.is_not(None), now), else_=None),
            **fields,
        )
        .returning(Message.id, Message.callback_url, Message.provider)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(statement).all()
    for provider, count in Counter(row.provider for row in rows).items():
        count_messages(status, provider, count)
    return [(row.id, row.callback_url is not None) for row in rows]


def submit(
    session: Session, message_ids: list[str], provider: str, req_id: str | None, biz_id: str | None
) -> int:
    """``sending → submitted``: the upstream accepted the messages; the receipt decides the rest."""
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(Message.id.in_(message_ids), Message.status == SENDING)
        .values(
            status=SUBMITTED,
            provider=provider,
            req_id=req_id,
            biz_id=biz_id,
            sent_at=now,
            updated_at=now,
            outcome_unknown=False,
        )
        .execution_options(synchronize_session=False)
    )
    count_messages(SUBMITTED, provider, result.rowcount or 0)
    return result.rowcount or 0
