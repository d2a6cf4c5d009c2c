"""Reading messages back: one record, a search, a batch's progress. A tenant only ever sees its own, and a
test key only test messages and batches (a live key only live ones)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from shared.db import bind_of, fetch_page, read_alone
from shared.driver import Lookup
from shared.envelope import NotFoundError
from sms_service.models import STATUSES, Batch, Message

# The statements of the lookups are built once (building one cost about as much CPU as running it).
_RECORD = Lookup(
    select(*Message.__table__.columns).where(
        Message.id == bindparam("message_id"),
        Message.tenant_id == bindparam("tenant_id"),
        Message.test == bindparam("test"),
    )
)
# The batch and its counts by status in one round trip (one row per status; a batch without messages
# yet gives one row with no status).
_BATCH_WITH_COUNTS = (
    select(
        Batch.id,
        Batch.template_id,
        Batch.total,
        Batch.created_at,
        Batch.test,
        Message.status,
        func.count(Message.id).label("messages"),
    )
    .select_from(Batch.__table__.outerjoin(Message.__table__, Message.batch_id == Batch.id))
    .where(
        Batch.id == bindparam("batch_id"),
        Batch.tenant_id == bindparam("tenant_id"),
        Batch.test == bindparam("test"),
    )
    .group_by(Batch.id, Batch.template_id, Batch.total, Batch.created_at, Batch.test, Message.status)
)
# Only what a batch page shows, in request order, read in that order from ix_messages_batch_id_created_at.
_BATCH_PAGE = (
    select(Message.id, Message.mobile, Message.status)
    .where(Message.batch_id == bindparam("batch_id"))
    .order_by(Message.created_at, Message.id)
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)


# On PostgreSQL all of it in one round trip: the batch, its counts by status as a JSON object and its page
# as a JSON array of [id, mobile, status] (PostgreSQL builds both from the same index; 20 rows of JSON cost
# less than a second round trip).
_status_counts = (
    select(Message.status, func.count().label("messages"))
    .where(Message.batch_id == bindparam("batch_id"))
    .group_by(Message.status)
    .subquery()
)
_page_rows = _BATCH_PAGE.add_columns(Message.created_at).subquery()
_BATCH_AT_ONCE = Lookup(
    select(
        Batch.id,
        Batch.template_id,
        Batch.total,
        Batch.created_at,
        Batch.test,
        select(func.json_object_agg(_status_counts.c.status, _status_counts.c.messages))
        .scalar_subquery()
        .label("counts"),
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(_page_rows.c.id, _page_rows.c.mobile, _page_rows.c.status),
                    _page_rows.c.created_at,
                    _page_rows.c.id,
                )
            )
        )
        .scalar_subquery()
        .label("page"),
    ).where(
        Batch.id == bindparam("batch_id"),
        Batch.tenant_id == bindparam("tenant_id"),
        Batch.test == bindparam("test"),
    )
)


class BatchMessage(NamedTuple):
    id: str
    mobile: str
    status: str


def get_record(session: Session, tenant_id: str, message_id: str, *, test: bool = False) -> Row:
    """The message's columns (read outside a transaction: nothing to begin or roll back)."""
    rows = _RECORD.rows(session, {"message_id": message_id, "tenant_id": tenant_id, "test": test})
    if not rows:
        raise NotFoundError("发送记录不存在", data={"message_id": message_id})
    return rows[0]


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
    test: bool = False,
) -> tuple[list[Message], int]:
    # The bare column for a test key, so the planner sees the test rows' partial index applies.
    conditions: list[Any] = [Message.tenant_id == tenant_id, Message.test if test else ~Message.test]
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


def batch_progress(
    session: Session, tenant_id: str, batch_id: str, page: int, size: int, *, test: bool = False
) -> dict[str, Any]:
    if bind_of(session).dialect.name == "postgresql":
        return _batch_progress_at_once(session, tenant_id, batch_id, page, size, test)
    return _batch_progress_in_two(session, tenant_id, batch_id, page, size, test)


def _batch_progress_in_two(
    session: Session, tenant_id: str, batch_id: str, page: int, size: int, test: bool = False
) -> dict[str, Any]:
    """Anywhere: the batch with its counts, then its page."""
    rows = read_alone(
        session, _BATCH_WITH_COUNTS, {"batch_id": batch_id, "tenant_id": tenant_id, "test": test}
    )
    if not rows:
        raise NotFoundError("批次不存在", data={"batch_id": batch_id})
    batch = rows[0]
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        if row.status is not None:
            counts[row.status] = row.messages
    messages = read_alone(
        session, _BATCH_PAGE, {"batch_id": batch_id, "offset": (page - 1) * size, "limit": size}
    )
    return {
        "batch_id": batch.id,
        "template_id": batch.template_id,
        "total": batch.total,
        "created_at": batch.created_at,
        "test": batch.test,
        "counts": counts,
        "list": [BatchMessage(*message) for message in messages],
        "page": page,
        "size": size,
    }


def _batch_progress_at_once(
    session: Session, tenant_id: str, batch_id: str, page: int, size: int, test: bool = False
) -> dict[str, Any]:
    """On PostgreSQL: the same in one round trip."""
    parameters = {
        "batch_id": batch_id,
        "tenant_id": tenant_id,
        "test": test,
        "offset": (page - 1) * size,
        "limit": size,
    }
    rows = _BATCH_AT_ONCE.rows(session, parameters)
    if not rows:
        raise NotFoundError("批次不存在", data={"batch_id": batch_id})
    batch = rows[0]
    return {
        "batch_id": batch.id,
        "template_id": batch.template_id,
        "total": batch.total,
        "created_at": batch.created_at,
        "test": batch.test,
        "counts": {**dict.fromkeys(STATUSES, 0), **(batch.counts or {})},
        "list": [BatchMessage(*message) for message in batch.page or ()],
        "page": page,
        "size": size,
    }
