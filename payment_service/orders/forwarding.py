"""Forwarding a paid order's result to the business's notify_url, on ``shared.webhooks``.

Body ``{"event": "payment.result", "data": {...}}``, signed by the Standard Webhooks specification with the
tenant's notify secret(s); the ``webhook-id`` is derived from the order, so every retry of one result
carries the same id. Retried on the shared schedule (``PAYMENT_FORWARD_RETRY_DELAYS``), the address checked
again before every attempt (no private addresses unless ``PAYMENT_NOTIFY_ALLOW_PRIVATE``); every attempt is
recorded in ``forward_attempts``. One delivery is one unit of work: the forward's row lock, held during the
POST, keeps two workers from delivering the same result at once, and the attempt is committed with the
forward's next step.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from payment_service.metrics import FORWARD_ATTEMPTS
from payment_service.models import ForwardAttempt, ForwardColumns, OrderForward, PaymentOrder, Tenant
from payment_service.orders.views import yuan
from shared.db import isoformat, utcnow
from shared.transactions import atomic
from shared.webhooks import RETRY, Attempt, WebhookSender, event_webhook_id, signing_secrets_of

logger = logging.getLogger(__name__)

EVENT = "payment.result"
USER_AGENT = "laundry-payment-service/1.0 (payment.result)"
# A task arriving this early (a sweep's copy of a scheduled retry) leaves the attempt to the retry.
EARLY_SLACK = timedelta(seconds=1)


_INSERT_FORWARD = insert(OrderForward.__table__)


class PaidOrder(Protocol):
    id: str
    notify_url: str | None


def schedule_forward(session: Session, order: PaidOrder) -> bool:
    """Owe the order's result to its notify_url; called in the transaction that marks it paid."""
    if not order.notify_url:
        return False
    now = utcnow()
    session.connection().execute(
        _INSERT_FORWARD,
        {
            "order_id": order.id,
            "url": order.notify_url,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    return True


def forward_payload(order: PaymentOrder) -> dict[str, Any]:
    return {
        "event": EVENT,
        "data": {
            "transaction_id": order.id,
            "out_order_no": order.out_order_no,
            "site_id": order.site_id,
            "channel": order.channel,
            "amount": yuan(order.amount_fen),
            "status": order.status,
            "paid_at": isoformat(order.paid_at),
            "channel_transaction_id": order.channel_transaction_id,
        },
    }


def sender() -> WebhookSender:
    config = current_app.config
    return WebhookSender(
        user_agent=USER_AGENT,
        retry_delays=config["FORWARD_RETRY_SCHEDULE"],
        allow_private=config["NOTIFY_ALLOW_PRIVATE"],
        timeout=config["FORWARD_TIMEOUT_SECONDS"],
    )


def deliver_forward(session: Session, order_id: str) -> float | None:
    """Make the attempt that is due; return the seconds until the next one, None when no retry is owed."""
    with atomic(session):
        forward = session.scalar(
            select(OrderForward)
            .where(OrderForward.order_id == order_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if forward is None or forward.status != "pending":
            return None
        now = utcnow()
        if forward.next_attempt_at > now + EARLY_SLACK:
            return None
        order = session.get(PaymentOrder, order_id)
        tenant = session.get(Tenant, order.tenant_id)
        attempt = sender().send(
            forward.url,
            event_webhook_id(EVENT, order.id),
            forward_payload(order),
            signing_secrets_of(tenant, "notify_secret").active(now),
            forward.attempts + 1,
        )
        record_attempt(session, forward, ForwardAttempt, attempt)
    if attempt.final and not attempt.delivered:
        logger.warning("forwarding %s gave up after attempt %d: %s", order_id, attempt.number, attempt.error)
    return attempt.next_delay


def record_attempt(session: Session, forward: ForwardColumns, attempt_model: type, attempt: Attempt) -> None:
    """Keep one attempt of a forward (an order's or a refund's) and move the forward on by its outcome."""
    columns = attempt.columns()
    session.add(attempt_model(forward_id=forward.id, **columns))
    FORWARD_ATTEMPTS.labels(_metric_outcome(attempt)).inc()
    forward.attempts = attempt.number
    forward.last_http_status = attempt.status_code
    forward.last_error = columns["error"]
    if attempt.delivered:
        forward.status, forward.delivered_at = "delivered", utcnow()
    elif attempt.outcome == RETRY:
        forward.next_attempt_at = utcnow() + timedelta(seconds=attempt.next_delay or 0)
    else:
        forward.status = "failed"


def _metric_outcome(attempt: Attempt) -> str:
    if attempt.delivered or attempt.outcome == RETRY:
        return attempt.outcome
    return "failed"
