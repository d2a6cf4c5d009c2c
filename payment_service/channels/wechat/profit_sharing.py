"""Profit sharing as WeChat Pay names it (receivers, transfers, sharing orders, return orders) and the
ratio-to-fen split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Literal, TypeVar

from payment_service.channels.wechat.transactions import parse_rfc3339

__all__ = [
    "RETURN_STATES",
    "ProfitSharingOrder",
    "ProfitSharingReceiverResult",
    "ProfitSharingReturnOrder",
    "ReturnState",
    "SharingReceiver",
    "SharingReturn",
    "SharingTransfer",
    "split_amounts",
]

ReturnState = Literal["processing", "success", "failed"]
RETURN_STATES: dict[str, ReturnState] = {"PROCESSING": "processing", "SUCCESS": "success", "FAILED": "failed"}


@dataclass(frozen=True)
class SharingReceiver:
    """A profit-sharing receiver to register once per sub-merchant before splitting to it.

    WeChat requires `name` (the full legal merchant name) for MERCHANT_ID receivers; it is sent encrypted.
    """

    account: str
    name: str | None = None
    type: str = "MERCHANT_ID"
    relation_type: str = "PARTNER"
    custom_relation: str | None = None


@dataclass(frozen=True)
class SharingTransfer:
    """One line of a profit-sharing order: `amount_fen` moves from the sub-merchant to `account`."""

    account: str
    amount_fen: int
    description: str
    type: str = "MERCHANT_ID"
    name: str | None = None


@dataclass(frozen=True)
class ProfitSharingReceiverResult:
    account: str
    type: str
    amount_fen: int
    description: str
    result: str  # PENDING | SUCCESS | CLOSED
    fail_reason: str | None
    detail_id: str | None


@dataclass(frozen=True)
class ProfitSharingOrder:
    """A profit-sharing order as WeChat reports it. It is asynchronous: PROCESSING until FINISHED."""

    out_order_no: str
    order_id: str | None
    transaction_id: str | None
    state: str
    receivers: tuple[ProfitSharingReceiverResult, ...]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> ProfitSharingOrder:
        return cls(
            out_order_no=str(data.get("out_order_no", "")),
            order_id=data.get("order_id"),
            transaction_id=data.get("transaction_id"),
            state=str(data.get("state", "")),
            receivers=tuple(
                ProfitSharingReceiverResult(
                    account=str(item.get("account", "")),
                    type=str(item.get("type", "")),
                    amount_fen=int(item.get("amount", 0)),
                    description=str(item.get("description", "")),
                    result=str(item.get("result", "")),
                    fail_reason=item.get("fail_reason"),
                    detail_id=item.get("detail_id"),
                )
                for item in data.get("receivers") or ()
            ),
            raw=dict(data),
        )


@dataclass(frozen=True)
class SharingReturn:
    """Move `amount_fen` back to the sub-merchant from `return_mchid`, a receiver of the split `out_order_no`.

    A refund after a split is funded by the sub-merchant alone, so the receivers' shares come back first.
    `out_return_no` makes it idempotent: the same number again is the same return order.
    """

    out_order_no: str
    out_return_no: str
    return_mchid: str
    amount_fen: int
    description: str

    def __post_init__(self) -> None:
        for name in ("out_order_no", "out_return_no", "return_mchid", "description"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} is required")
        if isinstance(self.amount_fen, bool) or not isinstance(self.amount_fen, int) or self.amount_fen <= 0:
            raise ValueError("amount_fen must be a positive integer (fen)")


@dataclass(frozen=True)
class ProfitSharingReturnOrder:
    """A return order as WeChat reports it: PROCESSING, then SUCCESS or FAILED (with `fail_reason`)."""

    out_order_no: str
    out_return_no: str
    return_id: str | None
    return_mchid: str
    amount_fen: int | None
    state: ReturnState
    result: str
    fail_reason: str | None
    finished_at: datetime | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> ProfitSharingReturnOrder:
        """Raises ValueError for an answer that is not a return order (unknown result)."""
        result = str(data.get("result", ""))
        if result not in RETURN_STATES:
            raise ValueError(f"unknown return order result {result!r}")
        amount = data.get("amount")
        return cls(
            out_order_no=str(data.get("out_order_no", "")),
            out_return_no=str(data.get("out_return_no", "")),
            return_id=data.get("return_id"),
            return_mchid=str(data.get("return_mchid", "")),
            amount_fen=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            state=RETURN_STATES[result],
            result=result,
            fail_reason=data.get("fail_reason"),
            finished_at=parse_rfc3339(data.get("finish_time")),
            raw=dict(data),
        )


R = TypeVar("R", bound=Mapping[str, Any])


def split_amounts(total_fen: int, receivers: Sequence[R], sub_mch_id: str | None) -> list[tuple[R, int]]:
    """Turn profit-sharing ratios into fen for one paid order; deterministic and never over-transferring.

    Each receiver is a mapping with `merchant_id` and `ratio`. Ratios are read as exact decimals (a float
    goes through str(), so 0.15 is 0.15, not 0.1499999...). A receiver whose merchant_id is `sub_mch_id`
    is the sub-merchant's own share: it stays where the money already is and is never transferred. Every
    other receiver gets floor(total_fen × ratio) fen; receivers that come to 0 fen are skipped because
    WeChat refuses zero-amount lines. Whatever the floors leave over also stays with the sub-merchant.
    Returns (receiver, fen) pairs in the receivers' order.
    """
    if isinstance(total_fen, bool) or not isinstance(total_fen, int) or total_fen < 0:
        raise ValueError("total_fen must be a non-negative integer")
    ratios = [_exact_ratio(receiver.get("ratio")) for receiver in receivers]
    if sum(ratios, Decimal(0)) > 1:
        raise ValueError("profit-sharing ratios add up to more than 1")
    transfers: list[tuple[R, int]] = []
    for receiver, ratio in zip(receivers, ratios, strict=True):
        if sub_mch_id is not None and str(receiver.get("merchant_id")) == str(sub_mch_id):
            continue
        fen = int((Decimal(total_fen) * ratio).to_integral_value(rounding=ROUND_FLOOR))
        if fen > 0:
            transfers.append((receiver, fen))
    return transfers


def _exact_ratio(value: Any) -> Decimal:
    try:
        ratio = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"ratio {value!r} is not a number") from None
    if isinstance(value, bool) or not ratio.is_finite() or not 0 < ratio <= 1:
        raise ValueError(f"ratio {value!r} must be in (0, 1]")
    return ratio
