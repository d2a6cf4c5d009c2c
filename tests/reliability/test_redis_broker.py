"""Redis as the broker, killed under a busy worker that holds unacknowledged countdown tasks, then restarted:
the worker stays up, reconnects by itself, and every message and callback goes out exactly once.

Celery 5.7.0 exited here (``Unrecoverable error: AttributeError … 'hostname'``, decision 0008)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import skip_unless_installed
from tests.e2e.processes import free_port
from tests.reliability.stacks import CallbackServer, assert_logs_clean, elapsed, mobiles, wait_for

pytestmark = pytest.mark.reliability

COUNT = 60


class PrivateRedis:
    """A ``redis-server`` of this test's own, with an append-only file as a production broker keeps."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        skip_unless_installed(binary, "redis-server (a private Redis broker)")
        self.argv = [
            binary, "--port", str(free_port()), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
            "--appendfsync", "always", "--dir", str(directory),
        ]  # fmt: skip
        self.port = int(self.argv[2])
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _answers(client), 10, "private redis-server")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_redis_killed_under_a_busy_worker_then_back_worker_survives_and_delivers_once(
    sms_stack_factory, tmp_path
):
    broker = PrivateRedis(tmp_path)
    receiver = CallbackServer()
    try:
        stack = sms_stack_factory(
            BROKER_URL=broker.url,
            PROVIDERS="aliyun",
            DISPATCH_BATCH_SIZE=5,
            CALLBACK_RETRY_DELAYS=",".join(["2"] * 20),
            RECEIPT_POLL_AFTER_SECONDS=2,
        )
        tenant = stack.tenant()
        template_id = stack.template(tenant)
        worker = stack.start_worker("worker", concurrency=2)
        stack.start_beat()
        receiver.stop()  # every callback is refused: each retry waits in the worker, unacknowledged
        numbers = mobiles("1396000", COUNT)
        for number in numbers:
            assert stack.send(tenant, template_id, [number], callback_url=receiver.url()).status_code == 200

        def retrying() -> int:
            stack.push_receipts()
            rows = stack.messages(tenant["tenant_id"])
            return sum(1 for row in rows if row.callback_attempts >= 1)

        # Killed while the worker holds retries on their countdown and waits on the broker for more (the
        # case Celery 5.7.0 did not survive).
        wait_for(lambda: retrying() >= COUNT - 5, 60, "callbacks waiting on their retry countdown")
        broker.kill()
        killed = time.monotonic()
        time.sleep(5)
        assert worker.popen.poll() is None, worker.log()[-3000:]
        broker.start()
        receiver.start()

        def delivered() -> bool:
            stack.push_receipts()
            rows = stack.messages(tenant["tenant_id"])
            return len(rows) == COUNT and all(row.callback_status == "delivered" for row in rows)

        wait_for(delivered, 120, "every message delivered and its callback delivered", interval=1)
        took = elapsed(killed)
        time.sleep(4)  # a few more sweeps and redeliveries: nothing may go out twice
        log = worker.log()
        print(f"\nredis killed under a busy worker: all {COUNT} delivered {took}s after the kill")
        assert worker.popen.poll() is None, log[-3000:]
        assert "Unrecoverable error" not in log
        assert log.count("Connected to redis://") >= 2  # it reconnected by itself
        accepted = stack.accepted_mobiles()
        assert sorted(accepted) == sorted(numbers) and set(accepted.values()) == {1}
        rows = stack.messages(tenant["tenant_id"])
        assert {row.status for row in rows} == {"success"}
        for row in rows:
            assert len(receiver.bodies_for("message_id", row.id, tenant["callback_secret"])) == 1, row.id
        assert_logs_clean(stack.logs(), stack.watched, ["1396000"])
    finally:
        receiver.stop()
        broker.kill()
