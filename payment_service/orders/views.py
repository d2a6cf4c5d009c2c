"""What the API shows of an order: amounts in yuan (refunded and refunding too), times in UTC, profit sharing
and forwarding state.

Amounts are JSON numbers in yuan (``20.5`` for 2050 fen): exact for every amount up to the maximum,
since a two-decimal number survives the round trip through a double.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from payment_service.models import (
    OrderForward,
    PaymentOrder,
    ProfitSharing,
    ProfitSharingReceiver,
    RefundForward,
)
from shared.db import isoformat

FEN_PER_YUAN = 100


def yuan(amount_fen: int) -> float:
    return float(Decimal(amount_fen) / FEN_PER_YUAN)


def created_view(order: PaymentOrder) -> dict[str, Any]:
    """The contract's order answer, plus the order's number, amount and status."""
    return {
        "transaction_id": order.id,
        "channel": order.channel,
        "pay_params": order.pay_params,
        "out_order_no": order.out_order_no,
        "amount": yuan(order.amount_fen),
        "status": order.status,
    }


def order_view(
    order: PaymentOrder,
    forward: OrderForward | None = None,
    sharing: ProfitSharing | None = None,
    receivers: list[ProfitSharingReceiver] | None = None,
) -> dict[str, Any]:
    return {
        "transaction_id": order.id,
        "out_order_no": order.out_order_no,
        "site_id": order.site_id,
        "channel": order.channel,
        "mode": order.mode,
        "config_id": order.config_id,
        "amount": yuan(order.amount_fen),
        "refunded_amount": yuan(order.refunded_fen or 0),
        "refunding_amount": yuan(order.refunding_fen or 0),
        "description": order.description,
        "status": order.status,
        "channel_order_ref": order.channel_order_ref,
        "channel_transaction_id": order.channel_transaction_id,
        "upstream_error": order.upstream_error,
        "notify_url": order.notify_url,
        "created_at": isoformat(order.created_at),
        "expire_at": isoformat(order.expire_at),
        "paid_at": isoformat(order.paid_at),
        "closed_at": isoformat(order.closed_at),
        "profit_sharing": _sharing_view(sharing, receivers or []) if sharing is not None else None,
        "forwarding": forward_view(forward) if forward is not None else None,
    }


def _sharing_view(sharing: ProfitSharing, receivers: list[ProfitSharingReceiver]) -> dict[str, Any]:
    return {
        "status": sharing.status,
        "out_order_no": sharing.out_order_no,
        "attempts": sharing.attempts,
        "last_error": sharing.last_error,
        "finished_at": isoformat(sharing.finished_at),
        "receivers": [
            {
                "merchant_id": line.merchant_id,
                "receiver_type": line.receiver_type,
                "ratio": float(Decimal(line.ratio)),
                "amount": yuan(line.amount_fen),
                "state": line.state,
                "fail_reason": line.fail_reason,
            }
            for line in receivers
        ],
    }


def forward_view(forward: OrderForward | RefundForward) -> dict[str, Any]:
    return {
        "status": forward.status,
        "attempts": forward.attempts,
        "last_http_status": forward.last_http_status,
        "last_error": forward.last_error,
        "next_attempt_at": isoformat(forward.next_attempt_at) if forward.status == "pending" else None,
        "delivered_at": isoformat(forward.delivered_at),
    }
