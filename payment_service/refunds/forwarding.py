"""Forwarding a settled refund to its notify_url: ``{"event": "payment.refund", "data": {...}}``.

Signed, scheduled, address-checked and recorded exactly as payment.result forwards are (``shared.webhooks``
through ``orders.forwarding.sender``); the ``webhook-id`` is ``payment_refund_<refund_id>`` for every retry.
One delivery is one unit of work under the forward's row lock.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_service.models import PaymentOrder, Refund, RefundForward, RefundForwardAttempt, Tenant
from payment_service.orders.forwarding import EARLY_SLACK, record_attempt, sender
from payment_service.refunds.views import forward_payload
from shared.db import utcnow
from shared.transactions import atomic
from shared.webhooks import event_webhook_id, signing_secrets_of

logger = logging.getLogger(__name__)

EVENT = "payment.refund"


def deliver_refund_forward(session: Session, refund_id: str) -> float | None:
    """Make the attempt that is due; return the seconds until the next one, None when no retry is owed."""
    with atomic(session):
        forward = session.scalar(
            select(RefundForward)
            .where(RefundForward.refund_id == refund_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if forward is None or forward.status != "pending":
            return None
        now = utcnow()
        if forward.next_attempt_at > now + EARLY_SLACK:
            return None
        refund = session.get(Refund, refund_id, populate_existing=True)
        order = session.get(PaymentOrder, refund.order_id)
        tenant = session.get(Tenant, refund.tenant_id)
        attempt = sender().send(
            forward.url,
            event_webhook_id(EVENT, refund.id),
            {"event": EVENT, "data": forward_payload(refund, order)},
            signing_secrets_of(tenant, "notify_secret").active(now),
            forward.attempts + 1,
        )
        record_attempt(session, forward, RefundForwardAttempt, attempt)
    if attempt.final and not attempt.delivered:
        logger.warning(
            "refund forward %s gave up after attempt %d: %s", refund_id, attempt.number, attempt.error
        )
    return attempt.next_delay
