"""Closing a pending order on the business's request: upstream first, then here (``states.mark_closed``).

A paid (or refunded) order cannot be closed (409); a closed one answers as closed again. The upstream is asked
before it is told to close, as on expiry: a payment that went through ends the order paid, never closed.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from payment_service.channels import ChannelError
from payment_service.configs.merchant_channels import channel_for
from payment_service.models import PaymentConfig, PaymentOrder
from payment_service.orders.placing import get_order
from payment_service.orders.reconciliation import NOTHING_TO_CLOSE, settled_by_query
from payment_service.orders.states import mark_closed
from shared.envelope import BadRequestError, ConflictError, UpstreamError

logger = logging.getLogger(__name__)

PAID = "订单已支付,不能关闭"


def close_order(session: Session, tenant_id: str, transaction_id: str) -> PaymentOrder:
    order = get_order(session, tenant_id, transaction_id)
    if order.status == "closed":
        return order
    if order.status in ("paid", "refunded"):
        raise ConflictError(PAID, {"transaction_id": order.id, "status": order.status})
    if order.status != "pending":
        raise ConflictError("订单创建失败,无需关闭", {"transaction_id": order.id, "status": order.status})
    config = session.get(PaymentConfig, order.config_id)
    if config is not None:
        try:
            channel = channel_for(config)
        except ValueError as exc:
            raise BadRequestError(f"支付配置无法使用: {exc}", {"transaction_id": order.id}) from None
        try:
            if settled_by_query(session, channel, order) == "paid":
                raise ConflictError(PAID, {"transaction_id": order.id, "status": "paid"})
            channel.close_order(order.id)
        except ChannelError as exc:
            if exc.code not in NOTHING_TO_CLOSE:
                logger.warning("closing order %s upstream failed: %s", order.id, exc)
                raise UpstreamError(
                    f"上游支付渠道错误: {exc.message}", {"transaction_id": order.id, **exc.as_details()}
                ) from None
    mark_closed(session, order.id)
    session.refresh(order)
    if order.status in ("paid", "refunded"):
        raise ConflictError(PAID, {"transaction_id": order.id, "status": order.status})
    return order
