"""Public ids: ``PREFIX_YYYYMMDD_<18 base62 chars>`` (about 107 random bits).

Short enough for WeChat's ``out_trade_no`` (6–32 characters), unguessable, sortable by day.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime

_ALPHABET = string.digits + string.ascii_letters
SUFFIX_LENGTH = 18


def new_id(prefix: str, now: datetime | None = None) -> str:
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(SUFFIX_LENGTH))
    return f"{prefix}_{day}_{suffix}"
