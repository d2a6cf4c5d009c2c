"""A refund's one transition, processing → success | failed, as a guarded UPDATE with the order's amounts.

Only the UPDATE that moves the refund (rowcount 1) releases its reservation on the order (``refunding_fen``),
adds a success to ``refunded_fen`` (the order becomes ``refunded`` once that equals what was paid) and owes
the payment.refund forward, in the same transaction; the forward task is published after the commit. A
duplicate notification, a concurrent query or a late answer finds the refund settled and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, insert, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from payment_service.channels import ChannelError
from payment_service.models import PaymentOrder, Refund, RefundForward
from payment_service.outbox import publish_refund, publish_refund_forward
from shared.db import existing_session, utcnow
from shared.transactions import atomic

logger = logging.getLogger(__name__)

_refunds = Refund.__table__
_orders = PaymentOrder.__table__
ABNORMAL = "REFUND_ABNORMAL"


@dataclass(frozen=True)
class Step:
    """What one step of a refund did: ``error`` is the upstream's, ``failed`` whether it ended the refund."""

    error: ChannelError | None = None
    failed: bool = False


@dataclass(frozen=True)
class Settlement:
    """How a refund ends: ``status`` success or failed, with what the upstream said."""

    status: str
    upstream_status: str | None = None
    channel_refund_id: str | None = None
    success_at: datetime | None = None
    error_code: str | None = None
    upstream_error: dict[str, Any] | None = None


def settle(session: Session, refund_id: str, outcome: Settlement) -> bool:
    """Move a processing refund to success or failed; True only for the one caller that did."""
    now = utcnow()
    values: dict[str, Any] = {"status": outcome.status, "updated_at": now}
    for name in ("upstream_status", "channel_refund_id", "error_code", "upstream_error"):
        if getattr(outcome, name) is not None:
            values[name] = getattr(outcome, name)
    if outcome.status == "success":
        values["success_at"] = outcome.success_at or now
    with atomic(session):
        moved = session.execute(
            update(_refunds)
            .where(_refunds.c.id == refund_id, _refunds.c.status == "processing")
            .values(**values)
            .returning(_refunds.c.order_id, _refunds.c.amount_fen, _refunds.c.notify_url)
        ).first()
        if moved is None:
            return False
        refunded = _orders.c.refunded_fen + (moved.amount_fen if outcome.status == "success" else 0)
        session.execute(
            update(_orders)
            .where(_orders.c.id == moved.order_id)
            .values(
                refunding_fen=_orders.c.refunding_fen - moved.amount_fen,
                refunded_fen=refunded,
                status=case((refunded == _orders.c.amount_fen, "refunded"), else_=_orders.c.status),
                updated_at=now,
            )
        )
        if moved.notify_url:
            session.execute(
                insert(RefundForward.__table__).values(
                    refund_id=refund_id,
                    url=moved.notify_url,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    _expire(session, refund_id, moved.order_id)
    logger.info("refund %s of order %s: %s", refund_id, moved.order_id, outcome.status)
    if outcome.error_code == ABNORMAL:
        logger.warning(
            "refund %s of order %s is ABNORMAL at WeChat Pay (the payer's account cannot take it): ended "
            "failed; an operator redirects it in the merchant platform (交易中心 → 退款管理 → 异常退款)",
            refund_id,
            moved.order_id,
        )
    if moved.notify_url:
        publish_refund_forward(refund_id)
    return True


def note(session: Session, refund_id: str, **values: Any) -> None:
    """Record what the upstream said of a refund still processing (status, ids, the last error)."""
    values["updated_at"] = utcnow()
    with atomic(session):
        session.execute(
            update(_refunds)
            .where(_refunds.c.id == refund_id, _refunds.c.status == "processing")
            .values(**values)
        )
    _expire(session, refund_id)


def owe_again(session: Session, refund_id: str, delay: float, error: dict[str, Any]) -> None:
    """The upstream did not take the refund (frequency limit): send it again in ``delay`` seconds."""
    note(
        session,
        refund_id,
        requested_at=None,
        next_attempt_at=utcnow() + timedelta(seconds=delay),
        upstream_error=error,
    )
    publish_refund(refund_id, countdown=delay)


def _expire(session: Session, refund_id: str, order_id: str | None = None) -> None:
    """Written with Core: objects the session holds are read again when next used."""
    current = existing_session(session)
    if current is None:
        return
    for model, key in ((Refund, refund_id), (PaymentOrder, order_id)):
        loaded = current.identity_map.get(identity_key(model, key)) if key is not None else None
        if loaded is not None:
            current.expire(loaded)
