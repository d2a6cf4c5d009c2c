"""Public ids: ``PREFIX_YYYYMMDD_<18 base62 chars>`` (about 107 random bits).

Short enough for WeChat's ``out_trade_no`` (6–32 characters), unguessable, sortable by day.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime

_ALPHABET = string.digits + string.ascii_letters
SUFFIX_LENGTH = 18


_SUFFIXES = len(_ALPHABET) ** SUFFIX_LENGTH


def new_id(prefix: str, now: datetime | None = None) -> str:
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    # One draw from the OS for the whole suffix (a draw per character cost a send more than its INSERT).
    number = secrets.randbelow(_SUFFIXES)
    digits = []
    for _ in range(SUFFIX_LENGTH):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return f"{prefix}_{day}_{''.join(digits)}"
