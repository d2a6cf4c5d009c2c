"""Advancing a processing refund one step: its profit-sharing returns, the refund call, or a query.

Every step starts from the committed row and reuses its ids, so a step that dies anywhere (a worker killed
during the call) is simply taken again: the same refund id is the same refund upstream, the same return
number the same return. ``requested_at`` is committed before each refund call; a query that finds no such
refund ``PAYMENT_REFUND_RESEND_AFTER_SECONDS`` after it sends the refund again (Alipay asks for 10 s).

WeChat's FREQUENCY_LIMITED keeps the refund processing and sends it again ``PAYMENT_REFUND_RETRY_SECONDS``
later; a timeout, a 5xx or an answer we cannot trust leaves it processing for reconciliation; only a refusal
the upstream means ends it failed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_service.channels import ChannelError, PaymentChannel, RefundRequest, RefundResult
from payment_service.configs.merchant_channels import CHANNEL_BY_MODE, NOTIFY_PATH, channel_for
from payment_service.models import PaymentConfig, PaymentOrder, Refund
from payment_service.orders.placing import UNTRUSTED_ANSWERS
from payment_service.outbox import publish_refund
from payment_service.refunds import returns
from payment_service.refunds.states import ABNORMAL, Settlement, Step, note, owe_again, settle
from shared.db import utcnow
from shared.transactions import atomic

logger = logging.getLogger(__name__)

THROTTLED = frozenset({"FREQUENCY_LIMITED", "RATELIMIT_EXCEEDED"})
EARLY_SLACK = timedelta(seconds=1)


def refund_notify_path(config_id: str) -> str:
    return f"{NOTIFY_PATH}/wechat/refunds/{config_id}"


def advance_refund(session: Session, refund_id: str, *, due_only: bool = True) -> Step:
    """Take the refund's next step; a refund settled, or not due yet (with ``due_only``), is left alone."""
    with atomic(session):
        refund = session.scalar(
            select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
        )
        if refund is None or refund.status != "processing":
            return Step()
        if due_only and refund.next_attempt_at > utcnow() + EARLY_SLACK:
            return Step()
        order = session.get(PaymentOrder, refund.order_id)
        config = session.get(PaymentConfig, order.config_id)
        session.expunge(refund)
    if config is None:
        settle(session, refund.id, Settlement("failed", error_code="CONFIG_DELETED"))
        return Step(failed=True)
    try:
        client = channel_for(config)
    except ValueError as exc:
        logger.error("refund %s: config %s cannot make a client: %s", refund.id, config.id, exc)
        return Step()
    if refund.needs_returns:
        done, step = returns.settle_returns(session, refund, order, client)
        if not done:
            return step
    if refund.requested_at is None:
        return _send(session, refund, order, config, client)
    return _query(session, refund, order, config, client)


def _send(
    session: Session, refund: Refund, order: PaymentOrder, config: PaymentConfig, client: PaymentChannel
) -> Step:
    now = utcnow()
    # Committed before the call: a query later knows how long ago the refund may have reached the upstream.
    note(session, refund.id, requested_at=now, last_queried_at=now, attempts=refund.attempts + 1)
    notify_url = None
    if CHANNEL_BY_MODE[config.mode] == "wechat":
        notify_url = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + refund_notify_path(config.id)
    request = RefundRequest(
        transaction_id=order.id,
        refund_id=refund.id,
        amount_fen=refund.amount_fen,
        total_fen=order.amount_fen,
        reason=refund.reason,
        notify_url=notify_url,
    )
    try:
        result = client.refund(request)
    except ChannelError as exc:
        return _refund_failed(session, refund, exc)
    return apply_result(session, refund, result)


def _refund_failed(session: Session, refund: Refund, exc: ChannelError) -> Step:
    details = exc.as_details()
    if exc.code in THROTTLED:
        delay = current_app.config["REFUND_RETRY_SECONDS"]
        logger.info("refund %s: %s, sent again in %.0f s", refund.id, exc.code, delay)
        owe_again(session, refund.id, delay, details)
        return Step()
    if exc.retryable or exc.code in UNTRUSTED_ANSWERS:
        # It may have reached the upstream: reconciliation asks before anything is sent again.
        logger.warning("refund %s: upstream failed (%s); left processing for reconciliation", refund.id, exc)
        note(session, refund.id, upstream_error=details)
        return Step(error=exc)
    logger.warning("refund %s: upstream refused: %s", refund.id, exc)
    settle(session, refund.id, Settlement("failed", error_code=exc.code, upstream_error=details))
    return Step(error=exc, failed=True)


def _query(
    session: Session, refund: Refund, order: PaymentOrder, config: PaymentConfig, client: PaymentChannel
) -> Step:
    now = utcnow()
    note(session, refund.id, last_queried_at=now)
    try:
        result = client.query_refund(order.id, refund.id)
    except ChannelError as exc:
        logger.warning("refund %s: query failed: %s", refund.id, exc)
        return Step(error=exc)
    if result is not None:
        return apply_result(session, refund, result)
    waited = (now - refund.requested_at).total_seconds()
    resend_after = current_app.config["REFUND_RESEND_AFTER_SECONDS"]
    if waited >= resend_after:
        logger.info("refund %s: unknown upstream %.0f s after the call; sent again", refund.id, waited)
        return _send(session, refund, order, config, client)
    publish_refund(refund.id, countdown=resend_after - waited)
    return Step()


def apply_result(session: Session, refund: Refund, result: RefundResult) -> Step:
    """Settle the refund as the upstream reports it, or note it and ask again later."""
    if result.amount_fen is not None and result.amount_fen != refund.amount_fen:
        logger.error(
            "refund %s: upstream reports %s fen, %s fen asked; left for an operator",
            refund.id,
            result.amount_fen,
            refund.amount_fen,
        )
        return Step()
    if result.state == "success":
        settle(session, refund.id, _settlement("success", result))
    elif result.state == "failed":
        settle(session, refund.id, _settlement("failed", result, f"REFUND_{result.upstream_status}"))
        return Step(failed=True)
    elif result.upstream_status == "ABNORMAL":
        settle(session, refund.id, _settlement("failed", result, ABNORMAL))
        return Step(failed=True)
    else:
        note(
            session,
            refund.id,
            upstream_status=result.upstream_status,
            channel_refund_id=result.channel_refund_id or refund.channel_refund_id,
        )
        if CHANNEL_BY_MODE.get(_mode_of(session, refund)) == "alipay":
            # Alipay has no refund notification: its fund_change N is settled by asking.
            publish_refund(refund.id, countdown=current_app.config["REFUND_RETRY_SECONDS"])
    return Step()


def _settlement(status: str, result: RefundResult, error_code: str | None = None) -> Settlement:
    return Settlement(
        status,
        upstream_status=result.upstream_status,
        channel_refund_id=result.channel_refund_id,
        success_at=result.refunded_at,
        error_code=error_code,
    )


def _mode_of(session: Session, refund: Refund) -> str:
    return session.scalar(select(PaymentOrder.mode).where(PaymentOrder.id == refund.order_id)) or ""
