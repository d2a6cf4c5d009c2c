"""Target 3: queued → submitted throughput through the workers to the Aliyun fake (100 ms per call),
with the naive one-task-per-message floor measured in the same run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests
import sqlalchemy as sa

from bench import naive_dispatch
from bench.stack import (
    GUNICORN_WORKERS,
    Process,
    broker_url,
    create_database,
    drop_database,
    max_child_rss_mb,
    service_env,
    sms_env,
    sms_template,
    sms_tenant,
    start_gunicorn,
    start_worker,
)
from shared.db import normalize_url
from tests.e2e.processes import ROOT

#: How the benchmarks run the SMS worker.
WORKER_ARGS = ["-c", "4"]

FAKE_CREDENTIALS = {
    "ALIYUN_ACCESS_KEY_ID": "fake-aliyun-access-key-id",
    "ALIYUN_ACCESS_KEY_SECRET": "fake-aliyun-access-key-secret",
}


def start_aliyun_fake(latency_ms: int, log_dir: Path) -> tuple[subprocess.Popen, str]:
    log = open(log_dir / "aliyun-fake.log", "w")  # noqa: SIM115 (lives as long as the fake)
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.aliyun_sms", "--port", "0", "--latency-ms", str(latency_ms)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    return fake, fake.stdout.readline().strip()


def messages_per_second(
    engine: sa.Engine, query: str, total: int, started_at: float, timeout: float
) -> float:
    """Poll until ``query`` counts ``total``; the rate from ``started_at`` (workers ready) to then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            count = connection.execute(sa.text(query)).scalar_one()
        if count >= total:
            return total / (time.monotonic() - started_at)
        time.sleep(0.05)
    raise TimeoutError(f"only {count} of {total} after {timeout}s")


def run(log_dir: Path, total: int, naive_total: int) -> dict:
    purge_queue("sms-send")
    fake, fake_url = start_aliyun_fake(100, log_dir)
    sms_db, naive_db = create_database("dispatch"), create_database("naive")
    env = sms_env(sms_db, PROVIDERS="aliyun", ALIYUN_ENDPOINT=fake_url, **FAKE_CREDENTIALS)
    tenant = sms_tenant(env)
    api, base_url = start_gunicorn("sms_service:create_app()", env, log_dir, workers=GUNICORN_WORKERS)
    workers: list[Process] = []
    try:
        template_id = sms_template(base_url, tenant["api_key"])
        for start in range(0, total, 1000):
            items = [
                {"mobile": f"137{n:08d}", "variables": {"code": "123456"}}
                for n in range(start, min(total, start + 1000))
            ]
            response = requests.post(
                base_url + "/api/v1/sms/batch-send",
                headers={"X-Api-Key": tenant["api_key"]},
                json={"template_id": template_id, "items": items},
                timeout=60,
            )
            response.raise_for_status()
        engine = sa.create_engine(normalize_url(sms_db))
        with engine.connect() as connection:
            queued = connection.execute(
                sa.text("SELECT count(*) FROM messages WHERE status = 'queued'")
            ).scalar_one()
        assert queued == total, f"{queued} of {total} queued before the workers start"
        worker = start_worker("sms_service.worker", env, log_dir, extra=WORKER_ARGS)
        workers.append(worker)
        rate = messages_per_second(
            engine,
            "SELECT count(*) FROM messages WHERE status IN ('submitted', 'success')",
            total,
            time.monotonic(),
            600,
        )
        worker_rss = max_child_rss_mb(worker)
        worker.stop()
        engine.dispose()

        naive_rate = run_naive(naive_db, fake_url, naive_total, log_dir, workers)
    finally:
        for process in workers:
            process.stop()
        api.stop()
        fake.terminate()
        drop_database(sms_db)
        drop_database(naive_db)
    return {
        "name": f"Dispatch ({total} queued → submitted, Aliyun fake 100 ms, worker {' '.join(WORKER_ARGS)})",
        "rows": [
            (
                "messages/s",
                f"{rate:.0f} msg/s",
                f"{naive_rate:.1f} msg/s (naive)",
                rate / naive_rate,
                "≥ 1000 msg/s",
            ),
            ("celery worker process RSS", f"{worker_rss:.0f} MB", "", None, "≤ 150 MB"),
        ],
        "ok": rate >= 1000 and worker_rss <= 150,
    }


def run_naive(database_url: str, fake_url: str, total: int, log_dir: Path, workers: list[Process]) -> float:
    engine = sa.create_engine(normalize_url(database_url))
    naive_dispatch.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(naive_dispatch.naive_messages),
            [{"id": f"NAIVE_{n}", "mobile": f"136{n:08d}"} for n in range(total)],
        )
    env = service_env(
        "BENCH_NAIVE", DATABASE_URL=database_url, BROKER_URL=broker_url(), ALIYUN_ENDPOINT=fake_url
    )
    naive_dispatch.app.conf.broker_url = broker_url()
    with naive_dispatch.app.connection_for_write() as connection:
        for n in range(total):
            naive_dispatch.naive_send.apply_async(args=[f"NAIVE_{n}", f"136{n:08d}"], connection=connection)
    worker = start_worker("bench.naive_dispatch", env, log_dir, name="naive")
    workers.append(worker)
    rate = messages_per_second(
        engine,
        "SELECT count(*) FROM bench_naive_messages WHERE status = 'submitted'",
        total,
        time.monotonic(),
        600,
    )
    engine.dispose()
    return rate


def purge_queue(name: str) -> None:
    """Leftover tasks of an aborted run must not leak into the next one."""
    from kombu import Connection

    with Connection(broker_url()) as connection:
        channel = connection.channel()
        try:
            channel.queue_purge(name)
        except Exception:  # a queue that does not exist yet has nothing to purge
            return
