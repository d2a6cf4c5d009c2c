"""Skip an upstream that keeps failing for a while, instead of paying its timeout on every message.

Closed, every call goes through; ``failure_threshold`` consecutive failures open the circuit for
``open_seconds``, while nobody calls. Then it is half-open: exactly one caller, the probe, is let through and
the others keep skipping the provider. The probe's success closes the circuit, its failure opens it again. A
probe that never reports back (its worker was killed) holds its slot for ``probe_seconds`` at most; then the
next caller probes.

With ``SMS_REDIS_URL`` set the state lives in Redis, shared by every worker process, and each decision is one
atomic command or script: the first process to see an upstream fail often enough opens the circuit for all,
and one probe goes out across all of them. If Redis is out of reach, calls are let through (a warning is
logged): delivery goes on as if there were no breaker. Without Redis, each process keeps its own state.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from sms_service.redis_client import unretried_client

logger = logging.getLogger(__name__)


class Breaker(Protocol):
    def allows(self, name: str) -> bool:
        """May provider ``name`` be called now? In half-open state a True makes the caller the probe."""

    def record_success(self, name: str) -> None: ...

    def record_failure(self, name: str) -> None: ...


def _log_opened(name: str, failures: int, open_seconds: float) -> None:
    logger.warning(
        "circuit open for provider %s after %d failures; skipped for %.0f s", name, failures, open_seconds
    )


class CircuitBreaker:
    """The state of one process, behind a lock (delivery threads share it)."""

    def __init__(
        self,
        failure_threshold: int,
        open_seconds: float,
        probe_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = max(1, failure_threshold)
        self.open_seconds = open_seconds
        self.probe_seconds = open_seconds if probe_seconds is None else probe_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._probe_until: dict[str, float] = {}

    def allows(self, name: str) -> bool:
        with self._lock:
            now = self._clock()
            if now < self._open_until.get(name, 0.0):
                return False
            if self._failures.get(name, 0) < self.failure_threshold:
                return True
            if now < self._probe_until.get(name, 0.0):
                return False  # half-open, and the probe is out
            self._probe_until[name] = now + self.probe_seconds
            return True

    def record_success(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)
            self._open_until.pop(name, None)
            self._probe_until.pop(name, None)

    def record_failure(self, name: str) -> None:
        with self._lock:
            failures = self._failures.get(name, 0) + 1
            self._failures[name] = failures
            if failures < self.failure_threshold:
                return
            now = self._clock()
            if now < self._open_until.get(name, 0.0):
                return  # already open: a late failure of a call made before does not extend it
            self._open_until[name] = now + self.open_seconds
            self._probe_until.pop(name, None)
        _log_opened(name, failures, self.open_seconds)


# KEYS: the provider's failure count, its open marker (expires when the open period ends), its probe slot
# (expires when an unanswered probe is given up). ARGV: the threshold, the probe slot's lifetime (ms) and the
# holder's process id (for whoever inspects the key). Returns 1 when closed, 2 when the caller is the probe,
# 0 when it must skip the provider.
ALLOWS = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  return 1
end
if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[2]) then
  return 2
end
return 0
"""

# KEYS as above. ARGV: the threshold and the open period (ms). Counts the failure; at the threshold opens the
# circuit unless it is open already, and frees the probe slot. Returns the count, negated when it opened.
RECORD_FAILURE = """
local failures = redis.call('INCR', KEYS[1])
if failures >= tonumber(ARGV[1]) and redis.call('SET', KEYS[2], failures, 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[3])
  return -failures
end
return failures
"""


class RedisCircuitBreaker:
    """The state in Redis, shared by every process using the same ``prefix``."""

    def __init__(
        self,
        url: str,
        failure_threshold: int,
        open_seconds: float,
        probe_seconds: float | None = None,
        prefix: str = "sms:circuit",
        socket_timeout: float = 1.0,
    ) -> None:
        self.failure_threshold = max(1, failure_threshold)
        self.open_seconds = open_seconds
        self.probe_seconds = open_seconds if probe_seconds is None else probe_seconds
        self.prefix = prefix
        # Never retried: a retried INCR counts a failure twice, a retried claim takes the slot for nobody.
        self.client = unretried_client(url, timeout=socket_timeout)
        self.allows_script = self.client.register_script(ALLOWS)
        self.failure_script = self.client.register_script(RECORD_FAILURE)

    def keys(self, name: str) -> list[str]:
        """The failure count, the open marker and the probe slot of provider ``name`` (one cluster slot)."""
        base = f"{self.prefix}:{{{name}}}"
        return [f"{base}:failures", f"{base}:open", f"{base}:probe"]

    def allows(self, name: str) -> bool:
        try:
            verdict = self.allows_script(
                keys=self.keys(name),
                args=[self.failure_threshold, _milliseconds(self.probe_seconds), os.getpid()],
            )
        except redis.RedisError as exc:
            self._unavailable("letting the call through", exc)
            return True
        if verdict == 2:
            logger.info("circuit half-open for provider %s: this call is the probe", name)
        return verdict != 0

    def record_success(self, name: str) -> None:
        try:
            self.client.delete(*self.keys(name))
        except redis.RedisError as exc:
            self._unavailable("success not recorded", exc)

    def record_failure(self, name: str) -> None:
        try:
            failures = int(
                self.failure_script(
                    keys=self.keys(name),
                    args=[self.failure_threshold, _milliseconds(self.open_seconds)],
                )
            )
        except redis.RedisError as exc:
            self._unavailable("failure not recorded", exc)
            return
        if failures < 0:
            _log_opened(name, -failures, self.open_seconds)

    @staticmethod
    def _unavailable(what: str, exc: Exception) -> None:
        logger.warning("circuit breaker state unavailable (%s): %s: %s", what, type(exc).__name__, exc)


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def build_breaker(
    failure_threshold: int,
    open_seconds: float,
    probe_seconds: float,
    redis_url: str = "",
    key_prefix: str = "sms",
) -> CircuitBreaker | RedisCircuitBreaker:
    """Shared through Redis when a URL is given (keys under ``key_prefix``), else this process's own."""
    if redis_url:
        return RedisCircuitBreaker(
            redis_url, failure_threshold, open_seconds, probe_seconds, prefix=f"{key_prefix}:circuit"
        )
    return CircuitBreaker(failure_threshold, open_seconds, probe_seconds)
