"""Redis limit counters when the connection fails mid-command: the request fails, nothing is sent twice."""

from __future__ import annotations

import logging
import socket
import threading
from collections import Counter as Tally
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.envelope import ServiceUnavailableError
from sms_service.accepting import limits
from sms_service.models import Tenant

# HELLO (the client speaks RESP3) and PING (the pool's health check); anything else gets OK.
ANSWERS = {"HELLO": b"%1\r\n$5\r\nproto\r\n:3\r\n", "PING": b"+PONG\r\n"}
TENANT = Tenant(daily_quota=10, mobile_per_minute=1, mobile_per_hour=5, mobile_per_day=10)


class DroppingRedis:
    """Speaks just enough RESP to be connected to, then drops the connection on receiving a command of
    ``drop_on`` without answering: as a Redis that dies once the command is sent, having maybe run it."""

    def __init__(self, drop_on: set[str]) -> None:
        self.drop_on = drop_on
        self.received: Tally[str] = Tally()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as reader:
            while line := reader.readline():
                if not line.startswith(b"*"):
                    continue
                parts = []
                for _ in range(int(line[1:])):
                    size = int(reader.readline()[1:])
                    parts.append(reader.read(size + 2)[:-2])
                name = parts[0].decode().upper()
                self.received[name] += 1
                if name in self.drop_on:
                    return
                connection.sendall(ANSWERS.get(name, b"+OK\r\n"))

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def dropping_redis() -> Iterator[DroppingRedis]:
    server = DroppingRedis({"EVALSHA", "MULTI"})
    yield server
    server.close()


def test_a_script_whose_connection_drops_after_sending_is_not_sent_again_and_answers_503(dropping_redis):
    store = limits.RedisCounters(dropping_redis.url)
    counters = limits.plan_counters(TENANT, ["13800138000"], datetime.now(UTC))
    with pytest.raises(ServiceUnavailableError) as unavailable:
        store.consume(None, "TNT_dropped", counters)
    assert unavailable.value.headers == {"Retry-After": "1"}
    # It may have counted: sending it again could count it twice.
    assert dropping_redis.received["EVALSHA"] == 1


def test_giving_back_with_the_connection_dropping_is_not_sent_again_and_raises_nothing(
    dropping_redis, caplog
):
    store = limits.RedisCounters(dropping_redis.url)
    counters = limits.plan_counters(TENANT, ["13800138000", "13900139000"], datetime.now(UTC))
    with caplog.at_level(logging.WARNING, logger="sms_service.accepting.limits"):
        store.release("TNT_dropped", counters)
    assert dropping_redis.received["MULTI"] == 1
    assert "could not give back 7 limit counter(s)" in caplog.text
