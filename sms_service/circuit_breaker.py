"""Skip an upstream that keeps failing for a while, instead of paying its timeout on every message.

State is per worker process: each process learns on its own that a provider is down, which needs no shared
store and errs on the side of trying. After ``open_seconds`` one call is let through (half-open); its
success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(
        self, failure_threshold: int, open_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failure_threshold = max(1, failure_threshold)
        self.open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}

    def allows(self, name: str) -> bool:
        with self._lock:
            return self._clock() >= self._open_until.get(name, 0.0)

    def record_success(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)
            self._open_until.pop(name, None)

    def record_failure(self, name: str) -> None:
        with self._lock:
            failures = self._failures.get(name, 0) + 1
            self._failures[name] = failures
            if failures >= self.failure_threshold:
                self._open_until[name] = self._clock() + self.open_seconds
                logger.warning(
                    "circuit open for provider %s after %d failures; skipped for %.0f s",
                    name,
                    failures,
                    self.open_seconds,
                )
