"""When a failed webhook is tried again: one schedule for SMS results and payment results.

The first retry comes within seconds, the later ones back off over hours: 5 s, 1 min, 5 min, 30 min, 2 h, 5 h,
10 h and 10 h, each jittered by ±10 % so receivers that failed together are not hit together. After the last
retry the webhook is given up: nine attempts over about 28 hours. Each service reads the delays from its
settings (``SMS_CALLBACK_RETRY_DELAYS``, ``PAYMENT_FORWARD_RETRY_DELAYS``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from shared.settings import ConfigurationError

DEFAULT_RETRY_DELAYS = "5,60,300,1800,7200,18000,36000,36000"
JITTER = 0.1


def parse_retry_delays(raw: str | Sequence[float], variable: str) -> tuple[float, ...]:
    """``"5,60,300"`` → ``(5.0, 60.0, 300.0)``: the seconds before each retry; empty means never retry."""
    if not isinstance(raw, str):
        return tuple(float(value) for value in raw)
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigurationError(f"{variable} must be comma-separated seconds, e.g. 5,60,300") from None
    if any(not 0 <= delay < float("inf") for delay in delays):
        raise ConfigurationError(f"{variable} must hold seconds of 0 or more")
    return delays


def next_retry_delay(
    delays: Sequence[float], attempt: int, retry_after: float | None = None, rng: random.Random | None = None
) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based); None when it was the last.

    ``retry_after`` is the receiver's own ``Retry-After`` (429, 503): waited for when it is longer than the
    schedule's step, up to the schedule's longest step.
    """
    if attempt > len(delays):
        return None
    delay = delays[attempt - 1] * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(delays)))
    return delay
