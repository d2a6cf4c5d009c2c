"""WeChat Pay's domestic refund: the body that asks for one and the object that reports it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payment_service.channels.base import ChannelError
from payment_service.channels.refunds import RefundRequest, RefundResult, RefundState
from payment_service.channels.wechat.transactions import parse_rfc3339

__all__ = ["REFUND_PATH", "REFUND_STATES", "refund_amounts", "refund_body", "refund_result"]

REFUND_PATH = "/v3/refund/domestic/refunds"

# WeChat's refund status, read as ours. ABNORMAL is not final: the money has left the merchant and waits in
# WeChat's refund account until the merchant redirects it (the abnormal-refund API or the merchant platform),
# after which the refund turns SUCCESS. It is neither refundable again nor refunded, so it stays processing;
# `upstream_status` tells it apart. CLOSED gave up for good: a new refund id may refund that amount again.
REFUND_STATES: dict[str, RefundState] = {
    "SUCCESS": "success",
    "PROCESSING": "processing",
    "ABNORMAL": "processing",
    "CLOSED": "failed",
}


def refund_body(request: RefundRequest, scope: Mapping[str, Any]) -> dict[str, Any]:
    """The refund request body; `scope` is `{"sub_mchid"}` in partner mode and empty for a direct merchant."""
    body: dict[str, Any] = dict(scope)
    body.update(out_trade_no=request.transaction_id, out_refund_no=request.refund_id)
    if request.reason:
        body["reason"] = request.reason
    if request.notify_url:
        body["notify_url"] = request.notify_url
    body["amount"] = {"refund": request.amount_fen, "total": request.total_fen, "currency": "CNY"}
    return body


def refund_amounts(data: Mapping[str, Any]) -> tuple[int, int] | None:
    """(refund, total) in fen from a refund object's `amount`, or None when either is not an integer."""
    amount = data.get("amount")
    if not isinstance(amount, dict):
        return None
    refund, total = amount.get("refund"), amount.get("total")
    for value in (refund, total):
        if isinstance(value, bool) or not isinstance(value, int):
            return None
    return refund, total


def refund_result(data: Mapping[str, Any], refund_id: str) -> RefundResult:
    """Read the refund object WeChat answers to a refund or a query; anything else is a BAD_RESPONSE."""
    status = str(data.get("status", ""))
    if status not in REFUND_STATES:
        raise ChannelError("BAD_RESPONSE", f"unknown refund status {status!r}", 200)
    if data.get("out_refund_no") != refund_id:
        raise ChannelError("BAD_RESPONSE", "WeChat Pay answered about another refund", 200)
    amounts = refund_amounts(data)
    return RefundResult(
        refund_id=refund_id,
        state=REFUND_STATES[status],
        upstream_status=status,
        channel_refund_id=data.get("refund_id"),
        amount_fen=amounts[0] if amounts else None,
        refunded_at=parse_rfc3339(data.get("success_time")),
        raw=dict(data),
    )
