"""The circuit breaker: closed, open, half-open with one probe; per process and shared through Redis."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from sms_service.delivery.circuit_breaker import CircuitBreaker, RedisCircuitBreaker
from tests.conftest import REDIS_URL
from tests.sms.domain.breaker_contender import ask_when_released

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL)")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ask_at_once(circuit, name: str, count: int) -> list[bool]:
    """``count`` threads released together each ask ``allows`` once."""
    barrier = threading.Barrier(count)
    answers: list[bool] = []
    lock = threading.Lock()

    def ask() -> None:
        barrier.wait(10)
        answer = circuit.allows(name)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=ask) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return answers


def opened(circuit, name: str = "aliyun"):
    for _ in range(circuit.failure_threshold):
        circuit.record_failure(name)
    return circuit


# -- in one process ---------------------------------------------------------------------------------------


def test_consecutive_failures_open_the_circuit_and_a_success_resets_the_count():
    clock = Clock()
    circuit = CircuitBreaker(failure_threshold=3, open_seconds=30, clock=clock)
    circuit.record_failure("aliyun")
    circuit.record_failure("aliyun")
    circuit.record_success("aliyun")
    circuit.record_failure("aliyun")
    circuit.record_failure("aliyun")
    assert circuit.allows("aliyun")
    circuit.record_failure("aliyun")
    assert not circuit.allows("aliyun") and circuit.allows("tencent")
    clock.now += 29
    assert not circuit.allows("aliyun")


def test_half_open_lets_exactly_one_of_many_threads_probe():
    clock = Clock()
    circuit = opened(CircuitBreaker(failure_threshold=2, open_seconds=30, clock=clock))
    clock.now += 30
    answers = ask_at_once(circuit, "aliyun", 16)
    assert answers.count(True) == 1 and len(answers) == 16
    assert not circuit.allows("aliyun")  # the probe is still out


def test_the_probes_success_closes_and_its_failure_opens_again():
    clock = Clock()
    circuit = opened(CircuitBreaker(failure_threshold=2, open_seconds=30, clock=clock))
    clock.now += 30
    assert circuit.allows("aliyun")
    circuit.record_failure("aliyun")  # the probe failed: open for another 30 s
    clock.now += 29
    assert not circuit.allows("aliyun")
    clock.now += 1
    assert circuit.allows("aliyun")
    circuit.record_success("aliyun")
    assert all(circuit.allows("aliyun") for _ in range(5))
    circuit.record_failure("aliyun")  # the count started again
    assert circuit.allows("aliyun")


def test_a_probe_that_never_reports_back_is_given_up_after_probe_seconds():
    clock = Clock()
    circuit = opened(CircuitBreaker(failure_threshold=2, open_seconds=30, probe_seconds=10, clock=clock))
    clock.now += 30
    assert circuit.allows("aliyun")  # the probe's worker dies without a word
    clock.now += 9
    assert not circuit.allows("aliyun")
    clock.now += 1
    assert circuit.allows("aliyun") and not circuit.allows("aliyun")


def test_late_failures_of_calls_made_before_do_not_extend_the_open_period():
    clock = Clock()
    circuit = opened(CircuitBreaker(failure_threshold=2, open_seconds=30, clock=clock))
    clock.now += 20
    circuit.record_failure("aliyun")
    clock.now += 10
    assert circuit.allows("aliyun")


# -- shared through Redis ---------------------------------------------------------------------------------


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own, its keys dropped afterwards (parallel runs share the Redis)."""
    import redis

    prefix = f"test:circuit:{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = client.keys(f"{prefix}:*")
    if keys:
        client.delete(*keys)
    client.close()


def redis_breaker(prefix: str, **options) -> RedisCircuitBreaker:
    settings = {"failure_threshold": 2, "open_seconds": 60, "probe_seconds": 60, **options}
    return RedisCircuitBreaker(REDIS_URL, prefix=prefix, **settings)


def end_open_period(circuit: RedisCircuitBreaker, name: str = "aliyun") -> None:
    """As if ``open_seconds`` had passed: the open marker is a key that expires then."""
    marker = circuit.keys(name)[1]
    assert 0 < circuit.client.pttl(marker) <= circuit.open_seconds * 1000
    circuit.client.delete(marker)


@needs_redis
def test_one_process_opening_the_circuit_opens_it_for_the_others(prefix):
    first, second = redis_breaker(prefix), redis_breaker(prefix)
    first.record_failure("aliyun")
    second.record_failure("aliyun")
    assert not first.allows("aliyun") and not second.allows("aliyun")
    assert first.allows("tencent")


@needs_redis
def test_half_open_lets_exactly_one_of_two_processes_probe(prefix):
    circuit = opened(redis_breaker(prefix))
    end_open_period(circuit)
    spawn = multiprocessing.get_context("spawn")
    start, answers = spawn.Barrier(2), spawn.Queue()
    processes = [
        spawn.Process(target=ask_when_released, args=(REDIS_URL, prefix, "aliyun", start, answers))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    got = sorted(answers.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert got == [False, True]
    assert not circuit.allows("aliyun")  # the probe is out
    circuit.record_success("aliyun")  # as if the probe's process reported success
    assert circuit.allows("aliyun") and redis_breaker(prefix).allows("aliyun")


@needs_redis
def test_half_open_lets_exactly_one_of_many_threads_probe_through_redis(prefix):
    circuit = opened(redis_breaker(prefix, open_seconds=0.2))
    time.sleep(0.3)  # the open period really ends
    answers = ask_at_once(circuit, "aliyun", 16)
    assert answers.count(True) == 1 and len(answers) == 16


@needs_redis
def test_the_probes_success_closes_for_everyone_and_its_failure_opens_again(prefix):
    circuit, other = opened(redis_breaker(prefix)), redis_breaker(prefix)
    end_open_period(circuit)
    assert circuit.allows("aliyun") and not other.allows("aliyun")
    circuit.record_failure("aliyun")  # the probe failed: open again, for everyone
    assert not other.allows("aliyun") and not circuit.allows("aliyun")
    end_open_period(circuit)
    assert other.allows("aliyun") and not circuit.allows("aliyun")
    other.record_success("aliyun")
    assert all(circuit.allows("aliyun") for _ in range(3)) and other.allows("aliyun")
    circuit.record_failure("aliyun")  # the count started again
    assert other.allows("aliyun")


@needs_redis
def test_late_failures_do_not_extend_the_open_period_through_redis(prefix):
    circuit = opened(redis_breaker(prefix))
    marker = circuit.keys("aliyun")[1]
    circuit.client.pexpire(marker, 5000)
    circuit.record_failure("aliyun")
    assert circuit.client.pttl(marker) <= 5000


@needs_redis
def test_a_probe_that_never_reports_back_is_given_up_through_redis(prefix):
    circuit = opened(redis_breaker(prefix, probe_seconds=1))
    end_open_period(circuit)
    assert circuit.allows("aliyun")  # the probe's worker is killed: nothing is recorded
    assert not circuit.allows("aliyun")
    time.sleep(1.1)
    assert circuit.allows("aliyun") and not circuit.allows("aliyun")


def test_with_redis_out_of_reach_calls_go_through_and_nothing_fails(caplog):
    circuit = RedisCircuitBreaker("redis://127.0.0.1:1/0", failure_threshold=1, open_seconds=30)
    with caplog.at_level(logging.WARNING, logger="sms_service.delivery.circuit_breaker"):
        circuit.record_failure("aliyun")
        assert circuit.allows("aliyun")
        circuit.record_success("aliyun")
    assert len(caplog.records) == 3
    assert all("circuit breaker state unavailable" in record.getMessage() for record in caplog.records)
