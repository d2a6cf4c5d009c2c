"""Asking for a refund: validated, idempotent by the business's ``out_refund_no``, its amount reserved on the
order under the order's row lock, committed ``processing`` before the upstream is asked; and reading refunds.

The reservation (``SELECT … FOR UPDATE`` of the order) serialises every refund of one order: what is still
refundable is paid − successful − processing, so concurrent requests can never reserve more than was paid,
and the order's check constraint says so again. The upstream call follows the commit (``sending``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payment_service.models import PaymentOrder, ProfitSharing, ProfitSharingReturn, Refund, RefundForward
from payment_service.orders.placing import amount_fen_to_text, amount_in_fen, get_order
from payment_service.orders.views import yuan
from payment_service.refunds.sending import advance_refund
from payment_service.refunds.views import refund_view
from shared.db import fetch_page, utcnow
from shared.envelope import BadRequestError, ConflictError, NotFoundError, UpstreamError
from shared.ids import new_id
from shared.transactions import atomic
from shared.webhooks import UrlRefused, check_public_url

logger = logging.getLogger(__name__)

NOT_FOUND = "退款不存在"
NOT_PAID = "订单未支付,不能退款"
FULLY_REFUNDED = "订单已全额退款"
MAX_REASON_BYTES = 80


@dataclass(frozen=True)
class NewRefund:
    """A refund as the business asks for it; ``amount`` in yuan."""

    amount: Decimal
    reason: str | None = None
    out_refund_no: str | None = None
    notify_url: str | None = None


def request_refund(session: Session, tenant_id: str, transaction_id: str, request: NewRefund) -> Refund:
    """Reserve and send a refund (or return the one ``out_refund_no`` already names).

    Raises 404 (another tenant's order), 409 (not paid, or ``out_refund_no`` reused with another amount),
    400 (amount above what is refundable, bad fields) or 502 (the upstream refused, failed or timed out).
    """
    amount_fen = amount_in_fen(request.amount)
    if request.reason is not None and len(request.reason.encode("utf-8")) > MAX_REASON_BYTES:
        message = f"退款原因最多 {MAX_REASON_BYTES} 字节(UTF-8)"
        raise BadRequestError(message, {"errors": {"reason": [message]}})
    if request.notify_url:
        try:
            check_public_url(request.notify_url, current_app.config["NOTIFY_ALLOW_PRIVATE"])
        except UrlRefused as exc:
            raise BadRequestError(str(exc), {"errors": {"notify_url": [str(exc)]}}) from None
    order = get_order(session, tenant_id, transaction_id)
    if request.out_refund_no:
        existing = _find_by_out_refund_no(session, tenant_id, request.out_refund_no)
        if existing is not None:
            return _repeat(existing, order, amount_fen)
    try:
        refund, repeated = _reserve(session, order.id, tenant_id, amount_fen, request)
    except IntegrityError:
        # Another request with this out_refund_no won the insert (on another order): its repeat.
        existing = _find_by_out_refund_no(session, tenant_id, request.out_refund_no or "")
        if existing is None:
            raise
        return _repeat(existing, order, amount_fen)
    if repeated:
        return _repeat(refund, order, amount_fen)
    step = advance_refund(session, refund.id, due_only=False)
    refund = session.get(Refund, refund.id, populate_existing=True)
    if step.error is not None:
        verb = "拒绝" if step.failed else "未确认"
        raise UpstreamError(
            f"上游支付渠道{verb}退款: {step.error.message}",
            {"refund_id": refund.id, "status": refund.status, **step.error.as_details()},
        )
    return refund


def _reserve(
    session: Session, order_id: str, tenant_id: str, amount_fen: int, request: NewRefund
) -> tuple[Refund, bool]:
    """Lock the order, check what is refundable, record the refund and reserve its amount; one transaction.

    Returns the refund and whether it is an earlier one of the same ``out_refund_no`` (found under the lock).
    """
    with atomic(session):
        order = session.scalar(
            select(PaymentOrder)
            .where(PaymentOrder.id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if request.out_refund_no:
            existing = _find_by_out_refund_no(session, tenant_id, request.out_refund_no)
            if existing is not None:
                return existing, True
        if order.status == "refunded":
            raise ConflictError(FULLY_REFUNDED, {"transaction_id": order.id, "status": order.status})
        if order.status != "paid":
            raise ConflictError(NOT_PAID, {"transaction_id": order.id, "status": order.status})
        refundable = order.amount_fen - order.refunded_fen - order.refunding_fen
        if amount_fen > refundable:
            message = f"退款金额超过可退金额 {amount_fen_to_text(refundable)} 元"
            raise BadRequestError(message, {"errors": {"amount": [message]}, "refundable": yuan(refundable)})
        sharing_status = session.scalar(
            select(ProfitSharing.status).where(ProfitSharing.order_id == order.id)
        )
        now = utcnow()
        refund = Refund(
            id=new_id("RFD", now),
            tenant_id=tenant_id,
            order_id=order.id,
            out_refund_no=request.out_refund_no,
            amount_fen=amount_fen,
            reason=request.reason or None,
            notify_url=request.notify_url or order.notify_url,
            status="processing",
            # A split already placed has paid receivers to take back from; one not placed yet will split
            # only what remains after this refund (orders.profit_sharing).
            needs_returns=sharing_status in ("processing", "finished"),
            returns_planned=False,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(refund)
        order.refunding_fen += amount_fen
        order.updated_at = now
    logger.info("refund %s of order %s: %d fen reserved", refund.id, order_id, amount_fen)
    return refund, False


def _repeat(refund: Refund, order: PaymentOrder, amount_fen: int) -> Refund:
    """A repeated ``out_refund_no``: the same refund again, or 409 naming what differs."""
    differences = {}
    if refund.amount_fen != amount_fen:
        differences["amount"] = {"first": yuan(refund.amount_fen), "now": yuan(amount_fen)}
    if refund.order_id != order.id:
        differences["transaction_id"] = {"first": refund.order_id, "now": order.id}
    if differences:
        raise ConflictError(
            "退款单号已用于另一笔退款(金额或订单不同)",
            {"out_refund_no": refund.out_refund_no, "refund_id": refund.id, "differences": differences},
        )
    return refund


def _find_by_out_refund_no(session: Session, tenant_id: str, out_refund_no: str) -> Refund | None:
    return session.scalar(
        select(Refund)
        .where(Refund.tenant_id == tenant_id, Refund.out_refund_no == out_refund_no)
        .execution_options(populate_existing=True)
    )


def get_refund(session: Session, tenant_id: str, refund_id: str) -> Refund:
    refund = session.get(Refund, refund_id)
    if refund is None or refund.tenant_id != tenant_id:
        raise NotFoundError(NOT_FOUND)
    return refund


def refund_detail(session: Session, tenant_id: str, refund_id: str) -> dict[str, Any]:
    refund = get_refund(session, tenant_id, refund_id)
    order = session.get(PaymentOrder, refund.order_id)
    return _details(session, order, [refund])[0]


def list_refunds(
    session: Session, tenant_id: str, transaction_id: str, page: int = 1, size: int = 20
) -> tuple[list[dict[str, Any]], int]:
    """One page of an order's refunds, newest first; another tenant's order is a 404."""
    order = get_order(session, tenant_id, transaction_id)
    refunds, total = fetch_page(session, Refund, [Refund.order_id == order.id], page, size)
    return _details(session, order, refunds), total


def _details(session: Session, order: PaymentOrder, refunds: list[Refund]) -> list[dict[str, Any]]:
    ids = [refund.id for refund in refunds]
    if not ids:
        return []
    forwards = {
        f.refund_id: f for f in session.scalars(select(RefundForward).where(RefundForward.refund_id.in_(ids)))
    }
    lines: dict[str, list[ProfitSharingReturn]] = {}
    for line in session.scalars(
        select(ProfitSharingReturn)
        .where(ProfitSharingReturn.refund_id.in_(ids))
        .order_by(ProfitSharingReturn.id)
    ):
        lines.setdefault(line.refund_id, []).append(line)
    return [
        refund_view(refund, order, forwards.get(refund.id), lines.get(refund.id, [])) for refund in refunds
    ]
