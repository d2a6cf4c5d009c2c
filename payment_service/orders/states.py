"""An order's transitions, pending → paid | closed (| failed at creation), each one a guarded UPDATE.

Only the UPDATE that moves an order to paid (rowcount 1) creates its forward and profit-sharing rows, in
the same transaction, and publishes their tasks after the commit. A duplicate notification, a concurrent
one or a reconciliation query that finds the order already paid changes nothing and publishes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, func, insert, literal, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from payment_service.metrics import count_order
from payment_service.models import OrderForward, PaymentOrder
from payment_service.orders.forwarding import schedule_forward
from payment_service.orders.profit_sharing import schedule_profit_sharing
from payment_service.outbox import forward_soon, publish_profit_sharing
from shared.db import bind_of, execute_alone, existing_session, utcnow
from shared.transactions import atomic

logger = logging.getLogger(__name__)

# A verified paid answer from the upstream is the truth about the money, whatever we had concluded before
# (closed on expiry, failed on an answer we could not trust).
PAYABLE_STATUSES = ("pending", "closed", "failed")


_orders = PaymentOrder.__table__
# OR of equalities, not IN: an IN list is rendered per execution, a statement with this once.
_PAYABLE = or_(*(_orders.c.status == status for status in PAYABLE_STATUSES))
# Built once: the transition runs for every first delivery of a paid notification.
# channel_transaction_id, paid_at and updated_at are SET from the parameters of the call.
_MARK_PAID = (
    update(_orders)
    .where(_orders.c.id == bindparam("order_id"), _PAYABLE)
    .values(status="paid")
    .returning(
        _orders.c.id,
        _orders.c.channel,
        _orders.c.amount_fen,
        _orders.c.notify_url,
        _orders.c.sharing_plan,
    )
)


# An order that owes no profit sharing (most of them) moves to paid and gets its forward row in one
# statement: atomic by itself, so it runs without BEGIN … COMMIT (PostgreSQL's data-modifying WITH).
_paid = (
    update(_orders)
    .where(
        _orders.c.id == bindparam("order_id"),
        _PAYABLE,
        _orders.c.sharing_plan.is_(None),
    )
    .values(
        status="paid",
        channel_transaction_id=bindparam("channel_transaction_id"),
        paid_at=bindparam("paid_at", type_=_orders.c.paid_at.type),
        updated_at=bindparam("updated_at", type_=_orders.c.updated_at.type),
    )
    .returning(_orders.c.id, _orders.c.channel, _orders.c.notify_url)
    .cte("paid")
)
_forwards = OrderForward.__table__
_forward = (
    insert(_forwards)
    .from_select(
        ["order_id", "url", "status", "attempts", "next_attempt_at", "created_at"],
        select(
            _paid.c.id,
            _paid.c.notify_url,
            literal("pending"),
            literal(0),
            bindparam("updated_at", type_=_forwards.c.created_at.type),
            bindparam("updated_at", type_=_forwards.c.created_at.type),
        ).where(_paid.c.notify_url.is_not(None)),
    )
    .returning(_forwards.c.order_id)
    .cte("forward")
)
_MARK_PAID_WITH_FORWARD = select(
    _paid.c.id,
    _paid.c.channel,
    select(func.count()).select_from(_forward).scalar_subquery().label("forwards"),
)


def mark_paid(
    session: Session, order_id: str, channel_transaction_id: str | None, paid_at: datetime | None
) -> bool:
    """Move the order to paid; True only for the one caller that did, which alone schedules the follow-ups."""
    now = utcnow()
    parameters = {
        "order_id": order_id,
        "channel_transaction_id": channel_transaction_id,
        "paid_at": paid_at or now,
        "updated_at": now,
    }
    paid, sharing = _mark_paid_alone(session, parameters), None
    if paid is not None:
        forward = paid.forwards > 0
    else:  # owes profit sharing, or is not payable: the transition in a transaction, if it moves at all
        with atomic(session):
            paid = session.connection().execute(_MARK_PAID, parameters).first()
            if paid is None:
                return False
            forward = schedule_forward(session, paid)
            sharing = schedule_profit_sharing(session, paid)
    _expire_loaded(session, order_id)
    count_order("paid", paid.channel)
    logger.info("order %s paid (upstream %s)", order_id, channel_transaction_id)
    if forward:
        forward_soon(order_id)
    if sharing is not None:
        publish_profit_sharing(order_id, countdown=current_app.config["PROFIT_SHARING_DELAY_SECONDS"])
    return True


def _mark_paid_alone(session: Session, parameters: dict) -> Row | None:
    """The one-statement transition of an order without profit sharing (PostgreSQL's data-modifying
    WITH); None when it did not apply."""
    if bind_of(session).dialect.name != "postgresql":
        return None
    rows = execute_alone(session, _MARK_PAID_WITH_FORWARD, parameters)
    return rows[0] if rows else None


def _expire_loaded(session: Session, order_id: str) -> None:
    """The UPDATE went around the ORM: an order this session already holds is read again when next used."""
    session = existing_session(session)
    if session is None:
        return
    loaded = session.identity_map.get(identity_key(PaymentOrder, order_id))
    if loaded is not None:
        session.expire(loaded)


def mark_closed(session: Session, order_id: str) -> bool:
    """Close a pending order (expired, or closed upstream); a paid order stays paid."""
    now = utcnow()
    with atomic(session):
        moved = session.execute(
            update(PaymentOrder)
            .where(PaymentOrder.id == order_id, PaymentOrder.status == "pending")
            .values(status="closed", closed_at=now, updated_at=now)
        ).rowcount
    if moved == 1:
        count_order("closed", session.get(PaymentOrder, order_id).channel)
        logger.info("order %s closed", order_id)
    return moved == 1
