"""Target 4: accept → upstream call latency of single sends under 50 requests/s of steady load, through the
API, the broker and the workers to the Aliyun fake (100 ms per call).

"Accept" is the message's ``created_at`` (set by the API before its INSERT); "upstream call" is when the fake
started handling the call that carried the message (its acceptance time minus its configured latency),
matched by mobile (each send of the run goes to a number of its own).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.dispatch import FAKE_CREDENTIALS, WORKER_ARGS, start_aliyun_fake
from bench.stack import (
    GUNICORN_WORKERS,
    REDIS_URL,
    create_database,
    drop_database,
    max_child_rss_mb,
    percentile,
    sms_env,
    sms_template,
    sms_tenant,
    start_gunicorn,
    start_worker,
)
from shared.db import normalize_url

FAKE_LATENCY_MS = 100


def run(log_dir: Path, seconds: int, rate: int = 50) -> dict:
    fake, fake_url = start_aliyun_fake(FAKE_LATENCY_MS, log_dir)
    sms_db = create_database("latency")
    env = sms_env(
        sms_db, REDIS_URL=REDIS_URL, PROVIDERS="aliyun", ALIYUN_ENDPOINT=fake_url, **FAKE_CREDENTIALS
    )
    tenant = sms_tenant(env)
    api, base_url = start_gunicorn("sms_service:create_app()", env, log_dir, workers=GUNICORN_WORKERS)
    worker = None
    try:
        template_id = sms_template(base_url, tenant["api_key"])
        worker = start_worker("sms_service.worker", env, log_dir, extra=WORKER_ARGS)
        errors = steady_load(base_url, tenant["api_key"], template_id, rate, seconds)
        total = rate * seconds
        engine = sa.create_engine(normalize_url(sms_db))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                created = dict(
                    connection.execute(
                        sa.text(
                            "SELECT mobile, created_at FROM messages WHERE status IN ('submitted', 'success')"
                        )
                    ).all()
                )
            if len(created) >= total - errors:
                break
            time.sleep(0.2)
        engine.dispose()
        worker_rss = max_child_rss_mb(worker)
        accepted = requests.get(fake_url.rstrip("/") + "/__fake__/messages", timeout=30).json()["messages"]
    finally:
        if worker is not None:
            worker.stop()
        api.stop()
        fake.terminate()
        drop_database(sms_db)
    latencies = [
        (message["accepted_at"] - FAKE_LATENCY_MS / 1000 - created[message["mobile"]].timestamp()) * 1000
        for message in accepted
        if message["mobile"] in created
    ]
    if not latencies:
        raise RuntimeError("no message reached the upstream")
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return {
        "name": f"Latency (accept → upstream call, {rate} sends/s for {seconds} s, {len(latencies)} sends)",
        "rows": [
            ("accept → upstream p50", f"{p50:.0f} ms", "", None, "≤ 100 ms"),
            ("accept → upstream p99", f"{p99:.0f} ms", "", None, "≤ 500 ms"),
            ("failed sends", str(errors), "", None, "0"),
            ("celery worker process RSS (latency run)", f"{worker_rss:.0f} MB", "", None, "≤ 150 MB"),
        ],
        "ok": p50 <= 100 and p99 <= 500 and errors == 0 and worker_rss <= 150,
    }


def steady_load(base_url: str, api_key: str, template_id: str, rate: int, seconds: int) -> int:
    """Open loop: one send every 1/rate s whatever the answers' pace; returns how many failed."""
    local = threading.local()
    failures = []

    def send(number: int) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        body = {"template_id": template_id, "mobiles": [f"135{number:08d}"], "variables": {"code": "123456"}}
        try:
            response = session.post(
                base_url + "/api/v1/sms/send",
                data=json.dumps(body),
                headers={"X-Api-Key": api_key, "Content-Type": "application/json"},
                timeout=10,
            )
            if response.status_code != 200:
                failures.append(response.status_code)
        except requests.RequestException as exc:
            failures.append(type(exc).__name__)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        for number in range(rate * seconds):
            delay = started + number / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, number)
    return len(failures)
