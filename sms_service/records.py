"""Reading messages back: one record, a search, a batch's progress. A tenant only ever sees its own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from shared.db import fetch_page
from shared.envelope import NotFoundError
from sms_service.models import STATUSES, Batch, Message

# The statements of the lookups are built once (building one cost about as much CPU as running it).
_RECORD = select(Message).where(
    Message.id == bindparam("message_id"), Message.tenant_id == bindparam("tenant_id")
)
_BATCH = select(Batch).where(Batch.id == bindparam("batch_id"), Batch.tenant_id == bindparam("tenant_id"))
_BATCH_COUNTS = (
    select(Message.status, func.count())
    .where(Message.batch_id == bindparam("batch_id"))
    .group_by(Message.status)
)
# Only what a batch page shows, in request order, read in that order from ix_messages_batch_id_created_at.
_BATCH_PAGE = (
    select(Message.id, Message.mobile, Message.status)
    .where(Message.batch_id == bindparam("batch_id"))
    .order_by(Message.created_at, Message.id)
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)


def get_record(session: Session, tenant_id: str, message_id: str) -> Message:
    message = session.scalar(_RECORD, {"message_id": message_id, "tenant_id": tenant_id})
    if message is None:
        raise NotFoundError("发送记录不存在", data={"message_id": message_id})
    return message


def search_records(
    session: Session,
    tenant_id: str,
    page: int,
    size: int,
    *,
    mobile: str | None = None,
    status: str | None = None,
    template_id: str | None = None,
    batch_id: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[list[Message], int]:
    conditions: list[Any] = [Message.tenant_id == tenant_id]
    if mobile:
        conditions.append(Message.mobile == mobile)
    if status:
        conditions.append(Message.status == status)
    if template_id:
        conditions.append(Message.template_id == template_id)
    if batch_id:
        conditions.append(Message.batch_id == batch_id)
    if created_from:
        conditions.append(Message.created_at >= created_from)
    if created_to:
        conditions.append(Message.created_at < created_to)
    return fetch_page(session, Message, conditions, page, size)


def batch_progress(session: Session, tenant_id: str, batch_id: str, page: int, size: int) -> dict[str, Any]:
    batch = session.scalar(_BATCH, {"batch_id": batch_id, "tenant_id": tenant_id})
    if batch is None:
        raise NotFoundError("批次不存在", data={"batch_id": batch_id})
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in session.execute(_BATCH_COUNTS, {"batch_id": batch_id}):
        counts[status] = count
    messages = session.execute(
        _BATCH_PAGE, {"batch_id": batch_id, "offset": (page - 1) * size, "limit": size}
    ).all()
    return {
        "batch_id": batch.id,
        "template_id": batch.template_id,
        "total": batch.total,
        "created_at": batch.created_at,
        "counts": counts,
        "list": list(messages),
        "page": page,
        "size": size,
    }
