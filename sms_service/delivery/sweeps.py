"""The periodic safety net (celery beat): publish again what the broker lost or never got.

- messages left ``queued`` (the broker was down when the request was accepted, or a task was lost);
- messages left ``sending`` by a worker that died: back to ``queued`` if no upstream was called yet,
  otherwise marked outcome-unknown for reconciliation (never resent blindly);
- callbacks whose attempt is overdue.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.transactions import atomic
from sms_service.delivery import outbox, receipts
from sms_service.models import CALLBACK_PENDING, QUEUED, SENDING, Message

logger = logging.getLogger(__name__)

MAX_ROWS_PER_SWEEP = 10_000
CALLBACK_GRACE_SECONDS = 30


def sweep(session: Session) -> dict[str, int]:
    """Each step a transaction of its own, committed before it publishes."""
    return {
        "requeued": requeue_stale_sending(session),
        "republished": republish_queued(session),
        "callbacks": republish_callbacks(session),
        "held_receipts_purged": purge_held_receipts(session),
    }


def purge_held_receipts(session: Session) -> int:
    cutoff = utcnow() - timedelta(seconds=current_app.config["HELD_RECEIPT_SECONDS"])
    with atomic(session):
        return receipts.purge_held(session, cutoff)


def republish_queued(session: Session) -> int:
    now = utcnow()
    cutoff = now - timedelta(seconds=current_app.config["SWEEP_QUEUED_AFTER_SECONDS"])
    with atomic(session):
        rows = session.execute(
            select(Message.id, Message.tenant_id, Message.template_id)
            .where(Message.status == QUEUED, Message.updated_at < cutoff)
            .order_by(Message.updated_at)
            .limit(MAX_ROWS_PER_SWEEP)
        ).all()
        if not rows:
            return 0
        # Touch them so a backlog in the broker is not published again on every sweep.
        session.execute(
            update(Message)
            .where(Message.id.in_([row.id for row in rows]), Message.status == QUEUED)
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        groups[(row.tenant_id, row.template_id)].append(row.id)
    for ids in groups.values():
        outbox.publish_deliveries(ids)
    logger.info("sweep: published %d queued message(s) again", len(rows))
    return len(rows)


def requeue_stale_sending(session: Session) -> int:
    now = utcnow()
    cutoff = now - timedelta(seconds=current_app.config["SENDING_STALE_AFTER_SECONDS"])
    stale = (Message.status == SENDING, Message.updated_at < cutoff, Message.outcome_unknown.is_(False))
    with atomic(session):
        never_called = session.execute(
            update(Message)
            .where(*stale, Message.provider.is_(None))
            .values(status=QUEUED, updated_at=now - timedelta(days=1))
            .execution_options(synchronize_session=False)
        ).rowcount
        maybe_called = session.execute(
            update(Message)
            .where(*stale, Message.provider.is_not(None))
            .values(outcome_unknown=True, updated_at=now - timedelta(days=1))
            .execution_options(synchronize_session=False)
        ).rowcount
    if never_called or maybe_called:
        logger.warning(
            "sweep: %d stale sending message(s) queued again, %d left to reconciliation",
            never_called,
            maybe_called,
        )
    return never_called or 0


def republish_callbacks(session: Session) -> int:
    cutoff = utcnow() - timedelta(seconds=CALLBACK_GRACE_SECONDS)
    rows = session.execute(
        select(Message.id, Message.callback_attempts)
        .where(Message.callback_status == CALLBACK_PENDING, Message.callback_next_at < cutoff)
        .limit(MAX_ROWS_PER_SWEEP)
    ).all()
    for row in rows:
        outbox.publish_callback(row.id, row.callback_attempts + 1)
    return len(rows)
