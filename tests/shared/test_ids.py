"""Public ids: prefix, the UTC day, 18 base62 characters drawn uniformly."""

from __future__ import annotations

import re
import string
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

from shared.ids import new_id


def test_an_id_is_prefix_utc_day_and_18_base62_characters():
    made = new_id("MSG")
    assert re.fullmatch(r"MSG_\d{8}_[0-9A-Za-z]{18}", made)
    assert made.split("_")[1] == datetime.now(UTC).strftime("%Y%m%d")
    beijing_morning = datetime(2026, 11, 27, 7, 0, tzinfo=timezone(timedelta(hours=8)))
    assert new_id("TXN", beijing_morning).startswith("TXN_20261127_")  # the day of the given time


def test_every_position_takes_every_character():
    """The suffix comes from one random number written in base 62, two digits at a time: a slip in the
    table or the order would leave characters out of some positions."""
    suffixes = [new_id("X").split("_")[2] for _ in range(20_000)]
    assert len(set(suffixes)) == len(suffixes)
    for position in range(18):
        seen = Counter(suffix[position] for suffix in suffixes)
        assert set(seen) == set(string.digits + string.ascii_letters)
        assert max(seen.values()) < 3 * min(seen.values())
