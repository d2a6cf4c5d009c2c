"""The Alipay gateway's wire format: amounts as yuan strings, what a signature covers, the verbatim text of a
signed answer, and the gateway's Beijing-time timestamps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from payment_service.channels.base import BEIJING

__all__ = [
    "TIME_FORMAT",
    "YUAN_AMOUNT",
    "extract_signed_content",
    "fen_to_yuan",
    "notification_sign_content",
    "parse_beijing_time",
    "request_sign_content",
    "top_level_members",
    "yuan_to_fen",
]

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
YUAN_AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")
_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON = json.JSONDecoder()


def fen_to_yuan(amount_fen: int) -> str:
    """Alipay amounts are yuan strings with exactly two decimals: 2000 → "20.00"."""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def yuan_to_fen(value: str) -> int:
    """Read an Alipay amount ("20.00", "20.5", "20") as integer fen; anything else is a ValueError."""
    if not isinstance(value, str) or not YUAN_AMOUNT.match(value):
        raise ValueError(f"not an Alipay amount: {value!r}")
    try:
        return int(Decimal(value) * 100)
    except InvalidOperation:
        raise ValueError(f"not an Alipay amount: {value!r}") from None


def request_sign_content(params: Mapping[str, Any]) -> str:
    """What a request signature covers: every parameter but `sign`, empty values dropped, keys sorted,
    `k=v` joined by `&` with raw (not URL-encoded) values. `sign_type` is signed, as the official SDK does."""
    items = sorted((k, str(v)) for k, v in params.items() if k != "sign" and v is not None and str(v) != "")
    return "&".join(f"{k}={v}" for k, v in items)


def notification_sign_content(params: Mapping[str, str]) -> str:
    """What a notification signature covers: every parameter but `sign` and `sign_type`, empty values KEPT
    (the official getSignCheckContentV1), keys sorted, raw values."""
    items = sorted(
        (k, "" if v is None else str(v)) for k, v in params.items() if k not in ("sign", "sign_type")
    )
    return "&".join(f"{k}={v}" for k, v in items)


def top_level_members(body: str) -> Iterator[tuple[str, int, int]]:
    """Yield (key, start, end) of each member of the top-level JSON object, as spans of the raw text.

    Values are delimited by the standard JSON scanner, which honours strings and escapes: a `}` or `"`
    inside a string value can never end a span early, which a brace counter that ignores quotes gets wrong.
    """
    index = _JSON_WS.match(body).end()
    if body[index : index + 1] != "{":
        raise ValueError("not a JSON object")
    index = _JSON_WS.match(body, index + 1).end()
    if body[index : index + 1] == "}":
        return
    while True:
        key, index = _JSON.raw_decode(body, index)
        if not isinstance(key, str):
            raise ValueError("object key is not a string")
        index = _JSON_WS.match(body, index).end()
        if body[index : index + 1] != ":":
            raise ValueError("expected ':' after an object key")
        start = _JSON_WS.match(body, index + 1).end()
        _, end = _JSON.raw_decode(body, start)
        yield key, start, end
        index = _JSON_WS.match(body, end).end()
        separator = body[index : index + 1]
        if separator == "}":
            return
        if separator != ",":
            raise ValueError("expected ',' or '}' in an object")
        index = _JSON_WS.match(body, index + 1).end()


def extract_signed_content(body: str, root: str) -> str | None:
    """The verbatim text of `root`'s value in a gateway answer: the bytes Alipay signed.

    Equivalent to the official SDK's extractSignContent, but anchored on the top-level member named `root`
    rather than on the first occurrence of the name anywhere in the text. Never re-dump parsed JSON:
    key order, spacing and escapes would differ from what was signed.
    """
    for key, start, end in top_level_members(body):
        if key == root:
            return body[start:end]
    return None


def parse_beijing_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(str(value), TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)
    except ValueError:
        return None
