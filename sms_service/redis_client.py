"""The Redis client the limit counters and the circuit breaker use: one retry policy, stated once."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def unretried_client(url: str, timeout: float) -> redis.Redis:
    """A client that never resends a command: one cut off after it was sent may have run (a script counted,
    an INCR counted a failure), so the caller handles the error instead of the command running twice.
    redis-py would retry by default. A connection idle for 30 s is PINGed before use."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
