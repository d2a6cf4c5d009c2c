"""What every method of the Alipay gateway fake shares: the signed refusal, amounts, ids and Beijing times."""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")


class AlipayError(Exception):
    """A refusal inside a signed `<method>_response`: code, msg, sub_code, sub_msg."""

    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(sub_msg)
        self.body = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def business_error(sub_code: str, sub_msg: str) -> AlipayError:
    return AlipayError("40004", "Business Failed", sub_code, sub_msg)


def invalid(sub_code: str, sub_msg: str) -> AlipayError:
    return AlipayError("40002", "Invalid Arguments", sub_code, sub_msg)


def beijing_now() -> str:
    return datetime.now(BEIJING).strftime(TIME_FORMAT)


def digits(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def yuan_amount(value: Any, name: str) -> Decimal:
    """A yuan amount as the gateway reads one (string or number, at most two decimals, at least 0.01)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float) or not AMOUNT.match(str(value)):
        raise business_error("ACQ.INVALID_PARAMETER", f"{name} 须为元，最多两位小数")
    amount = Decimal(str(value))
    if not Decimal("0.01") <= amount <= Decimal("100000000"):
        raise business_error("ACQ.INVALID_PARAMETER", f"{name} 超出范围")
    return amount


def yuan(amount: Decimal) -> str:
    return f"{amount:.2f}"
