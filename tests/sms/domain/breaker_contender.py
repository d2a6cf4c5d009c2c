"""A process of its own asking a Redis-backed circuit breaker whether it may call (test_circuit_breaker)."""

from __future__ import annotations

from sms_service.delivery.circuit_breaker import RedisCircuitBreaker


def ask_when_released(url: str, prefix: str, name: str, start, answers) -> None:
    """Wait at the ``start`` barrier with the other processes, then ask once and put the answer."""
    circuit = RedisCircuitBreaker(url, failure_threshold=2, open_seconds=60, probe_seconds=60, prefix=prefix)
    circuit.allows("warm-up")  # connected and the script loaded before the race
    start.wait(30)
    answers.put(circuit.allows(name))
