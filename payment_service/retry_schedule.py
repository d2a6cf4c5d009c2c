"""How long to wait before retrying profit sharing: exponential, capped, jittered (webhooks retry on
``shared.webhooks.schedule``)."""

from __future__ import annotations

import random


def retry_delay(retry_number: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds before retry ``retry_number`` (1 = the first retry): base × 2^(n-1), at most ``max_seconds``,
    then jittered down to 50–100 % so retries of many orders failing together spread out."""
    ceiling = min(max_seconds, base_seconds * 2 ** max(0, retry_number - 1))
    return ceiling * random.uniform(0.5, 1.0)
