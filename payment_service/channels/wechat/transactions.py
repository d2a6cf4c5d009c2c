"""WeChat Pay's transaction object as order queries and payment notifications both carry it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from payment_service.channels.base import OrderState

__all__ = ["TRADE_STATES", "amount_total", "parse_rfc3339"]

# https://pay.weixin.qq.com trade_state values, read as our order states. REFUND means it was paid.
TRADE_STATES: dict[str, OrderState] = {
    "SUCCESS": "paid",
    "REFUND": "paid",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "ACCEPT": "pending",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "PAYERROR": "failed",
}


def amount_total(data: Mapping[str, Any]) -> Any:
    amount = data.get("amount")
    return amount.get("total") if isinstance(amount, dict) else None


def parse_rfc3339(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        return None
