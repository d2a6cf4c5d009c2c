"""What the API shows of a refund: amounts in yuan, times in UTC, its returns and forwarding state."""

from __future__ import annotations

from typing import Any

from payment_service.models import PaymentOrder, ProfitSharingReturn, Refund, RefundForward
from payment_service.orders.views import forward_view, yuan
from shared.db import isoformat


def created_view(refund: Refund) -> dict[str, Any]:
    """The answer to a refund request."""
    return {
        "refund_id": refund.id,
        "transaction_id": refund.order_id,
        "out_refund_no": refund.out_refund_no,
        "amount": yuan(refund.amount_fen),
        "status": refund.status,
        "reason": refund.reason,
        "created_at": isoformat(refund.created_at),
    }


def refund_view(
    refund: Refund,
    order: PaymentOrder,
    forward: RefundForward | None = None,
    returns: list[ProfitSharingReturn] | None = None,
) -> dict[str, Any]:
    view = created_view(refund)
    view.update(
        out_order_no=order.out_order_no,
        channel=order.channel,
        channel_refund_id=refund.channel_refund_id,
        upstream_status=refund.upstream_status,
        error_code=refund.error_code,
        upstream_error=refund.upstream_error,
        notify_url=refund.notify_url,
        updated_at=isoformat(refund.updated_at),
        success_at=isoformat(refund.success_at),
        forwarding=forward_view(forward) if forward is not None else None,
    )
    if order.mode == "wechat_split":
        view["profit_sharing_returns"] = [
            {
                "merchant_id": line.merchant_id,
                "amount": yuan(line.amount_fen),
                "status": line.status,
                "fail_reason": line.fail_reason,
            }
            for line in returns or []
        ]
    return view


def forward_payload(refund: Refund, order: PaymentOrder) -> dict[str, Any]:
    """The body of the payment.refund forward (the event name is the forwarding module's)."""
    return {
        "refund_id": refund.id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": order.id,
        "out_order_no": order.out_order_no,
        "amount": yuan(refund.amount_fen),
        "status": refund.status,
        "success_at": isoformat(refund.success_at),
    }
