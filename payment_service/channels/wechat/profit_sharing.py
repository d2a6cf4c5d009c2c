"""Profit sharing as WeChat Pay names it (receivers, transfers, sharing orders) and the ratio-to-fen split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, TypeVar

__all__ = [
    "ProfitSharingOrder",
    "ProfitSharingReceiverResult",
    "SharingReceiver",
    "SharingTransfer",
    "split_amounts",
]


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
