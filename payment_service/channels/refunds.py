"""Refunds as the domain asks for them and as either channel reports them: a request, a result, a notice.

Our ids double as the upstream's: the order's transaction id is out_trade_no, the refund id is WeChat's
out_refund_no and Alipay's out_request_no. Sending the same refund id again is the same refund upstream, so a
retry after a timeout can never refund twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["RefundNotice", "RefundRequest", "RefundResult", "RefundState"]

# processing: accepted upstream, money not yet back (ask again, or wait for the notice); success: refunded;
# failed: the upstream gave up on this refund, the amount is refundable again under a new refund id.
RefundState = Literal["processing", "success", "failed"]


def _check_fen(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer (fen)")


@dataclass(frozen=True)
class RefundRequest:
    """Refund `amount_fen` of the order `transaction_id` (paid `total_fen`) as our refund `refund_id`.

    `notify_url` is where WeChat posts the refund's result; Alipay answers synchronously and ignores it.
    """

    transaction_id: str
    refund_id: str
    amount_fen: int
    total_fen: int
    reason: str | None = None
    notify_url: str | None = None

    def __post_init__(self) -> None:
        for name in ("transaction_id", "refund_id"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} is required")
        _check_fen("amount_fen", self.amount_fen)
        _check_fen("total_fen", self.total_fen)
        if self.amount_fen > self.total_fen:
            raise ValueError("amount_fen exceeds total_fen")


@dataclass(frozen=True)
class RefundResult:
    """A refund as the upstream reports it, accepting one or answering a query.

    `upstream_status` is the upstream's own word (WeChat `status`; Alipay `refund_status`, or
    `fund_change=Y|N` for the refund call itself); `state` is our reading of it. `amount_fen` is this
    refund's amount when the upstream says it (an Alipay refund call reports only the trade's running
    total, kept in `raw`).
    """

    refund_id: str
    state: RefundState
    upstream_status: str
    channel_refund_id: str | None = None
    amount_fen: int | None = None
    refunded_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class RefundNotice:
    """A refund notification whose signature and encryption checked out, for this merchant.

    Authentic, not yet trusted: the caller still matches `refund_id` (our out_refund_no), `out_trade_no` and
    the amounts against its own refund before changing anything.
    """

    out_trade_no: str
    refund_id: str
    channel_refund_id: str | None
    channel_transaction_id: str | None
    amount_fen: int
    total_fen: int
    merchant_ids: dict[str, str]
    state: RefundState
    upstream_status: str
    refunded_at: datetime | None
    raw: dict[str, Any] = field(repr=False)
