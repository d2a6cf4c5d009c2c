"""Public ids: ``PREFIX_YYYYMMDD_<18 base62 chars>`` (about 107 random bits).

Short enough for WeChat's ``out_trade_no`` (6–32 characters), unguessable, sortable by day.
"""

from __future__ import annotations

import secrets
import string
import time
from datetime import datetime

_ALPHABET = string.digits + string.ascii_letters
SUFFIX_LENGTH = 18


_SUFFIXES = len(_ALPHABET) ** SUFFIX_LENGTH
_PAIRS = [high + low for low in _ALPHABET for high in _ALPHABET]  # two digits at a time, low digit first
_today: tuple[int, str] = (-1, "")


def new_id(prefix: str, now: datetime | None = None) -> str:
    day = now.strftime("%Y%m%d") if now is not None else _utc_day()
    # One draw from the OS for the whole suffix (a draw per character cost a send more than its INSERT).
    number = secrets.randbelow(_SUFFIXES)
    pairs = []
    for _ in range(SUFFIX_LENGTH // 2):
        number, pair = divmod(number, 62 * 62)
        pairs.append(_PAIRS[pair])
    return f"{prefix}_{day}_{''.join(pairs)}"


def _utc_day() -> str:
    """Today's UTC date as ``YYYYMMDD``, formatted once a day."""
    global _today
    day_number = int(time.time() // 86_400)
    if day_number != _today[0]:
        _today = (day_number, time.strftime("%Y%m%d", time.gmtime(day_number * 86_400)))
    return _today[1]
