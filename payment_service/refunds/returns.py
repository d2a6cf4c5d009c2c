"""Profit-sharing returns before refunding a split order: the receivers' shares come back first.

A refund reserved after the order's split had run (``needs_returns``) waits while WeChat still processes the
split, then records one return line per receiver the split paid: floor(refund fen × its ratio), capped at
what it received less what earlier refunds took back, planned once under the order's row lock so concurrent
refunds never return more than was received. Each line's ``out_return_no`` is derived from the refund id and
the receiver, never from the business's number, so a retry (a worker killed after the return) is the same
return order. A receiver's refusal ends the refund failed before any money leaves the sub-merchant.
"""

from __future__ import annotations

import hashlib
import logging
from decimal import ROUND_FLOOR, Decimal

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from payment_service.channels import (
    ChannelError,
    PaymentChannel,
    ProfitSharingReturnOrder,
    SharingReturn,
    WechatPayClient,
)
from payment_service.models import (
    PaymentOrder,
    ProfitSharing,
    ProfitSharingReceiver,
    ProfitSharingReturn,
    Refund,
)
from payment_service.orders.placing import UNTRUSTED_ANSWERS
from payment_service.outbox import publish_refund
from payment_service.refunds.states import Settlement, Step, settle
from shared.db import utcnow
from shared.transactions import atomic

logger = logging.getLogger(__name__)

RETURN_DESCRIPTION = "退款回退分账"
MAX_RETURN_NO = 64
RETURN_FAILED = "PROFIT_SHARING_RETURN_FAILED"


def out_return_no_for(refund_id: str, merchant_id: str) -> str:
    """The return's idempotency key at WeChat ([0-9A-Za-z_|*@-], at most 64): refund id and receiver."""
    number = f"{refund_id}_{merchant_id}"
    if len(number) <= MAX_RETURN_NO:
        return number
    digest = hashlib.sha256(merchant_id.encode()).hexdigest()
    return f"{refund_id}_{digest[: MAX_RETURN_NO - len(refund_id) - 1]}"


def return_amount(refund_fen: int, ratio: str, received_fen: int, returned_fen: int) -> int:
    """floor(refund × ratio), never more than the receiver still holds of this order."""
    share = int((Decimal(refund_fen) * Decimal(ratio)).to_integral_value(rounding=ROUND_FLOOR))
    return max(0, min(share, received_fen - returned_fen))


def settle_returns(
    session: Session, refund: Refund, order: PaymentOrder, client: PaymentChannel
) -> tuple[bool, Step | None]:
    """Advance the refund's returns; ``(True, None)`` when the refund call may go, else ``(False, Step)``."""
    sharing = session.scalar(
        select(ProfitSharing)
        .where(ProfitSharing.order_id == order.id)
        .execution_options(populate_existing=True)
    )
    if sharing is None or sharing.status == "failed":
        return True, None
    if sharing.status != "finished":
        # WeChat is still splitting: what each receiver got is not known yet, so wait for it.
        publish_refund(refund.id, countdown=current_app.config["PROFIT_SHARING_POLL_SECONDS"])
        return False, Step()
    if not isinstance(client, WechatPayClient):
        return True, None
    lines = _plan(session, refund.id, order.id, sharing)
    waiting = False
    for line in lines:
        if line.status in ("success", "failed"):
            continue
        try:
            if line.status == "pending":
                result = client.create_profit_sharing_return(
                    SharingReturn(
                        out_order_no=sharing.out_order_no,
                        out_return_no=line.out_return_no,
                        return_mchid=line.merchant_id,
                        amount_fen=line.amount_fen,
                        description=RETURN_DESCRIPTION,
                    )
                )
            else:
                result = client.query_profit_sharing_return(sharing.out_order_no, line.out_return_no)
        except ChannelError as exc:
            if exc.retryable or exc.code in UNTRUSTED_ANSWERS:
                logger.warning(
                    "refund %s: return from %s failed (%s); retried", refund.id, line.merchant_id, exc
                )
                publish_refund(refund.id, countdown=current_app.config["REFUND_RETRY_SECONDS"])
                return False, Step(error=exc)
            _record(session, line.id, "failed", None, f"{exc.code}: {exc.message}")
            return False, _refused(session, refund, line.merchant_id, exc.code, exc.message, exc)
        state = _record(session, line.id, result.state, result, result.fail_reason)
        if state == "failed":
            reason = result.fail_reason or result.result
            return False, _refused(session, refund, line.merchant_id, reason, "分账回退失败", None)
        waiting = waiting or state == "processing"
    if waiting:
        publish_refund(refund.id, countdown=current_app.config["REFUND_RETRY_SECONDS"])
        return False, Step()
    return True, None


def _plan(
    session: Session, refund_id: str, order_id: str, sharing: ProfitSharing
) -> list[ProfitSharingReturn]:
    """The refund's return lines, recorded on the first step (under the order's row lock)."""
    with atomic(session):
        session.scalar(select(PaymentOrder.id).where(PaymentOrder.id == order_id).with_for_update())
        refund = session.scalar(
            select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
        )
        if not refund.returns_planned:
            paid = session.scalars(
                select(ProfitSharingReceiver)
                .where(
                    ProfitSharingReceiver.sharing_id == sharing.id, ProfitSharingReceiver.state == "success"
                )
                .order_by(ProfitSharingReceiver.id)
            ).all()
            now = utcnow()
            for receiver in paid:
                returned = session.scalar(
                    select(func.coalesce(func.sum(ProfitSharingReturn.amount_fen), 0)).where(
                        ProfitSharingReturn.sharing_id == sharing.id,
                        ProfitSharingReturn.merchant_id == receiver.merchant_id,
                        ProfitSharingReturn.status != "failed",
                    )
                )
                fen = return_amount(refund.amount_fen, receiver.ratio, receiver.amount_fen, returned)
                if fen > 0:
                    session.add(
                        ProfitSharingReturn(
                            refund_id=refund.id,
                            sharing_id=sharing.id,
                            merchant_id=receiver.merchant_id,
                            out_return_no=out_return_no_for(refund.id, receiver.merchant_id),
                            amount_fen=fen,
                            status="pending",
                            created_at=now,
                            updated_at=now,
                        )
                    )
            refund.returns_planned = True
        lines = session.scalars(
            select(ProfitSharingReturn)
            .where(ProfitSharingReturn.refund_id == refund_id)
            .order_by(ProfitSharingReturn.id)
        ).all()
        for line in lines:
            session.expunge(line)
    return list(lines)


def _record(
    session: Session, line_id: int, state: str, result: ProfitSharingReturnOrder | None, reason: str | None
) -> str:
    values = {"status": state, "updated_at": utcnow(), "fail_reason": (reason or None) and reason[:200]}
    if result is not None and result.return_id:
        values["return_id"] = result.return_id
    with atomic(session):
        session.execute(
            update(ProfitSharingReturn)
            .where(
                ProfitSharingReturn.id == line_id, ProfitSharingReturn.status.in_(("pending", "processing"))
            )
            .values(**values)
        )
    return state


def _refused(
    session: Session, refund: Refund, merchant_id: str, code: str, message: str, exc: ChannelError | None
) -> Step:
    logger.warning(
        "refund %s: receiver %s refused the return (%s); refund failed", refund.id, merchant_id, code
    )
    details = {
        "upstream_code": code,
        "upstream_message": message,
        "http_status": exc.http_status if exc is not None else None,
        "merchant_id": merchant_id,
    }
    settle(session, refund.id, Settlement("failed", error_code=RETURN_FAILED, upstream_error=details))
    return Step(error=exc or ChannelError(code, message), failed=True)
