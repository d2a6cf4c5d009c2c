"""Beat work for refunds: settle those left processing, publish again forwards that are stuck.

A refund processing longer than ``PAYMENT_REFUND_QUERY_AFTER_SECONDS`` (a lost notification, a timeout, a
worker killed during the call, a return order still processing) takes its next step here: returns, the
refund call if it was never sent, or a query, at most once per that interval each.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from payment_service.models import Refund, RefundForward
from payment_service.outbox import publish_refund_forward
from payment_service.refunds.sending import advance_refund
from shared.db import utcnow
from shared.transactions import atomic

logger = logging.getLogger(__name__)

BATCH_SIZE = 100


def query_processing_refunds(session: Session, now: datetime | None = None) -> int:
    """Advance refunds processing too long. Returns how many ended (success or failed)."""
    now = now or utcnow()
    after = timedelta(seconds=current_app.config["REFUND_QUERY_AFTER_SECONDS"])
    with atomic(session):
        refund_ids = session.scalars(
            select(Refund.id)
            .where(
                Refund.status == "processing",
                Refund.created_at <= now - after,
                Refund.next_attempt_at <= now,
                or_(Refund.last_queried_at.is_(None), Refund.last_queried_at <= now - after),
            )
            .order_by(Refund.created_at)
            .limit(BATCH_SIZE)
        ).all()
    ended = 0
    for refund_id in refund_ids:
        try:
            advance_refund(session, refund_id)
        except Exception:  # one refund's surprise must not stop the others
            logger.exception("reconciling refund %s failed", refund_id)
            continue
        ended += session.scalar(select(Refund.status).where(Refund.id == refund_id)) != "processing"
        session.rollback()
    return ended


def sweep_refund_forwards(session: Session, now: datetime | None = None) -> int:
    """Publish again refund forwards overdue by more than the sweep's grace period."""
    now = now or utcnow()
    overdue = now - timedelta(seconds=current_app.config["SWEEP_GRACE_SECONDS"])
    with atomic(session):
        refund_ids = session.scalars(
            select(RefundForward.refund_id)
            .where(RefundForward.status == "pending", RefundForward.next_attempt_at <= overdue)
            .limit(BATCH_SIZE)
        ).all()
    for refund_id in refund_ids:
        publish_refund_forward(refund_id)
    return len(refund_ids)
