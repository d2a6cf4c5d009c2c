"""Beat work: close expired orders, ask the upstream about orders left pending, re-publish stuck work.

A lost notification still ends paid: a pending order older than ``PAYMENT_PENDING_QUERY_AFTER_MINUTES``
is queried upstream (at most once per ``PAYMENT_PENDING_QUERY_INTERVAL_MINUTES``) and a paid answer goes
through the same guarded transition as a notification, so it is forwarded and split exactly once.
An expired order is asked first and closed upstream only if still unpaid: closing must never hide a payment.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from payment_service.channels import ChannelError, PaymentChannel
from payment_service.configs.merchant_channels import channel_for
from payment_service.models import OrderForward, PaymentConfig, PaymentOrder, ProfitSharing
from payment_service.orders.states import mark_closed, mark_paid
from payment_service.outbox import publish_forward, publish_profit_sharing
from shared.db import utcnow
from shared.transactions import atomic

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
# Upstream answers that mean "there is no such unpaid order to close": the order never reached it, or
# it is closed already. WeChat: ORDER_NOT_EXIST / ORDER_CLOSED; Alipay: ACQ.TRADE_NOT_EXIST.
NOTHING_TO_CLOSE = frozenset({"ORDER_NOT_EXIST", "ORDER_CLOSED", "ACQ.TRADE_NOT_EXIST"})


class _Channels:
    """One client per config for the length of a sweep; a config that cannot make one is skipped."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._clients: dict[str, PaymentChannel | None] = {}

    def for_order(self, order: PaymentOrder) -> PaymentChannel | None:
        if order.config_id not in self._clients:
            config = self.session.get(PaymentConfig, order.config_id)
            try:
                self._clients[order.config_id] = channel_for(config) if config is not None else None
            except ValueError as exc:
                logger.error("config %s cannot make a channel client: %s", order.config_id, exc)
                self._clients[order.config_id] = None
        return self._clients[order.config_id]


def close_expired_orders(session: Session, now: datetime | None = None) -> int:
    """Close pending orders past their expiry, upstream first. Returns how many were closed.

    Each order is closed (or found paid) in a transaction of its own (``mark_closed``, ``mark_paid``),
    between upstream calls, so one that fails undoes no other."""
    now = now or utcnow()
    orders = session.scalars(
        select(PaymentOrder)
        .where(PaymentOrder.status == "pending", PaymentOrder.expire_at <= now)
        .order_by(PaymentOrder.expire_at)
        .limit(BATCH_SIZE)
    ).all()
    channels = _Channels(session)
    closed = 0
    for order in orders:
        channel = channels.for_order(order)
        if channel is None:
            closed += mark_closed(session, order.id)
            continue
        try:
            if settled_by_query(session, channel, order):
                continue
            channel.close_order(order.id)
        except ChannelError as exc:
            if exc.code not in NOTHING_TO_CLOSE:
                logger.warning(
                    "closing expired order %s upstream failed: %s (next run retries)", order.id, exc
                )
                continue
        closed += mark_closed(session, order.id)
    return closed


def query_pending_orders(session: Session, now: datetime | None = None) -> int:
    """Ask the upstream about pending orders old enough to have been paid. Returns how many ended paid."""
    now = now or utcnow()
    settings = current_app.config
    older_than = now - timedelta(minutes=settings["PENDING_QUERY_AFTER_MINUTES"])
    asked_before = now - timedelta(minutes=settings["PENDING_QUERY_INTERVAL_MINUTES"])
    orders = session.scalars(
        select(PaymentOrder)
        .where(
            PaymentOrder.status == "pending",
            PaymentOrder.created_at <= older_than,
            PaymentOrder.expire_at > now,
            or_(PaymentOrder.last_queried_at.is_(None), PaymentOrder.last_queried_at <= asked_before),
        )
        .order_by(PaymentOrder.created_at)
        .limit(BATCH_SIZE)
    ).all()
    channels = _Channels(session)
    paid = 0
    for order in orders:
        # Committed before the upstream is asked: an order that fails the query waits its interval too.
        with atomic(session):
            session.execute(
                update(PaymentOrder).where(PaymentOrder.id == order.id).values(last_queried_at=now)
            )
        channel = channels.for_order(order)
        if channel is None:
            continue
        try:
            paid += settled_by_query(session, channel, order) == "paid"
        except ChannelError as exc:
            if exc.code not in NOTHING_TO_CLOSE:
                logger.warning("querying pending order %s failed: %s", order.id, exc)
    return paid


def settled_by_query(session: Session, channel: PaymentChannel, order: PaymentOrder) -> str | None:
    """Ask the upstream; apply a paid or closed answer. Returns the state applied, None if still pending."""
    queried = channel.query_order(order.id)
    if queried.state == "paid":
        if queried.amount_fen is not None and queried.amount_fen != order.amount_fen:
            logger.error(
                "order %s: upstream reports %s fen paid, %s fen ordered; left for an operator",
                order.id,
                queried.amount_fen,
                order.amount_fen,
            )
            return "mismatch"
        mark_paid(session, order.id, queried.channel_transaction_id, queried.paid_at)
        return "paid"
    if queried.state == "closed":
        mark_closed(session, order.id)
        return "closed"
    return None


def sweep_stuck_work(session: Session, now: datetime | None = None) -> int:
    """Publish again forwards and splits overdue by more than the grace period (a publish lost with the
    broker, a worker gone). Their tasks lock the row and check it is due, so a duplicate does no harm."""
    now = now or utcnow()
    overdue = now - timedelta(seconds=current_app.config["SWEEP_GRACE_SECONDS"])
    # Read in one transaction, ended before the publishes: a slow broker holds no snapshot open.
    with atomic(session):
        forwards = session.scalars(
            select(OrderForward.order_id)
            .where(OrderForward.status == "pending", OrderForward.next_attempt_at <= overdue)
            .limit(BATCH_SIZE)
        ).all()
        sharings = session.scalars(
            select(ProfitSharing.order_id)
            .where(
                ProfitSharing.status.in_(("pending", "processing")), ProfitSharing.next_attempt_at <= overdue
            )
            .limit(BATCH_SIZE)
        ).all()
    for order_id in forwards:
        publish_forward(order_id)
    for order_id in sharings:
        publish_profit_sharing(order_id)
    return len(forwards) + len(sharings)
